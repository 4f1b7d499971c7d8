"""The map figure: model log-density on the globe with events, and generated samples below.

Pure drawing: arrays in (a grid, log-densities, event coordinates), a PNG out, never a model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.atomic import atomic_write
from pipeline.maps.grid import UNIFORM_LOG_DENSITY, upsample_for_display
from pipeline.maps.offline import configure_offline_cartopy

__all__ = ["PROJECTIONS", "draw_density_map"]

#: Map projections :func:`draw_density_map` accepts.
PROJECTIONS: tuple[str, ...] = ("robinson", "mollweide")


def cartopy_projection(name: str) -> Any:
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
    display_upsample: int = 1,
    spread: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | None = None,
    spread_label: str = "seed spread",
) -> Path:
    """Draw the map: model log-density with events on top, generated samples below, and
    optionally the seeds' spread of the log-density in a third panel.

    The top panel colours the grid by its log-density (a logarithmic colour scale of the
    density) with a colour bar labelled in nats (log density per steradian) that marks the
    uniform level ``-log 4π``, draws coastlines and overlays the events as small hollow rings
    (the density stays visible under dense clusters). The next panel scatters the generated
    samples over the same coastlines. The PNG is written atomically.

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
        display_upsample: Draw the density bilinearly interpolated onto a grid this many
            times finer (:func:`pipeline.maps.grid.upsample_for_display`); 1 draws the cells.
        spread: ``(lat, lon, sd)``: the standard deviation over seeds of the log-density
            (nats) on its own cell-centre grid, drawn as a third panel; ``None`` for none.
        spread_label: Title of the spread panel.

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
    crs = cartopy_projection(projection)
    if naturalearth_dir is not None:
        configure_offline_cartopy(naturalearth_dir)

    hi = float(np.max(logp)) if vmax is None else float(vmax)
    lo = max(float(np.min(logp)), hi - dynamic_range) if vmin is None else float(vmin)
    if not lo < hi:
        lo = hi - 1.0
    plate = ccrs.PlateCarree()
    n_panels = 1 + (samples is not None) + (spread is not None)
    fig = plt.figure(figsize=(9.0, 4.9 * n_panels), layout="constrained")
    d_lat, d_lon, d_logp = upsample_for_display(lat, lon, logp, display_upsample)
    try:
        ax = fig.add_subplot(n_panels, 1, 1, projection=crs)
        ax.set_global()
        mesh = ax.pcolormesh(
            d_lon,
            d_lat,
            d_logp,
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
                s=9,
                facecolors="none",
                edgecolors="#ff3b30",
                linewidths=0.6,
                alpha=0.85,
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
        if spread is not None:
            s_lat, s_lon, s_sd = (np.asarray(a, dtype=np.float64) for a in spread)
            if s_sd.shape != (s_lat.size, s_lon.size) or not np.all(np.isfinite(s_sd)):
                raise ValueError(
                    f"spread has shape {s_sd.shape} (expected ({s_lat.size}, {s_lon.size})) "
                    "or non-finite values"
                )
            ax3 = fig.add_subplot(n_panels, 1, n_panels, projection=crs)
            ax3.set_global()
            f_lat, f_lon, f_sd = upsample_for_display(s_lat, s_lon, s_sd, display_upsample)
            mesh3 = ax3.pcolormesh(
                f_lon,
                f_lat,
                f_sd,
                transform=plate,
                shading="nearest",
                cmap="magma",
                vmin=0.0,
                vmax=max(float(np.quantile(s_sd, 0.99)), 1e-6),
                rasterized=True,
            )
            ax3.coastlines(resolution="110m", linewidth=0.6, color="white")
            ax3.set_title(spread_label, fontsize=10)
            bar3 = fig.colorbar(mesh3, ax=ax3, orientation="vertical", shrink=0.85, pad=0.02)
            bar3.set_label("sd of log density over seeds (nats)")
        out = atomic_write(
            Path(out_png), lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"), ".png"
        )
    finally:
        plt.close(fig)
    return out
