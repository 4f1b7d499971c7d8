"""Density maps on the globe: latitude/longitude grids, cartopy figures and CF netCDF output.

This module is pure drawing and file writing. It takes arrays (a grid, log-densities, event
coordinates) and never a model: the ``maps`` stage evaluates the model on :func:`latlon_grid`
and hands the numbers over.

Conventions:
    * Grids are cell centres: ``lat[i] = -90 + (i + 1/2) * 180 / n_lat`` and
      ``lon[j] = -180 + (j + 1/2) * 360 / n_lon`` (degrees), so the cells tile the sphere and
      ``lon`` lies in ``[-180, 180)`` as everywhere in the project.
    * ``log_density`` has shape ``(n_lat, n_lon)`` (latitude rows, longitude columns) and holds
      the natural log of the probability density with respect to the area measure of the unit
      sphere (per steradian), i.e. nats; the uniform density is ``-log(4 pi) = -2.531``.
    * Coastlines come from Natural Earth shapefiles shipped in the project; cartopy is pointed at
      them with :func:`configure_offline_cartopy` and any download attempt raises
      :class:`OfflineDataError` instead of reaching the network.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.atomic import atomic_write
from pipeline.geometry.coords import latlon_to_xyz

__all__ = [
    "PROJECTIONS",
    "UNIFORM_LOG_DENSITY",
    "OfflineDataError",
    "configure_offline_cartopy",
    "draw_density_map",
    "grid_cell_areas",
    "grid_normalization",
    "latlon_grid",
    "write_density_netcdf",
]

#: Log-density of the uniform distribution on the unit sphere, in nats per steradian.
UNIFORM_LOG_DENSITY: float = -math.log(4.0 * math.pi)

#: Map projections :func:`draw_density_map` accepts.
PROJECTIONS: tuple[str, ...] = ("robinson", "mollweide")

#: Natural Earth layers the shipped data holds (category, name, resolution).
_SHIPPED_LAYERS: tuple[tuple[str, str, str], ...] = (
    ("physical", "coastline", "110m"),
    ("physical", "land", "110m"),
    ("physical", "ocean", "110m"),
    ("physical", "lakes", "110m"),
    ("physical", "coastline", "50m"),
    ("physical", "land", "50m"),
    ("cultural", "admin_0_countries", "110m"),
    ("cultural", "admin_0_boundary_lines_land", "110m"),
)


class OfflineDataError(RuntimeError):
    """Raised when cartopy would download data: the project draws maps offline only."""


def latlon_grid(
    n_lat: int, n_lon: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Cell-centre latitude/longitude grid covering the sphere, with its embedded points.

    Args:
        n_lat: Number of latitude cells (rows), at least 1.
        n_lon: Number of longitude cells (columns), at least 1.

    Returns:
        ``(lat, lon, xyz)``: ``lat`` shape ``(n_lat,)`` in degrees, increasing, strictly inside
        ``(-90, 90)``; ``lon`` shape ``(n_lon,)`` in degrees, increasing, inside ``[-180, 180)``;
        ``xyz`` shape ``(n_lat * n_lon, 3)``, unit vectors in row-major order (latitude outer,
        longitude inner), so values computed on ``xyz`` reshape to ``(n_lat, n_lon)``.

    Raises:
        ValueError: If ``n_lat`` or ``n_lon`` is smaller than 1.
    """
    if n_lat < 1 or n_lon < 1:
        raise ValueError(f"latlon_grid needs n_lat >= 1 and n_lon >= 1, got ({n_lat}, {n_lon})")
    lat = -90.0 + (np.arange(n_lat, dtype=np.float64) + 0.5) * (180.0 / n_lat)
    lon = -180.0 + (np.arange(n_lon, dtype=np.float64) + 0.5) * (360.0 / n_lon)
    lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    xyz = np.asarray(latlon_to_xyz(lat2.reshape(-1), lon2.reshape(-1)), dtype=np.float64)
    return lat, lon, xyz


def _cell_edges(centres: NDArray[np.float64], lo: float, hi: float) -> NDArray[np.float64]:
    """Edges of cells with the given centres, clamped to ``[lo, hi]``; shape ``(n + 1,)``."""
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[lo], mid, [hi]])


def grid_cell_areas(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.float64]:
    """Exact areas of the grid cells on the unit sphere (steradians).

    A cell between latitudes :math:`\\phi_0 < \\phi_1` and longitudes :math:`\\lambda_0 <
    \\lambda_1` has area :math:`(\\lambda_1 - \\lambda_0)(\\sin\\phi_1 - \\sin\\phi_0)`. Edges
    are midway between centres and the outer edges are the poles and ``lon[0] - dlon/2``,
    ``lon[-1] + dlon/2`` wrapped to a full turn, so cells of :func:`latlon_grid` sum to
    :math:`4\\pi`.

    Args:
        lat: Cell-centre latitudes in degrees, shape ``(n_lat,)``, increasing.
        lon: Cell-centre longitudes in degrees, shape ``(n_lon,)``, increasing, spanning a turn.

    Returns:
        Areas in steradians, shape ``(n_lat, n_lon)``.

    Raises:
        ValueError: If the coordinates are not 1-D and increasing.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    for name, arr in (("lat", lat), ("lon", lon)):
        if arr.ndim != 1 or arr.size < 1 or np.any(np.diff(arr) <= 0):
            raise ValueError(f"{name} must be 1-D, non-empty and increasing, got {arr!r}")
    lat_edges = np.radians(_cell_edges(lat, -90.0, 90.0))
    if lon.size == 1:
        lon_edges = np.array([lon[0] - 180.0, lon[0] + 180.0])
    else:
        first = lon[0] - 0.5 * (lon[1] - lon[0])
        lon_edges = _cell_edges(lon, first, first + 360.0)
    dlon = np.radians(np.diff(lon_edges))
    dsin = np.diff(np.sin(lat_edges))
    return np.outer(dsin, dlon)


def grid_normalization(
    lat: NDArray[np.float64], lon: NDArray[np.float64], log_density: NDArray[np.float64]
) -> float:
    """Midpoint-rule integral of the density over the sphere; ``≈ 1`` for a normalised model.

    Args:
        lat: Cell-centre latitudes in degrees, shape ``(n_lat,)``.
        lon: Cell-centre longitudes in degrees, shape ``(n_lon,)``.
        log_density: Log-density per steradian at the cell centres, shape ``(n_lat, n_lon)``.

    Returns:
        :math:`\\sum_{ij} \\exp(\\log p_{ij})\\, A_{ij}` with the exact cell areas ``A``.

    Raises:
        ValueError: If ``log_density`` does not have shape ``(n_lat, n_lon)``.
    """
    log_density = np.asarray(log_density, dtype=np.float64)
    areas = grid_cell_areas(lat, lon)
    if log_density.shape != areas.shape:
        raise ValueError(
            f"log_density has shape {log_density.shape}, expected {areas.shape} (n_lat, n_lon)"
        )
    peak = float(np.max(log_density))
    return float(np.exp(peak) * np.sum(np.exp(log_density - peak) * areas))


class _OfflineDownloader:
    """Stand-in for a cartopy downloader that refuses to download and says what is missing."""

    def __init__(self, data_dir: Path, spec: tuple[str, ...]) -> None:
        self.data_dir = data_dir
        self.spec = spec

    def path(self, format_dict: Mapping[str, Any]) -> Path:
        """Return the shipped file for ``format_dict`` or raise :class:`OfflineDataError`."""
        if self.spec == ("shapefiles", "natural_earth"):
            candidate = (
                self.data_dir
                / "shapefiles"
                / "natural_earth"
                / str(format_dict.get("category"))
                / f"ne_{format_dict.get('resolution')}_{format_dict.get('name')}.shp"
            )
            if candidate.exists():
                return candidate
            shipped = ", ".join(f"{c}/{r}_{n}" for c, n, r in _SHIPPED_LAYERS)
            raise OfflineDataError(
                f"cartopy asked for Natural Earth {format_dict} which is not shipped in "
                f"{self.data_dir} (looked for {candidate}); maps are drawn offline, so use one "
                f"of the shipped layers: {shipped}"
            )
        raise OfflineDataError(
            f"cartopy asked for {self.spec} {dict(format_dict)}; maps are drawn offline and "
            "only the shipped Natural Earth shapefiles are available"
        )

    def acquire_resource(self, target_path: Path, format_dict: Mapping[str, Any]) -> Path:
        """Never download: raise :class:`OfflineDataError`."""
        raise OfflineDataError(f"refusing to download {self.spec} {dict(format_dict)} offline")


def configure_offline_cartopy(naturalearth_dir: str | os.PathLike[str]) -> Path:
    """Point cartopy at shipped Natural Earth data and forbid downloads.

    Sets ``cartopy.config["pre_existing_data_dir"]`` to ``naturalearth_dir`` (the folder that
    holds ``shapefiles/natural_earth/{physical,cultural}``) and replaces every registered cartopy
    downloader by one that serves the shipped files and raises :class:`OfflineDataError` for
    anything else, so drawing never touches the network.

    Args:
        naturalearth_dir: Folder holding ``shapefiles/natural_earth/...`` (the project ships
            ``data/naturalearth``).

    Returns:
        The resolved data folder.

    Raises:
        FileNotFoundError: If the folder lacks the 110m coastline shapefile.
    """
    import cartopy

    data_dir = Path(naturalearth_dir).resolve()
    coastline = data_dir / "shapefiles" / "natural_earth" / "physical" / "ne_110m_coastline.shp"
    if not coastline.exists():
        raise FileNotFoundError(
            f"Natural Earth coastline not found at {coastline}; the project ships it under "
            "data/naturalearth (see data/naturalearth/PROVENANCE.md)"
        )
    cartopy.config["pre_existing_data_dir"] = data_dir
    downloaders = cartopy.config["downloaders"]
    for spec in list(downloaders):
        downloaders[spec] = _OfflineDownloader(data_dir, tuple(spec))
    return data_dir


def _projection(name: str) -> Any:
    """The cartopy CRS for a projection name in :data:`PROJECTIONS`."""
    import cartopy.crs as ccrs

    key = name.lower()
    if key == "robinson":
        return ccrs.Robinson()
    if key == "mollweide":
        return ccrs.Mollweide()
    raise ValueError(f"unknown projection {name!r}; choose one of {PROJECTIONS}")


def _land_feature() -> Any:
    """Natural Earth 110m land polygons (shipped with the project)."""
    import cartopy.feature as cfeature

    return cfeature.NaturalEarthFeature("physical", "land", "110m")


def _check_latlon_points(name: str, points: NDArray[np.float64] | None) -> NDArray[np.float64]:
    """Validate an ``(N, 2)`` array of (lat, lon) degrees; ``None`` gives an empty array."""
    if points is None:
        return np.zeros((0, 2), dtype=np.float64)
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2) of (lat, lon) degrees, got {arr.shape}")
    if arr.size and (np.any(np.abs(arr[:, 0]) > 90.0) or not np.all(np.isfinite(arr))):
        raise ValueError(f"{name} holds latitudes outside [-90, 90] or non-finite values")
    return arr


def draw_density_map(
    lat_grid_deg: NDArray[np.float64],
    lon_grid_deg: NDArray[np.float64],
    log_density: NDArray[np.float64],
    events_latlon: NDArray[np.float64] | None,
    samples_latlon: NDArray[np.float64] | None,
    title: str,
    out_png: str | os.PathLike[str],
    projection: str = "robinson",
    *,
    naturalearth_dir: str | os.PathLike[str] | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    dynamic_range: float = 10.0,
    events_label: str = "test events",
    samples_label: str = "generated samples",
    dpi: int = 120,
) -> Path:
    """Draw a two-panel map: model log-density with events on top, generated samples below.

    The top panel colours each grid cell by its log-density (a logarithmic colour scale of the
    density) with a colour bar labelled in nats (log density per steradian) that marks the
    uniform level ``-log 4π``, draws coastlines and overlays the events. The bottom panel
    scatters the generated samples over the same coastlines. The PNG is written atomically.

    Args:
        lat_grid_deg: Cell-centre latitudes in degrees, shape ``(n_lat,)``.
        lon_grid_deg: Cell-centre longitudes in degrees, shape ``(n_lon,)``.
        log_density: Log-density in nats per steradian, shape ``(n_lat, n_lon)``.
        events_latlon: Events as (lat, lon) degrees, shape ``(N, 2)``, or ``None``.
        samples_latlon: Generated samples as (lat, lon) degrees, shape ``(M, 2)``, or ``None``
            to draw the density panel only.
        title: Figure title.
        out_png: Output PNG path (parent folders are created).
        projection: ``"robinson"`` or ``"mollweide"``.
        naturalearth_dir: If given, :func:`configure_offline_cartopy` is called with it first.
        vmin: Lower end of the colour scale; default ``vmax - dynamic_range`` (or the minimum
            if that is higher), so the far tails do not wash out the colours.
        vmax: Upper end of the colour scale; default the maximum of ``log_density``.
        dynamic_range: Width in nats of the default colour scale.
        events_label: Legend label of the events.
        samples_label: Legend label and panel title of the samples.
        dpi: Resolution of the PNG.

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: On inconsistent shapes, non-finite densities or an unknown projection.
    """
    import matplotlib

    matplotlib.use("Agg")
    import cartopy.crs as ccrs
    import matplotlib.pyplot as plt

    lat = np.asarray(lat_grid_deg, dtype=np.float64)
    lon = np.asarray(lon_grid_deg, dtype=np.float64)
    logp = np.asarray(log_density, dtype=np.float64)
    if lat.ndim != 1 or lon.ndim != 1 or logp.shape != (lat.size, lon.size):
        raise ValueError(
            f"log_density has shape {logp.shape}; expected (n_lat, n_lon) = "
            f"({lat.size}, {lon.size}) from 1-D lat/lon grids of shapes {lat.shape}, {lon.shape}"
        )
    if not np.all(np.isfinite(logp)):
        raise ValueError(f"log_density holds {int(np.sum(~np.isfinite(logp)))} non-finite values")
    events = _check_latlon_points("events_latlon", events_latlon)
    samples = (
        None if samples_latlon is None else _check_latlon_points("samples_latlon", samples_latlon)
    )
    crs = _projection(projection)
    if naturalearth_dir is not None:
        configure_offline_cartopy(naturalearth_dir)

    hi = float(np.max(logp)) if vmax is None else float(vmax)
    lo = max(float(np.min(logp)), hi - dynamic_range) if vmin is None else float(vmin)
    if not lo < hi:
        lo = hi - 1.0
    plate = ccrs.PlateCarree()
    n_panels = 1 if samples is None else 2
    fig = plt.figure(figsize=(9.0, 4.9 * n_panels), layout="constrained")
    try:
        ax = fig.add_subplot(n_panels, 1, 1, projection=crs)
        ax.set_global()
        mesh = ax.pcolormesh(
            lon,
            lat,
            logp,
            transform=plate,
            shading="nearest",
            cmap="viridis",
            vmin=lo,
            vmax=hi,
            rasterized=True,
        )
        ax.coastlines(resolution="110m", linewidth=0.6, color="white")
        if events.size:
            ax.scatter(
                events[:, 1],
                events[:, 0],
                transform=plate,
                s=7,
                c="#ff3b30",
                edgecolors="black",
                linewidths=0.3,
                label=f"{events_label} (n={len(events)})",
                zorder=3,
            )
            ax.legend(loc="lower left", fontsize=8, framealpha=0.85)
        ax.set_title(title, fontsize=11)
        cbar = fig.colorbar(
            mesh,
            ax=ax,
            orientation="vertical",
            shrink=0.85,
            pad=0.02,
            extend="min" if float(np.min(logp)) < lo else "neither",
        )
        cbar.set_label("log density (nats per steradian)")
        if lo <= UNIFORM_LOG_DENSITY <= hi:
            cbar.ax.axhline(UNIFORM_LOG_DENSITY, color="white", linewidth=1.2)
            cbar.ax.text(
                -0.15,
                UNIFORM_LOG_DENSITY,
                "uniform",
                transform=cbar.ax.get_yaxis_transform(),
                ha="right",
                va="center",
                fontsize=7,
            )
        if samples is not None:
            ax2 = fig.add_subplot(n_panels, 1, 2, projection=crs)
            ax2.set_global()
            ax2.add_feature(_land_feature(), facecolor="0.92", edgecolor="none", zorder=0)
            ax2.coastlines(resolution="110m", linewidth=0.6, color="0.3")
            if samples.size:
                ax2.scatter(
                    samples[:, 1],
                    samples[:, 0],
                    transform=plate,
                    s=3,
                    c="#1f5fbf",
                    alpha=0.5,
                    linewidths=0,
                    zorder=3,
                )
            ax2.set_title(f"{samples_label} (n={len(samples)})", fontsize=10)
        out = atomic_write(
            Path(out_png), lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"), ".png"
        )
    finally:
        plt.close(fig)
    return out


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

    Returns:
        The written path.

    Raises:
        ValueError: If the shapes disagree.
        TypeError: If an attribute cannot be stored.
    """
    import xarray as xr

    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    logp = np.asarray(log_density, dtype=np.float64)
    if lat.ndim != 1 or lon.ndim != 1 or logp.shape != (lat.size, lon.size):
        raise ValueError(
            f"log_density has shape {logp.shape}, expected ({lat.size}, {lon.size}) = (lat, lon)"
        )
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
            "lat": (
                "lat",
                lat,
                {
                    "standard_name": "latitude",
                    "long_name": "latitude",
                    "units": "degrees_north",
                    "axis": "Y",
                },
            ),
            "lon": (
                "lon",
                lon,
                {
                    "standard_name": "longitude",
                    "long_name": "longitude",
                    "units": "degrees_east",
                    "axis": "X",
                },
            ),
        },
        attrs=global_attrs,
    )
    encoding: dict[str, dict[str, Any]] = {
        "log_density": {"zlib": True, "complevel": 4, "_FillValue": None},
        "lat": {"_FillValue": None},
        "lon": {"_FillValue": None},
    }
    out = atomic_write(
        Path(path), lambda tmp: ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding), ".nc"
    )
    return out
