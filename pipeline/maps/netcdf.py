"""Log-density grids as CF-1.8 netCDF files, written atomically (GIS tools open them)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.atomic import atomic_write
from pipeline.maps.grid import checked_grid

__all__ = ["DensityGrid", "read_density_netcdf", "write_density_netcdf"]

_LAT_ATTRS = {
    "standard_name": "latitude",
    "long_name": "latitude",
    "units": "degrees_north",
    "axis": "Y",
}
_LON_ATTRS = {
    "standard_name": "longitude",
    "long_name": "longitude",
    "units": "degrees_east",
    "axis": "X",
}


@dataclass(frozen=True)
class DensityGrid:
    """A map's grid as read back from its netCDF file.

    Attributes:
        lat: Cell-centre latitudes, shape ``(n_lat,)``.
        lon: Cell-centre longitudes, shape ``(n_lon,)``.
        log_density: Shape ``(n_lat, n_lon)``, nats per steradian.
        spread: ``(lat_spread, lon_spread, sd)`` when the file holds a seed spread.
        attrs: Global attributes.
    """

    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    log_density: NDArray[np.float64]
    spread: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | None
    attrs: dict[str, Any]


def _netcdf_attr(key: str, value: Any) -> str | int | float:
    """Convert an attribute value to a netCDF-storable scalar (dicts/lists become JSON)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"netCDF attribute {key!r} has unsupported type {type(value).__name__}")


def write_density_netcdf(
    path: str | os.PathLike[str],
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    log_density: NDArray[np.float64],
    attrs: Mapping[str, Any] | None = None,
    spread: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> Path:
    """Write a log-density grid as a CF-1.8 netCDF file (atomic: temp file then rename).

    The file has coordinates ``lat`` (degrees_north) and ``lon`` (degrees_east) and the variable
    ``log_density(lat, lon)`` in float64, so GIS tools (QGIS, Panoply, GDAL) open it as a
    regular latitude/longitude raster.

    Args:
        path: Output ``.nc`` path (parent folders are created).
        lat: Cell-centre latitudes in degrees, shape ``(n_lat,)``.
        lon: Cell-centre longitudes in degrees, shape ``(n_lon,)``.
        log_density: Natural log of the density per steradian, shape ``(n_lat, n_lon)``.
        attrs: Global attributes (e.g. catalogue, model, tolerances). Dicts and lists are
            stored as JSON strings, booleans as integers.
        spread: ``(lat_spread, lon_spread, sd)``: the seeds' standard deviation of the
            log-density on its own (coarser) grid, stored as ``log_density_seed_sd`` with
            coordinates ``lat_spread`` and ``lon_spread``.

    Returns:
        The written path.

    Raises:
        ValueError: If the shapes disagree.
        TypeError: If an attribute cannot be stored.
    """
    import xarray as xr

    lat, lon, logp = checked_grid(lat, lon, log_density)
    global_attrs: dict[str, str | int | float] = {
        "Conventions": "CF-1.8",
        "title": "Model log-density on a latitude/longitude grid",
        "institution": "geosgm",
        "source": "geosgm probability-flow ODE likelihood",
        "comment": (
            "log_density is the natural log of the probability density with respect to the "
            "area measure of the unit sphere (per steradian); exp(log_density) integrates to 1 "
            "over the sphere; the uniform density is -log(4 pi) = -2.531."
        ),
    }
    for key, value in (attrs or {}).items():
        global_attrs[str(key)] = _netcdf_attr(str(key), value)
    ds = xr.Dataset(
        data_vars={
            "log_density": (
                ("lat", "lon"),
                logp,
                {
                    "long_name": "natural log of probability density per steradian",
                    "units": "1",
                    "comment": "nats; density w.r.t. area on the unit sphere (sr^-1)",
                },
            )
        },
        coords={
            "lat": ("lat", lat, dict(_LAT_ATTRS)),
            "lon": ("lon", lon, dict(_LON_ATTRS)),
        },
        attrs=global_attrs,
    )
    encoding: dict[str, dict[str, Any]] = {
        "log_density": {"zlib": True, "complevel": 4, "_FillValue": None},
        "lat": {"_FillValue": None},
        "lon": {"_FillValue": None},
    }
    if spread is not None:
        s_lat, s_lon, s_sd = (np.asarray(a, dtype=np.float64) for a in spread)
        if s_sd.shape != (s_lat.size, s_lon.size):
            raise ValueError(
                f"spread has shape {s_sd.shape}, expected ({s_lat.size}, {s_lon.size})"
            )
        ds = ds.assign_coords(
            lat_spread=(
                "lat_spread",
                s_lat,
                {**_LAT_ATTRS, "long_name": "latitude of the spread grid"},
            ),
            lon_spread=(
                "lon_spread",
                s_lon,
                {**_LON_ATTRS, "long_name": "longitude of the spread grid"},
            ),
        )
        ds["log_density_seed_sd"] = (
            ("lat_spread", "lon_spread"),
            s_sd,
            {
                "long_name": "standard deviation over trained seeds of the log density",
                "units": "1",
                "comment": "nats; sample sd (ddof = 1) of log_density over spread_seeds",
            },
        )
        for name in ("log_density_seed_sd", "lat_spread", "lon_spread"):
            encoding[name] = {"_FillValue": None}
    out = atomic_write(
        Path(path), lambda tmp: ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding), ".nc"
    )
    return out


def read_density_netcdf(path: str | os.PathLike[str]) -> DensityGrid:
    """Read a grid written by :func:`write_density_netcdf`.

    Raises:
        ValueError: Naming the file, when it is missing, unreadable or not such a grid.
    """
    import xarray as xr

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: density grid not found")
    try:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            ds.load()
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable netCDF file ({exc})") from exc
    if "log_density" not in ds or ds["log_density"].dims != ("lat", "lon"):
        raise ValueError(f"{path}: no log_density(lat, lon) variable")
    spread = None
    if "log_density_seed_sd" in ds:
        spread = (
            ds["lat_spread"].to_numpy().astype(np.float64),
            ds["lon_spread"].to_numpy().astype(np.float64),
            ds["log_density_seed_sd"].to_numpy().astype(np.float64),
        )
    return DensityGrid(
        ds["lat"].to_numpy().astype(np.float64),
        ds["lon"].to_numpy().astype(np.float64),
        ds["log_density"].to_numpy().astype(np.float64),
        spread,
        dict(ds.attrs),
    )
