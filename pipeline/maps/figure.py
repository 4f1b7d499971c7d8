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
from pipeline.maps.grid import UNIFORM_LOG_DENSITY, checked_grid, upsample_for_display
from pipeline.maps.offline import configure_offline_cartopy

__all__ = ["PROJECTIONS", "cartopy_projection", "draw_density_map", "grid_panel", "save_png"]

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


def grid_panel(
    ax: Any,
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    values: NDArray[np.float64],
    *,
    cmap: Any,
    vmin: float,
    vmax: float,
    coast: str = "white",
) -> Any:
    """A global panel: ``values`` on the cell-centre grid, coastlines on top; the mesh."""
    import cartopy.crs as ccrs

    ax.set_global()
    mesh = ax.pcolormesh(
        lon,
        lat,
        values,
        transform=ccrs.PlateCarree(),
        shading="nearest",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
        rasterized=True,
    )
    ax.coastlines(resolution="110m", linewidth=0.6, color=coast)
    return mesh


def _scatter_latlon(ax: Any, points: NDArray[np.float64], **style: Any) -> None:
    """Points ``(N, 2)`` as (lat, lon) degrees on a map panel, above the mesh."""
    import cartopy.crs as ccrs

    ax.scatter(points[:, 1], points[:, 0], transform=ccrs.PlateCarree(), zorder=3, **style)


def side_colorbar(fig: Any, mesh: Any, ax: Any, label: str, **style: Any) -> Any:
    """The vertical colour bar every map panel uses, labelled ``label``; returns it."""
    bar = fig.colorbar(mesh, ax=ax, orientation="vertical", shrink=0.85, pad=0.02, **style)
    bar.set_label(label)
    return bar


def save_png(fig: Any, out_png: str | os.PathLike[str], dpi: int) -> Path:
    """Save a figure as PNG atomically (parent folders are created)."""
    return atomic_write(Path(out_png), lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"), ".png")


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
    spread_mask: NDArray[np.bool_] | None = None,
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
        spread_label: Title of the spread panel (say there what ``spread_mask`` hides).
        spread_mask: True where the spread is not shown (drawn grey), shape of ``spread``'s
            ``sd``; e.g. where the density is negligible. ``None`` shows every cell.

    Returns:
        The path of the written PNG.

    Raises:
        ValueError: On inconsistent shapes, non-finite densities or an unknown projection.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lat, lon, logp = checked_grid(lat_grid_deg, lon_grid_deg, log_density)
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
    n_panels = 1 + (samples is not None) + (spread is not None)
    fig = plt.figure(figsize=(9.0, 4.9 * n_panels), layout="constrained")
    d_lat, d_lon, d_logp = upsample_for_display(lat, lon, logp, display_upsample)
    try:
        ax = fig.add_subplot(n_panels, 1, 1, projection=crs)
        mesh = grid_panel(ax, d_lat, d_lon, d_logp, cmap="viridis", vmin=lo, vmax=hi)
        if events.size:
            _scatter_latlon(
                ax,
                events,
                s=9,
                facecolors="none",
                edgecolors="#ff3b30",
                linewidths=0.6,
                alpha=0.85,
                label=f"{events_label} (n={len(events)})",
            )
            ax.legend(loc="lower left", fontsize=8, framealpha=0.85)
        ax.set_title(title, fontsize=11)
        cbar = side_colorbar(
            fig,
            mesh,
            ax,
            "log density (nats per steradian)",
            extend="min" if float(np.min(logp)) < lo else "neither",
        )
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
                _scatter_latlon(ax2, samples, s=3, c="#1f5fbf", alpha=0.5, linewidths=0)
            ax2.set_title(f"{samples_label} (n={len(samples)})", fontsize=10)
        if spread is not None:
            s_lat, s_lon, s_sd = (np.asarray(a, dtype=np.float64) for a in spread)
            if s_sd.shape != (s_lat.size, s_lon.size) or not np.all(np.isfinite(s_sd)):
                raise ValueError(
                    f"spread has shape {s_sd.shape} (expected ({s_lat.size}, {s_lon.size})) "
                    "or non-finite values"
                )
            hidden = np.zeros(s_sd.shape, dtype=bool)
            if spread_mask is not None:
                hidden = np.asarray(spread_mask, dtype=bool)
                if hidden.shape != s_sd.shape:
                    raise ValueError(f"spread_mask has shape {hidden.shape}, expected {s_sd.shape}")
            ax3 = fig.add_subplot(n_panels, 1, n_panels, projection=crs)
            f_lat, f_lon, f_sd = upsample_for_display(s_lat, s_lon, s_sd, display_upsample)
            # The mask follows the drawn (finer) cells: hidden where most of the blend is.
            f_hidden = upsample_for_display(s_lat, s_lon, hidden.astype(float), display_upsample)
            shown = s_sd[~hidden] if np.any(~hidden) else s_sd
            # Scaled on the shown cells: the hidden ones would set the colours otherwise.
            vmax3 = max(float(np.quantile(shown, 0.99)), 1e-6)
            masked = np.ma.masked_where(f_hidden[2] >= 0.5, f_sd)
            magma = matplotlib.colormaps["magma"].with_extremes(bad="0.8")  # hidden: grey
            mesh3 = grid_panel(ax3, f_lat, f_lon, masked, cmap=magma, vmin=0.0, vmax=vmax3)
            ax3.set_title(spread_label, fontsize=10)
            side_colorbar(fig, mesh3, ax3, "sd of log density over seeds (nats)")
        out = save_png(fig, out_png, dpi)
    finally:
        plt.close(fig)
    return out
