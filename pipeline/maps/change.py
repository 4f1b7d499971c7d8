"""What moved between two versions of a model's map: the change in log-density, and where it
exceeds the seeds' spread.

Works on two :class:`~pipeline.maps.netcdf.DensityGrid` of the same grid (the netCDF files the
maps stage writes, read from any two git revisions). Where both versions (or one) carry a seed
spread, a change counts as real where ``|Δ| > k · sqrt(sd_a² + sd_b²)`` (``k = 2`` by
default: about a 95% band for a difference of two noisy estimates); without spreads no region
is marked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipeline.maps.figure import cartopy_projection, grid_panel, save_png, side_colorbar
from pipeline.maps.grid import upsample_for_display
from pipeline.maps.netcdf import DensityGrid
from pipeline.maps.offline import configure_offline_cartopy

__all__ = ["DensityChange", "density_change", "draw_change_map"]


@dataclass(frozen=True)
class DensityChange:
    """The change from version A to version B of one map.

    Attributes:
        lat: Cell-centre latitudes, shape ``(n_lat,)``.
        lon: Cell-centre longitudes, shape ``(n_lon,)``.
        delta: ``log p_B − log p_A`` in nats, shape ``(n_lat, n_lon)``.
        yardstick: ``k · sqrt(sd_A² + sd_B²)`` on the same grid (nats), or ``None`` when
            neither version has a seed spread.
        exceeds: ``|delta| > yardstick``, or ``None`` without a yardstick.
    """

    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    delta: NDArray[np.float64]
    yardstick: NDArray[np.float64] | None
    exceeds: NDArray[np.bool_] | None

    @property
    def fraction_exceeding(self) -> float | None:
        """Area fraction of the sphere where the change exceeds the yardstick."""
        if self.exceeds is None:
            return None
        weights = np.cos(np.deg2rad(self.lat))[:, None] * np.ones_like(self.delta)
        return float((weights * self.exceeds).sum() / weights.sum())


def _spread_on(
    spread: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]],
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The spread grid's value at each cell of ``(lat, lon)`` (the coarse cell it falls in)."""
    s_lat, s_lon, sd = spread
    i = np.clip(np.floor((lat + 90.0) / 180.0 * s_lat.size).astype(int), 0, s_lat.size - 1)
    j = np.clip(np.floor((lon + 180.0) / 360.0 * s_lon.size).astype(int), 0, s_lon.size - 1)
    return sd[i[:, None], j[None, :]]


def density_change(a: DensityGrid, b: DensityGrid, k: float = 2.0) -> DensityChange:
    """The change from map ``a`` to map ``b``.

    Args:
        a: The older version's grid.
        b: The newer version's grid.
        k: Multiple of the combined seed spread that a change must exceed to be marked.

    Returns:
        The :class:`DensityChange`.

    Raises:
        ValueError: If the two grids differ (then the maps cannot be subtracted cell by cell).
    """
    same = (
        a.log_density.shape == b.log_density.shape
        and np.allclose(a.lat, b.lat)
        and np.allclose(a.lon, b.lon)
    )
    if not same:
        raise ValueError(
            f"the two maps have different grids ({a.log_density.shape} and "
            f"{b.log_density.shape}): re-run one of them with the other's maps.n_lat/n_lon"
        )
    delta = b.log_density - a.log_density
    variances = [_spread_on(g.spread, b.lat, b.lon) ** 2 for g in (a, b) if g.spread is not None]
    if not variances:
        return DensityChange(b.lat, b.lon, delta, None, None)
    yardstick = k * np.sqrt(np.sum(variances, axis=0))
    return DensityChange(b.lat, b.lon, delta, yardstick, np.abs(delta) > yardstick)


def draw_change_map(
    change: DensityChange,
    title: str,
    out_png: str | os.PathLike[str],
    *,
    projection: str = "robinson",
    naturalearth_dir: str | os.PathLike[str] | None = None,
    display_upsample: int = 1,
    dpi: int = 100,
) -> Path:
    """Draw Δ log-density (blue: less likely in B, red: more likely) with the cells where it
    exceeds the seed spread outlined and hatched. The PNG is written atomically.

    Args:
        change: From :func:`density_change`.
        title: Figure title.
        out_png: Output path (parent folders are created).
        projection: ``"robinson"`` or ``"mollweide"``.
        naturalearth_dir: If given, cartopy is pointed at these shapefiles first.
        display_upsample: Interpolation factor for drawing (1: the cells).
        dpi: Resolution.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import cartopy.crs as ccrs
    import matplotlib.pyplot as plt

    if naturalearth_dir is not None:
        configure_offline_cartopy(naturalearth_dir)
    crs = cartopy_projection(projection)
    plate = ccrs.PlateCarree()
    scale = max(float(np.quantile(np.abs(change.delta), 0.99)), 1e-3)
    d_lat, d_lon, d_delta = upsample_for_display(
        change.lat, change.lon, change.delta, display_upsample
    )
    fig = plt.figure(figsize=(9.0, 4.9), layout="constrained")
    try:
        ax = fig.add_subplot(1, 1, 1, projection=crs)
        mesh = grid_panel(
            ax, d_lat, d_lon, d_delta, cmap="RdBu_r", vmin=-scale, vmax=scale, coast="0.2"
        )
        note = "no seed spread: nothing marked"
        if change.exceeds is not None:
            mask = change.exceeds.astype(np.float64)
            if mask.any():
                ax.contourf(
                    change.lon,
                    change.lat,
                    mask,
                    levels=[0.5, 1.5],
                    colors="none",
                    hatches=["////"],
                    transform=plate,
                )
                ax.contour(
                    change.lon,
                    change.lat,
                    mask,
                    levels=[0.5],
                    colors="black",
                    linewidths=0.6,
                    transform=plate,
                )
            frac = change.fraction_exceeding or 0.0
            note = f"hatched: |Δ| > 2 × seed spread ({100 * frac:.1f}% of the sphere)"
        ax.set_title(f"{title}\n{note}", fontsize=10)
        side_colorbar(fig, mesh, ax, "Δ log density, B − A (nats)")
        out = save_png(fig, out_png, dpi)
    finally:
        plt.close(fig)
    return out
