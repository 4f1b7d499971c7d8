"""What a map costs per grid resolution: PF-ODE density seconds for one trained model.

Loads ``data/models/<catalogue>/<model>/seed0`` (run ``make run`` or the ``quick`` profile
first), evaluates its exact log-density on the maps grid at each resolution with the maps
stage's ODE settings (params.yaml ``maps``), and prints seconds, NFE, points per second and
the grid normalisation Z (how well the grid integrates the density). Timings are medians of
``--repeats`` runs on ``--threads`` threads. The seed spread of the maps stage costs
``len(spread_seeds)`` densities on ``spread_grid`` in addition.

Usage::

    .venv/bin/python benchmarks/map_cost.py --catalogue volcano --model rsgm \
        --grids 30x60 60x120 90x180 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pipeline.config import read_yaml_mapping  # noqa: E402
from pipeline.evaluation import load_trained, log_density  # noqa: E402
from pipeline.maps.grid import grid_normalization, latlon_grid  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalogue", default="volcano")
    parser.add_argument("--model", default="rsgm")
    parser.add_argument("--grids", nargs="+", default=["30x60", "60x120", "90x180"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    maps = read_yaml_mapping(ROOT / "params.yaml")["maps"]
    seed_dir = ROOT / "data/models" / args.catalogue / args.model / "seed0"
    trained = load_trained(seed_dir, kind=args.model)
    print(
        f"map cost: {args.catalogue}/{args.model} seed 0, rtol {maps['rtol']}, atol "
        f"{maps['atol']}, {args.threads} threads, median of {args.repeats}"
    )
    print(f"{'grid':>9} {'points':>7} {'seconds':>8} {'pts/s':>7} {'NFE':>5} {'Z':>7} {'deg':>5}")
    for spec in args.grids:
        n_lat, n_lon = (int(v) for v in spec.split("x"))
        lat, lon, xyz = latlon_grid(n_lat, n_lon)
        times, nfe, logp = [], 0, np.zeros(0)
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            logp, nfe = log_density(
                trained, xyz, rtol=maps["rtol"], atol=maps["atol"], batch_size=maps["batch_size"]
            )
            times.append(time.perf_counter() - t0)
        sec = statistics.median(times)
        z = grid_normalization(lat, lon, np.asarray(logp).reshape(n_lat, n_lon))
        print(
            f"{spec:>9} {len(xyz):>7} {sec:>8.1f} {len(xyz) / sec:>7.0f} {nfe:>5} {z:>7.3f} "
            f"{180 / n_lat:>5.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
