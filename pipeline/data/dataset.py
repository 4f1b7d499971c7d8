"""Processed catalogue construction: events -> GeoDataFrame (EPSG:4326) -> CF-1.8 dataset."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray

from pipeline.data.errors import CatalogueError
from pipeline.data.validation import Catalogue
from pipeline.geometry.coords import latlon_to_xyz

__all__ = ["catalogue_to_dataset", "catalogue_to_geodataframe"]


def catalogue_to_geodataframe(catalogue: Catalogue) -> gpd.GeoDataFrame:
    """Events as a GeoDataFrame of points in EPSG:4326.

    Args:
        catalogue: A validated catalogue with N events.

    Returns:
        N rows, columns ``lat``, ``lon``, ``source_line`` and point ``geometry``
        (x = longitude, y = latitude), CRS EPSG:4326, index = event number 0..N-1.
    """
    frame = pd.DataFrame(
        {"lat": catalogue.lat, "lon": catalogue.lon, "source_line": catalogue.source_line}
    )
    frame.index.name = "event"
    return gpd.GeoDataFrame(
        frame, geometry=gpd.points_from_xy(catalogue.lon, catalogue.lat), crs="EPSG:4326"
    )


def catalogue_to_dataset(
    gdf: gpd.GeoDataFrame, catalogue: Catalogue, extra_attrs: Mapping[str, Any] | None = None
) -> xr.Dataset:
    """Convert the events to a CF-1.8 style dataset along dimension ``event``.

    Args:
        gdf: Output of :func:`catalogue_to_geodataframe` (EPSG:4326 points).
        catalogue: The catalogue the frame came from (counts and provenance).
        extra_attrs: Further global attributes (str, int or float values).

    Returns:
        Dataset with variables ``lat``, ``lon`` (float64, degrees), ``x``, ``y``, ``z``
        (float64, unit sphere, :func:`pipeline.geometry.coords.latlon_to_xyz`) and
        ``source_line`` (int64, 1-based raw line number), all shape (N,), and global
        attributes ``source_file``, ``source_sha256``, ``n_rows_read``, ``n_valid``,
        ``n_rejected``, ``n_lon_wrapped``, ``Conventions``.

    Raises:
        CatalogueError: If the frame is not in EPSG:4326 or its geometry disagrees with
            its lat/lon columns.
    """
    if gdf.crs is None or gdf.crs.to_epsg() != 4326:
        raise CatalogueError(f"{catalogue.name}: expected CRS EPSG:4326, got {gdf.crs}")
    lat = gdf["lat"].to_numpy(dtype=np.float64)
    lon = gdf["lon"].to_numpy(dtype=np.float64)
    if not (
        np.array_equal(gdf.geometry.y.to_numpy(), lat)
        and np.array_equal(gdf.geometry.x.to_numpy(), lon)
    ):
        raise CatalogueError(f"{catalogue.name}: point geometry disagrees with lat/lon columns")
    xyz = latlon_to_xyz(lat, lon)
    event = np.arange(len(gdf), dtype=np.int64)

    def var(values: NDArray[Any], **attrs: str) -> xr.Variable:
        return xr.Variable(("event",), values, attrs=attrs)

    unit = "1"
    ds = xr.Dataset(
        {
            "lat": var(lat, standard_name="latitude", long_name="latitude", units="degrees_north"),
            "lon": var(lon, standard_name="longitude", long_name="longitude", units="degrees_east"),
            "x": var(xyz[:, 0], long_name="x = cos(lat) cos(lon) on the unit sphere", units=unit),
            "y": var(xyz[:, 1], long_name="y = cos(lat) sin(lon) on the unit sphere", units=unit),
            "z": var(xyz[:, 2], long_name="z = sin(lat) on the unit sphere", units=unit),
            "source_line": var(
                gdf["source_line"].to_numpy(dtype=np.int64),
                long_name="1-based line number of the event in the raw file",
            ),
        },
        coords={"event": ("event", event, {"long_name": "event number in processed order"})},
        attrs={
            "Conventions": "CF-1.8",
            "title": f"{catalogue.name} event catalogue",
            "catalogue": catalogue.name,
            "crs": "EPSG:4326",
            "source_file": Path(catalogue.source_file).name,
            "source_sha256": catalogue.source_sha256,
            "n_rows_read": catalogue.n_rows_read,
            "n_valid": catalogue.n_valid,
            "n_rejected": catalogue.n_rejected,
            "n_lon_wrapped": catalogue.n_lon_wrapped,
            **(dict(extra_attrs) if extra_attrs else {}),
        },
    )
    return ds
