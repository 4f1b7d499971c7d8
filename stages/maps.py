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
      display_upsample: 4    # drawn interpolated on a 4x finer grid (1: the cells)
      spread_seeds: [0, 1, 2, 3, 4]   # sd over seeds of the log-density ([]: none)
      spread_grid: [24, 48]  # the spread's (coarser) grid

loads the trained model ``<models-dir>/<catalogue>/<trained>/seed<model_seed>`` (``<trained>``
is the model itself, or ``ambient_rb`` for ``ambient_rb_corrected``), evaluates its
exact log-density (probability-flow ODE) on the grid, draws samples from it, and writes

* ``<maps-dir>/<catalogue>/<model>.png``: the density with the test events of split seed
  ``model_seed`` on top and the generated samples below (offline cartopy, Natural Earth data
  shipped in ``data/naturalearth``);
* ``<grids-dir>/<catalogue>/<model>.nc``: the grid as CF netCDF (``lat``, ``lon``,
  ``log_density``, and ``log_density_seed_sd`` on the spread grid) with the grid
  normalisation and ODE settings as attributes (``cache: false``: in git, so any two
  versions can be compared with ``geosgm compare``).

Usage::

    python -m stages.maps --catalogue volcano --model rsgm
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipeline.maps.render import MapConfig, render_map
from stages.common import load_params, section

SECTION = "maps"


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
    from pipeline.data.splits import load_split
    from pipeline.evaluation import generate_samples, load_trained, log_density
    from pipeline.variants import check_kind

    cfg = MapConfig.from_params(section(load_params(args.params), SECTION, args.params))
    cat, model = args.catalogue, args.model
    # Each model has its own folder (ambient_rb_corrected's is a copy made by derive@<cat>).
    model_dir = args.models_dir / cat / check_kind(model) / f"seed{cfg.model_seed}"
    trained = load_trained(model_dir, kind=model)
    test_xyz = load_split(
        args.processed_dir / f"{cat}.nc", args.splits_dir / f"{cat}.csv", cfg.model_seed
    )["test"]

    def density_fn(xyz: NDArray[np.float64]) -> tuple[NDArray[np.float64], int]:
        logp, nfe = log_density(
            trained, xyz, rtol=cfg.rtol, atol=cfg.atol, batch_size=cfg.batch_size
        )
        return np.asarray(logp, dtype=np.float64), int(nfe)

    def seed_density_fn(seed: int, xyz: NDArray[np.float64]) -> NDArray[np.float64]:
        seed_dir = model_dir.parent / f"seed{seed}"
        seed_model = trained if seed == cfg.model_seed else load_trained(seed_dir, kind=model)
        logp, _ = log_density(
            seed_model, xyz, rtol=cfg.rtol, atol=cfg.atol, batch_size=cfg.batch_size
        )
        return np.asarray(logp, dtype=np.float64)

    def sample_fn(n: int) -> NDArray[np.float64]:
        return np.asarray(
            generate_samples(trained, n=n, n_steps=cfg.sample_steps, seed=cfg.sample_seed),
            dtype=np.float64,
        )

    how = trained.description or "probability-flow ODE density"
    stats = render_map(
        density_fn,
        sample_fn,
        test_xyz,
        cfg,
        args.maps_dir / cat / f"{model}.png",
        args.grids_dir / cat / f"{model}.nc",
        title=f"{cat} / {model} (seed {cfg.model_seed} model, {how})",
        attrs={
            "catalogue": cat,
            "model": model,
            "model_seed": cfg.model_seed,
            "model_dir": str(model_dir),
        },
        seed_density_fn=seed_density_fn,
    )
    print(
        f"maps {cat}/{model}: Z = {stats['normalization']:.4f}, NFE = {stats['nfe']:.0f}, "
        f"density {stats['density_seconds']:.1f} s, samples {stats['sample_seconds']:.1f} s, "
        f"seed spread {stats['spread_seconds']:.1f} s (max sd {stats['max_seed_sd']:.2f} nats)"
    )
    return stats


def main(argv: list[str] | None = None) -> int:
    """Entry point: one Prefect flow run; 0 on success, 1 on bad params or inputs (on stderr)."""
    from pipeline.flows.stage import stage_main

    args = parse_args(argv)
    return stage_main(lambda: run(args), f"maps-{args.catalogue}-{args.model}", BAD_INPUT, "maps")


if __name__ == "__main__":
    sys.exit(main())
