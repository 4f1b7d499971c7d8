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
from typing import Any

import torch

from pipeline.ambient import experiments, plots
from stages.common import load_params, section, write_json_atomic

SECTION = "geometry"
BAD_PARAMS: tuple[type[Exception], ...] = (KeyError, ValueError)
"""Errors that mean bad params: a one-line message and exit 1, no traceback."""
EXPERIMENTS: dict[
    str, tuple[Callable[..., dict[str, Any]], Callable[[dict[str, Any], Path], None], str]
] = {
    "variance_collapse": (
        experiments.variance_collapse,
        plots.plot_variance_collapse,
        "variance_collapse",
    ),
    "langevin": (experiments.langevin_equilibria, plots.plot_langevin, "langevin_equilibria"),
    "curvature": (
        experiments.curvature_coefficients,
        plots.plot_curvature,
        "curvature_coefficient",
    ),
    "regression": (experiments.rb_regression, plots.plot_regression, "rb_regression"),
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
        A flat-ish dict of numbers.
    """
    out: dict[str, Any] = {}
    vc = results["variance_collapse"]
    out["variance_collapse"] = {
        k: vc[k]
        for k in (
            "slope_t_sq_small_sigma",
            "slope_t_sq_small_sigma_mc",
            "sigma2_t_sq_at_sigma_min",
            "r_sq_at_sigma_min",
            "r_sq_extrapolated_to_0",
            "score_sq_mean_true",
        )
    }
    lv: dict[str, Any] = {}
    for r in results["langevin"]["records"]:
        key = f"S{r['d']}_kappa{r['kappa']:g}_sigma{r['sigma']:.3f}"
        q = r["quadrature"]
        rec: dict[str, Any] = {
            f"{k}_{stat}": q[k][stat]
            for k in ("true", "rb", "rb_corrected", "heat", "first_order_raw")
            for stat in ("mean", "kappa_eff")
        }
        rec.update(
            {
                k: r["ratios"][k]
                for k in (
                    "rb_over_corrected_kappa",
                    "corrected_over_heat_kappa",
                    "rb_over_true_kappa",
                )
            }
        )
        for k, sim in r.get("simulation", {}).items():
            rec[f"sim_{k}_mean"] = sim["mean_extrapolated"]
            rec[f"sim_{k}_se"] = sim["mean_extrapolated_se"]
        lv[key] = rec
    out["langevin"] = lv
    cv = results["curvature"]
    out["curvature"] = {
        "flat_torus_c_measured": cv["flat_torus_measured"]["c_extrapolated"],
        **{f"{k}_c_measured": v["c_extrapolated"] for k, v in cv["sphere_measured"].items()},
        "operator_max_abs_error": max(
            v["max_abs_error"] for v in cv["operators"].values() if "max_abs_error" in v
        ),
    }
    rg = results["regression"]
    out["regression"] = {
        "n_samples": rg["n_samples"],
        "raw_err_own": rg["raw"]["err_own"],
        "rb_err_own": rg["rb"]["err_own"],
        "raw_err_true": rg["raw"]["err_true"],
        "rb_err_true": rg["rb"]["err_true"],
    }
    return out


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
    for name, (fn, plot, png) in EXPERIMENTS.items():
        t0 = time.perf_counter()
        res = _call(fn, dict(cfg[name] or {}), name, seed)
        res["seconds"] = time.perf_counter() - t0
        results[name] = res
        write_json_atomic(res, args.out / f"{name}.json")
        plot(res, args.out / f"{png}.png")
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
