"""The latitude/longitude grid of the maps: cell centres, exact cell areas, normalisation.

Grids are cell centres: ``lat[i] = -90 + (i + 1/2) * 180 / n_lat`` and
``lon[j] = -180 + (j + 1/2) * 360 / n_lon`` (degrees), so the cells tile the sphere and ``lon``
lies in ``[-180, 180)`` as everywhere in the project. A ``log_density`` grid has shape
``(n_lat, n_lon)`` (latitude rows, longitude columns) in nats per steradian.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from pipeline.geometry.coords import latlon_to_xyz

__all__ = [
    "UNIFORM_LOG_DENSITY",
    "checked_grid",
    "grid_cell_areas",
    "grid_normalization",
    "mass_level",
    "latlon_grid",
    "upsample_for_display",
]

#: Log-density of the uniform distribution on the unit sphere, in nats per steradian.
UNIFORM_LOG_DENSITY: float = -math.log(4.0 * math.pi)


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


def mass_level(
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    log_density: NDArray[np.float64],
    mass: float = 0.99,
) -> float:
    """The log-density level whose superlevel set holds ``mass`` of the grid's probability.

    Cells are taken from the densest down until their ``p·area`` sums to ``mass`` of the
    grid total; the level is the density of the last cell taken. Cells below it hold less than
    ``1 - mass`` of the mass together: where a map may grey out what the model calls negligible.

    Args:
        lat: Cell-centre latitudes in degrees, shape ``(n_lat,)``.
        lon: Cell-centre longitudes in degrees, shape ``(n_lon,)``.
        log_density: Log-density per steradian, shape ``(n_lat, n_lon)``.
        mass: Share of the grid's mass to enclose, in (0, 1].

    Returns:
        The level in nats: cells with ``log_density >= level`` hold at least ``mass``.

    Raises:
        ValueError: If ``mass`` is outside (0, 1] or the shapes disagree.
    """
    if not 0.0 < mass <= 1.0:
        raise ValueError(f"mass must be in (0, 1], got {mass}")
    log_density = np.asarray(log_density, dtype=np.float64)
    areas = grid_cell_areas(lat, lon)
    if log_density.shape != areas.shape:
        raise ValueError(
            f"log_density has shape {log_density.shape}, expected {areas.shape} (n_lat, n_lon)"
        )
    flat = log_density.ravel()
    order = np.argsort(flat)[::-1]
    # Relative to the peak, so a sharp density does not overflow.
    cell_mass = np.exp(flat[order] - flat[order[0]]) * areas.ravel()[order]
    cumulative = np.cumsum(cell_mass)
    # The tolerance keeps mass = 1 from stepping past the last cell on rounding.
    k = int(np.searchsorted(cumulative, mass * cumulative[-1] * (1 - 1e-12)))
    return float(flat[order[min(k, flat.size - 1)]])


def upsample_for_display(
    lat: NDArray[np.float64], lon: NDArray[np.float64], values: NDArray[np.float64], factor: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Bilinear interpolation of a cell-centre grid onto a ``factor``-times finer one, for
    drawing only (the numbers a user reads come from the original grid).

    Longitude wraps around; beyond the outermost latitude rows each pole takes the mean of its
    nearest row (the pole is one point).

    Args:
        lat: Cell-centre latitudes, shape ``(n_lat,)``, from :func:`latlon_grid`.
        lon: Cell-centre longitudes, shape ``(n_lon,)``.
        values: Shape ``(n_lat, n_lon)``.
        factor: Refinement per axis, at least 1 (1 returns the inputs).

    Returns:
        ``(lat_fine, lon_fine, values_fine)`` of shapes ``(factor n_lat,)``,
        ``(factor n_lon,)`` and ``(factor n_lat, factor n_lon)``.

    Raises:
        ValueError: If ``factor < 1`` or the shapes disagree.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    if factor < 1 or vals.shape != (lat.size, lon.size):
        raise ValueError(
            f"upsample_for_display needs factor >= 1 and values of shape ({lat.size}, "
            f"{lon.size}), got factor {factor} and shape {vals.shape}"
        )
    if factor == 1:
        return lat, lon, vals
    lat_p = np.concatenate([[-90.0], lat, [90.0]])
    rows = np.vstack([np.full(lon.size, vals[0].mean()), vals, np.full(lon.size, vals[-1].mean())])
    lon_p = np.concatenate([[lon[-1] - 360.0], lon, [lon[0] + 360.0]])
    padded = np.hstack([rows[:, -1:], rows, rows[:, :1]])
    lat_f, lon_f, _ = latlon_grid(factor * lat.size, factor * lon.size)
    i = np.clip(np.searchsorted(lat_p, lat_f) - 1, 0, lat_p.size - 2)
    j = np.clip(np.searchsorted(lon_p, lon_f) - 1, 0, lon_p.size - 2)
    wi = ((lat_f - lat_p[i]) / (lat_p[i + 1] - lat_p[i]))[:, None]
    wj = ((lon_f - lon_p[j]) / (lon_p[j + 1] - lon_p[j]))[None, :]
    ii, jj = i[:, None], j[None, :]
    fine = (
        (1 - wi) * (1 - wj) * padded[ii, jj]
        + (1 - wi) * wj * padded[ii, jj + 1]
        + wi * (1 - wj) * padded[ii + 1, jj]
        + wi * wj * padded[ii + 1, jj + 1]
    )
    return lat_f, lon_f, fine


def checked_grid(
    lat: NDArray[np.float64], lon: NDArray[np.float64], values: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The three arrays as float64, checked to be 1-D ``lat``, 1-D ``lon`` and
    ``values`` of shape ``(n_lat, n_lon)``.

    Raises:
        ValueError: Naming the shapes, if they disagree.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    if lat.ndim != 1 or lon.ndim != 1 or vals.shape != (lat.size, lon.size):
        raise ValueError(
            f"log_density has shape {vals.shape}; expected (n_lat, n_lon) = "
            f"({lat.size}, {lon.size}) from 1-D lat/lon grids of shapes {lat.shape}, {lon.shape}"
        )
    return lat, lon, vals
