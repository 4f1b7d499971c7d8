"""DVC stage ``maps@<catalogue>-<model>``: density map, samples and CF netCDF grid of a model.

Reads the ``maps`` section of params.yaml::

    maps:
      n_lat: 72              # density grid (cell centres), n_lat x n_lon PF-ODE evaluations
      n_lon: 144
      rtol: 1.0e-5           # probability-flow ODE tolerances (dopri5)
      atol: 1.0e-5
      batch_size: 4096       # grid points per ODE solve
      model_seed: 0          # which trained seed is mapped: data/models/<cat>/<model>/seed<k>
      n_samples: 2000        # generated samples drawn in the second panel
      sample_steps: 300      # reverse geodesic random-walk steps
      sample_seed: 0
      projection: robinson   # robinson | mollweide
      dynamic_range: 10.0    # nats of the colour scale below the peak log-density
      dpi: 100
      naturalearth_dir: data/naturalearth

loads the trained model ``<models-dir>/<catalogue>/<trained>/seed<model_seed>`` (``<trained>``
is the model itself, or ``ambient_rb`` for ``ambient_rb_corrected``), evaluates its
exact log-density (probability-flow ODE) on the grid, draws samples from it, and writes

* ``<maps-dir>/<catalogue>/<model>.png``: the density with the test events of split seed
  ``model_seed`` on top and the generated samples below (offline cartopy, Natural Earth data
  shipped in ``data/naturalearth``);
* ``<grids-dir>/<catalogue>/<model>.nc``: the grid as CF netCDF (``lat``, ``lon``,
  ``log_density``) with the grid normalisation and ODE settings as attributes.

Usage::

    python -m stages.maps --catalogue volcano --model rsgm
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.geometry.coords import xyz_to_latlon
from pipeline.maps import (
    PROJECTIONS,
    draw_density_map,
    grid_normalization,
    latlon_grid,
    write_density_netcdf,
)
from stages.common import load_params, section

SECTION = "maps"

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
}

#: ``density_fn(xyz (N, 3) float64) -> (log_density (N,), nfe)``.
DensityFn = Callable[[NDArray[np.float64]], tuple[NDArray[np.float64], int]]
#: ``sample_fn(n) -> xyz (n, 3)``.
SampleFn = Callable[[int], NDArray[np.float64]]


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
        positive = ("n_lat", "n_lon", "rtol", "atol", "batch_size", "sample_steps", "dpi")
        for key in positive:
            if getattr(out, key) <= 0:
                raise ValueError(f"params maps.{key} must be > 0, got {getattr(out, key)!r}")
        if out.n_samples < 0 or out.dynamic_range <= 0:
            raise ValueError("params maps: n_samples must be >= 0 and dynamic_range > 0")
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
) -> dict[str, float]:
    """Evaluate a density on the grid, draw samples, write the PNG map and the netCDF grid.

    Args:
        density_fn: Log-density (nats per steradian) and NFE at points of shape ``(N, 3)``.
        sample_fn: ``n`` generated points, shape ``(n, 3)``.
        test_xyz: Test events, shape ``(N_test, 3)``.
        cfg: Map settings.
        out_png: Map PNG path.
        out_nc: netCDF path.
        title: Map title (the grid normalisation is appended).
        attrs: Extra netCDF global attributes (catalogue, model, ...).

    Returns:
        ``{"normalization": Z, "nfe": ..., "max_log_density": ..., "density_seconds": ...,
        "sample_seconds": ...}``.

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
    s_lat, s_lon = xyz_to_latlon(samples_xyz)
    t_lat, t_lon = xyz_to_latlon(np.asarray(test_xyz, dtype=np.float64))

    draw_density_map(
        lat,
        lon,
        logp,
        np.stack([t_lat, t_lon], axis=-1),
        np.stack([s_lat, s_lon], axis=-1),
        f"{title}\ngrid normalisation Z = {z:.3f}",
        out_png,
        projection=cfg.projection,
        naturalearth_dir=cfg.naturalearth_dir,
        dynamic_range=cfg.dynamic_range,
        dpi=cfg.dpi,
    )
    stats = {
        "normalization": z,
        "nfe": float(nfe),
        "max_log_density": float(np.max(logp)),
        "density_seconds": density_seconds,
        "sample_seconds": sample_seconds,
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
        },
    )
    return stats


BAD_INPUT: tuple[type[Exception], ...] = (ValueError, KeyError, FileNotFoundError)
"""Errors that mean bad params or inputs: a one-line message and exit 1, no traceback."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line of the stage."""
    parser = argparse.ArgumentParser(prog="python -m stages.maps", description=__doc__)
    parser.add_argument("--catalogue", required=True, help="catalogue name")
    parser.add_argument("--model", required=True, help="model name (train.models)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--processed-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--splits-dir", type=Path, default=Path("data/splits"))
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"))
    parser.add_argument("--maps-dir", type=Path, default=Path("reports/maps"))
    parser.add_argument("--grids-dir", type=Path, default=Path("data/maps"))
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, float]:
    """Map one trained model; return the statistics of :func:`render_map`."""
    from pipeline import zoo
    from pipeline.data.splits import load_split
    from pipeline.evaluation import generate_samples, load_trained, log_density

    cfg = MapConfig.from_params(section(load_params(args.params), SECTION, args.params))
    cat, model = args.catalogue, args.model
    # Each model has its own folder (ambient_rb_corrected's is a copy made by derive@<cat>).
    model_dir = args.models_dir / cat / zoo.check_kind(model) / f"seed{cfg.model_seed}"
    trained = load_trained(model_dir, kind=model)
    test_xyz = load_split(
        args.processed_dir / f"{cat}.nc", args.splits_dir / f"{cat}.csv", cfg.model_seed
    )["test"]

    def density_fn(xyz: NDArray[np.float64]) -> tuple[NDArray[np.float64], int]:
        logp, nfe = log_density(
            trained, xyz, rtol=cfg.rtol, atol=cfg.atol, batch_size=cfg.batch_size
        )
        return np.asarray(logp, dtype=np.float64), int(nfe)

    def sample_fn(n: int) -> NDArray[np.float64]:
        return np.asarray(
            generate_samples(trained, n=n, n_steps=cfg.sample_steps, seed=cfg.sample_seed),
            dtype=np.float64,
        )

    stats = render_map(
        density_fn,
        sample_fn,
        test_xyz,
        cfg,
        args.maps_dir / cat / f"{model}.png",
        args.grids_dir / cat / f"{model}.nc",
        title=f"{cat} / {model} (seed {cfg.model_seed} model, probability-flow ODE density)",
        attrs={
            "catalogue": cat,
            "model": model,
            "model_seed": cfg.model_seed,
            "model_dir": str(model_dir),
        },
    )
    print(
        f"maps {cat}/{model}: Z = {stats['normalization']:.4f}, NFE = {stats['nfe']:.0f}, "
        f"density {stats['density_seconds']:.1f} s, samples {stats['sample_seconds']:.1f} s"
    )
    return stats


def main(argv: list[str] | None = None) -> int:
    """Entry point: one Prefect flow run; 0 on success, 1 on bad params or inputs (on stderr)."""
    from pipeline.flows.stage import stage_main

    args = parse_args(argv)
    return stage_main(lambda: run(args), f"maps-{args.catalogue}-{args.model}", BAD_INPUT, "maps")


if __name__ == "__main__":
    sys.exit(main())
