"""DVC stage ``geometry``: the seed-002 experiments on embedded manifolds (issue 4a-4d).

Reads the ``geometry`` section of params.yaml, needs no catalogue, and writes to
``reports/geometry/``: ``variance_collapse.json``, ``langevin.json``, ``curvature.json``,
``regression.json`` (full results), ``summary.json`` (headline numbers, the DVC metrics) and one
PNG per experiment.

Usage::

    python -m stages.geometry [--params params.yaml] [--out reports/geometry]
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch

from pipeline.ambient import plots
from pipeline.ambient.experiments import (
    curvature_coefficients,
    langevin_equilibria,
    rb_regression,
    variance_collapse,
)
from stages.common import load_params, section, write_json_atomic

SECTION = "geometry"
BAD_PARAMS: tuple[type[Exception], ...] = (KeyError, ValueError)
"""Errors that mean bad params: a one-line message and exit 1, no traceback."""


class Experiment(NamedTuple):
    """One experiment of the stage: its function, headline numbers, figure and figure name."""

    run: Callable[..., dict[str, Any]]
    headline: Callable[[dict[str, Any]], dict[str, Any]]
    plot: Callable[[dict[str, Any], Path], None]
    png: str


#: Params sub-section (and output JSON name) -> experiment, in the order they run.
EXPERIMENTS: dict[str, Experiment] = {
    "variance_collapse": Experiment(
        variance_collapse.variance_collapse,
        variance_collapse.headline,
        plots.plot_variance_collapse,
        "variance_collapse",
    ),
    "langevin": Experiment(
        langevin_equilibria.langevin_equilibria,
        langevin_equilibria.headline,
        plots.plot_langevin,
        "langevin_equilibria",
    ),
    "curvature": Experiment(
        curvature_coefficients.curvature_coefficients,
        curvature_coefficients.headline,
        plots.plot_curvature,
        "curvature_coefficient",
    ),
    "regression": Experiment(
        rb_regression.rb_regression, rb_regression.headline, plots.plot_regression, "rb_regression"
    ),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv: Arguments (None: ``sys.argv[1:]``).

    Returns:
        The namespace (``params``, ``out``).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("reports/geometry"))
    return parser.parse_args(argv)


def _call(
    fn: Callable[..., dict[str, Any]], cfg: dict[str, Any], name: str, seed: int
) -> dict[str, Any]:
    allowed = set(inspect.signature(fn).parameters)
    unknown = set(cfg) - allowed
    if unknown:
        raise KeyError(
            f"geometry.{name}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    kwargs = dict(cfg)
    if "settings" in kwargs:
        kwargs["settings"] = [tuple(map(float, s)) for s in kwargs["settings"]]
    kwargs.setdefault("seed", seed)
    return fn(**kwargs)


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Headline numbers of the four experiments (the stage's DVC metrics).

    Args:
        results: Experiment name -> result dict.

    Returns:
        Experiment name -> its module's ``headline(result)``, in :data:`EXPERIMENTS` order.
    """
    return {name: exp.headline(results[name]) for name, exp in EXPERIMENTS.items()}


def run(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Run every experiment and write its JSON and figure, then ``summary.json``.

    Args:
        args: Parsed command line (``params``, ``out``).

    Returns:
        Full results per experiment name.

    Raises:
        KeyError: If the ``geometry`` section lacks an experiment or has an unknown one.
    """
    cfg = section(load_params(args.params), SECTION, args.params)
    threads = int(cfg.pop("torch_threads", 1))
    seed = int(cfg.pop("seed", 0))
    missing = set(EXPERIMENTS) - set(cfg)
    unknown = set(cfg) - set(EXPERIMENTS)
    if missing or unknown:
        raise KeyError(f"geometry: missing sections {sorted(missing)}, unknown {sorted(unknown)}")
    torch.set_num_threads(threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    for name, exp in EXPERIMENTS.items():
        t0 = time.perf_counter()
        res = _call(exp.run, dict(cfg[name] or {}), name, seed)
        res["seconds"] = time.perf_counter() - t0
        results[name] = res
        write_json_atomic(res, args.out / f"{name}.json")
        exp.plot(res, args.out / f"{exp.png}.png")
        print(f"geometry: {name} done in {res['seconds']:.1f} s")
    write_json_atomic(summarize(results), args.out / "summary.json")
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point: one Prefect flow run; 0 on success, 1 on bad params (message on stderr)."""
    from pipeline.flows.stage import stage_main

    args = parse_args(argv)
    return stage_main(lambda: run(args), "geometry", BAD_PARAMS, "geometry")


if __name__ == "__main__":
    raise SystemExit(main())
