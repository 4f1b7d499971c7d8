"""One model's map: its density on the grid and its samples, as a PNG figure and a CF netCDF grid.

:class:`MapConfig` is the ``maps:`` params section, typed and checked; :func:`render_map`
takes a density function and a sampler (never a model, so it is tested with exact densities)
and writes both files.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.geometry.coords import xyz_to_latlon
from pipeline.maps.figure import PROJECTIONS, draw_density_map
from pipeline.maps.grid import grid_normalization, latlon_grid, mass_level
from pipeline.maps.netcdf import write_density_netcdf

__all__ = [
    "SPREAD_MASS",
    "DensityFn",
    "MapConfig",
    "SampleFn",
    "SeedDensityFn",
    "render_map",
    "seed_spread",
    "seed_spread_and_mean",
]

#: The spread panel shows the seed spread only inside the region holding this share of the
#: seeds' mean density; elsewhere (empty ocean, deserts) the density is negligible and its
#: log wanders freely between seeds, which would otherwise be the brightest part of the panel.
SPREAD_MASS = 0.99

#: Keys of the ``maps:`` section with their types.
_KEYS: dict[str, type] = {
    "n_lat": int,
    "n_lon": int,
    "rtol": float,
    "atol": float,
    "batch_size": int,
    "model_seed": int,
    "n_samples": int,
    "sample_steps": int,
    "sample_seed": int,
    "projection": str,
    "dynamic_range": float,
    "dpi": int,
    "naturalearth_dir": str,
    "display_upsample": int,
    "spread_seeds": list,
    "spread_grid": list,
}

#: ``density_fn(xyz (N, 3) float64) -> (log_density (N,), nfe)``.
DensityFn = Callable[[NDArray[np.float64]], tuple[NDArray[np.float64], int]]
#: ``sample_fn(n) -> xyz (n, 3)``.
SampleFn = Callable[[int], NDArray[np.float64]]
#: ``seed_density_fn(seed, xyz (N, 3) float64) -> log_density (N,)``: one trained seed's density.
SeedDensityFn = Callable[[int, NDArray[np.float64]], NDArray[np.float64]]


@dataclass(frozen=True)
class MapConfig:
    """The ``maps:`` params section, typed and checked (see the module docstring)."""

    n_lat: int
    n_lon: int
    rtol: float
    atol: float
    batch_size: int
    model_seed: int
    n_samples: int
    sample_steps: int
    sample_seed: int
    projection: str
    dynamic_range: float
    dpi: int
    naturalearth_dir: str
    display_upsample: int
    spread_seeds: list[int]
    spread_grid: list[int]

    @classmethod
    def from_params(cls, cfg: Mapping[str, Any]) -> MapConfig:
        """Build from the params section.

        Raises:
            ValueError: On missing or unknown keys, wrong types or out-of-range values.
        """
        # maps.models only drives the dvc.yaml matrix.
        cfg = {k: v for k, v in cfg.items() if k != "models"}
        missing = sorted(set(_KEYS) - set(cfg))
        unknown = sorted(set(cfg) - set(_KEYS))
        if missing or unknown:
            raise ValueError(f"params maps: missing keys {missing}, unknown keys {unknown}")
        values: dict[str, Any] = {}
        for key, kind in _KEYS.items():
            value = cfg[key]
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(f"params maps.{key} must be {kind.__name__}, got {value!r}")
            values[key] = value
        out = cls(**values)
        positive = (
            "n_lat",
            "n_lon",
            "rtol",
            "atol",
            "batch_size",
            "sample_steps",
            "dpi",
            "display_upsample",
        )
        for key in positive:
            if getattr(out, key) <= 0:
                raise ValueError(f"params maps.{key} must be > 0, got {getattr(out, key)!r}")
        if out.n_samples < 0 or out.dynamic_range <= 0:
            raise ValueError("params maps: n_samples must be >= 0 and dynamic_range > 0")
        seeds, grid = out.spread_seeds, out.spread_grid
        if len(seeds) == 1 or not all(isinstance(k, int) and k >= 0 for k in seeds):
            raise ValueError(
                f"params maps.spread_seeds must be [] or at least two seeds >= 0, got {seeds}"
            )
        if len(grid) != 2 or not all(isinstance(k, int) and k >= 1 for k in grid):
            raise ValueError(f"params maps.spread_grid must be [n_lat, n_lon] >= 1, got {grid}")
        if out.projection.lower() not in PROJECTIONS:
            raise ValueError(f"params maps.projection must be one of {PROJECTIONS}")
        return out


def render_map(
    density_fn: DensityFn,
    sample_fn: SampleFn,
    test_xyz: NDArray[np.float64],
    cfg: MapConfig,
    out_png: Path,
    out_nc: Path,
    *,
    title: str,
    attrs: Mapping[str, Any] | None = None,
    seed_density_fn: SeedDensityFn | None = None,
) -> dict[str, float]:
    """Evaluate a density on the grid, draw samples, write the PNG map and the netCDF grid;
    with ``cfg.spread_seeds`` also the spread over seeds of the log-density, on the coarser
    ``cfg.spread_grid`` (its cost is ``len(spread_seeds)`` densities on that grid).

    Args:
        density_fn: Log-density (nats per steradian) and NFE at points of shape ``(N, 3)``.
        sample_fn: ``n`` generated points, shape ``(n, 3)``.
        test_xyz: Test events, shape ``(N_test, 3)``.
        cfg: Map settings.
        out_png: Map PNG path.
        out_nc: netCDF path.
        title: Map title (the grid normalisation is appended).
        attrs: Extra netCDF global attributes (catalogue, model, ...).
        seed_density_fn: One seed's log-density, needed when ``cfg.spread_seeds`` is set.

    Returns:
        ``{"normalization": Z, "nfe": ..., "max_log_density": ..., "density_seconds": ...,
        "sample_seconds": ..., "spread_seconds": ..., "max_seed_sd": ...}`` (the last two
        0 without a spread).

    Raises:
        ValueError: If the density has the wrong shape or non-finite values, or the samples
            do not have shape ``(n_samples, 3)``.
    """
    lat, lon, xyz = latlon_grid(cfg.n_lat, cfg.n_lon)
    t0 = time.perf_counter()
    logp_flat, nfe = density_fn(xyz)
    density_seconds = time.perf_counter() - t0
    logp_flat = np.asarray(logp_flat, dtype=np.float64)
    if logp_flat.shape != (xyz.shape[0],):
        raise ValueError(f"density_fn returned shape {logp_flat.shape}, expected ({len(xyz)},)")
    bad = int(np.sum(~np.isfinite(logp_flat)))
    if bad:
        raise ValueError(f"density_fn returned {bad} non-finite log-densities on the map grid")
    logp = logp_flat.reshape(cfg.n_lat, cfg.n_lon)
    z = grid_normalization(lat, lon, logp)

    t0 = time.perf_counter()
    samples_xyz = np.asarray(sample_fn(cfg.n_samples), dtype=np.float64)
    sample_seconds = time.perf_counter() - t0
    if samples_xyz.shape != (cfg.n_samples, 3):
        raise ValueError(
            f"sample_fn returned shape {samples_xyz.shape}, expected ({cfg.n_samples}, 3)"
        )
    spread = None
    spread_mask = None
    spread_seconds = 0.0
    if cfg.spread_seeds:
        if seed_density_fn is None:
            raise ValueError("maps.spread_seeds is set but no per-seed density was given")
        t0 = time.perf_counter()
        *spread_grid, mean_logp = seed_spread_and_mean(
            seed_density_fn, cfg.spread_seeds, *cfg.spread_grid
        )
        spread = (spread_grid[0], spread_grid[1], spread_grid[2])
        spread_mask = mean_logp < mass_level(spread[0], spread[1], mean_logp, SPREAD_MASS)
        spread_seconds = time.perf_counter() - t0
    s_lat, s_lon = xyz_to_latlon(samples_xyz)
    t_lat, t_lon = xyz_to_latlon(np.asarray(test_xyz, dtype=np.float64))

    draw_density_map(
        lat,
        lon,
        logp,
        np.stack([t_lat, t_lon], axis=-1),
        np.stack([s_lat, s_lon], axis=-1),
        # The grid sum is a check of the drawing, not of the model (its integral is in the
        # report): a peak narrower than a cell is missed or overcounted.
        f"{title}\nΣ p·area over this {180 / cfg.n_lat:g}° grid = {z:.3f}"
        " (≠ 1 where peaks are narrower than a cell)",
        out_png,
        projection=cfg.projection,
        naturalearth_dir=cfg.naturalearth_dir,
        dynamic_range=cfg.dynamic_range,
        dpi=cfg.dpi,
        display_upsample=cfg.display_upsample,
        spread=spread,
        spread_label=(
            f"seed spread: sd of the log-density over seeds {list(cfg.spread_seeds)}\n"
            f"grey: outside the {100 * SPREAD_MASS:g}% mass region of the seeds' mean density"
        ),
        spread_mask=spread_mask,
    )
    stats = {
        "normalization": z,
        "nfe": float(nfe),
        "max_log_density": float(np.max(logp)),
        "density_seconds": density_seconds,
        "sample_seconds": sample_seconds,
        "spread_seconds": spread_seconds,
        "max_seed_sd": 0.0 if spread is None else float(np.max(spread[2])),
    }
    write_density_netcdf(
        out_nc,
        lat,
        lon,
        logp,
        {
            **dict(attrs or {}),
            "grid_normalization": z,
            "ode_rtol": cfg.rtol,
            "ode_atol": cfg.atol,
            "ode_nfe": int(nfe),
            **({"spread_seeds": list(cfg.spread_seeds)} if spread is not None else {}),
        },
        spread=spread,
    )
    return stats


def seed_spread(
    seed_density_fn: SeedDensityFn, seeds: list[int], n_lat: int, n_lon: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Sample standard deviation (ddof = 1) over seeds of the log-density on a grid.

    Args:
        seed_density_fn: One seed's log-density at points ``(N, 3)``.
        seeds: At least two seeds.
        n_lat: Rows of the spread grid.
        n_lon: Columns of the spread grid.

    Returns:
        ``(lat, lon, sd)`` with ``sd`` of shape ``(n_lat, n_lon)`` in nats.

    Raises:
        ValueError: With fewer than two seeds, or a density of the wrong shape or non-finite.
    """
    lat, lon, sd, _ = seed_spread_and_mean(seed_density_fn, seeds, n_lat, n_lon)
    return lat, lon, sd


def seed_spread_and_mean(
    seed_density_fn: SeedDensityFn, seeds: list[int], n_lat: int, n_lon: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """:func:`seed_spread`, and the log of the seeds' mean density on the same grid.

    Args:
        seed_density_fn: One seed's log-density at points ``(N, 3)``.
        seeds: At least two seeds.
        n_lat: Rows of the spread grid.
        n_lon: Columns of the spread grid.

    Returns:
        ``(lat, lon, sd, mean_log_density)``; the last is ``log(mean_k p_k)`` in nats per
        steradian, shape ``(n_lat, n_lon)``.

    Raises:
        ValueError: With fewer than two seeds, or a density of the wrong shape or non-finite.
    """
    if len(seeds) < 2:
        raise ValueError(f"a seed spread needs at least two seeds, got {seeds}")
    lat, lon, xyz = latlon_grid(n_lat, n_lon)
    rows = []
    for seed in seeds:
        logp = np.asarray(seed_density_fn(seed, xyz), dtype=np.float64)
        if logp.shape != (xyz.shape[0],) or not np.all(np.isfinite(logp)):
            raise ValueError(f"seed {seed}: density of shape {logp.shape} or not finite")
        rows.append(logp)
    stack = np.stack(rows)
    sd = np.std(stack, axis=0, ddof=1).reshape(n_lat, n_lon)
    peak = stack.max(axis=0)  # log-mean-exp, stable for sharp densities
    mean = peak + np.log(np.mean(np.exp(stack - peak), axis=0))
    return lat, lon, sd, mean.reshape(n_lat, n_lon)
