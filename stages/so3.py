"""DVC stage ``so3@<M>``: the SO(3) benchmark for one mixture M: train, score, tabulate.

Reads the ``so3`` section of params.yaml (``models``, ``common`` and per-kind model configs as
in ``train``, ``runner``, ``torch_threads``, the PF-ODE's ``rtol``/``atol``/``batch_size``,
``device``) and ``so3_data.seeds``. For every trained kind (``ambient_rb_corrected`` is scored
from the ``ambient_rb`` weights) the seeds fan out as Prefect tasks; each seed fits its model
to ``data/so3/m<M>/seed<k>.npz`` (``data/models/so3/m<M>/<kind>/seed<k>/``, resumed when
interrupted) and scores the test points by the probability-flow ODE. Writes
``reports/metrics/so3/m<M>.json`` (:func:`pipeline.so3_benchmark.mixture_table`) and the
seconds to ``reports/timings/so3/m<M>.json``.

Usage::

    python -m stages.so3 --mixture 16
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

from pipeline.config.schema import ParamsError
from pipeline.stopping import StopRequested
from stages.common import load_params, section, write_json_atomic

SECTION = "so3"
EXPECTED: tuple[type[Exception], ...] = (
    KeyError,
    ValueError,
    ParamsError,
    FileNotFoundError,
    StopRequested,
)
"""Errors that mean bad input or a stop request: one line, no traceback."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line of the stage."""
    parser = argparse.ArgumentParser(prog="python -m stages.so3", description=__doc__)
    parser.add_argument("--mixture", type=int, required=True, help="components M")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data-dir", type=Path, default=Path("data/so3"))
    parser.add_argument("--models-dir", type=Path, default=Path("data/models/so3"))
    parser.add_argument("--metrics-dir", type=Path, default=Path("reports/metrics/so3"))
    parser.add_argument("--timings-dir", type=Path, default=Path("reports/timings/so3"))
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train and score every kind on one mixture; return the metrics.

    Raises:
        KeyError, ValueError, pipeline.config.schema.ParamsError: On bad params (naming the key).
        FileNotFoundError: If a benchmark file is missing.
        pipeline.stopping.StopRequested: After SIGINT/SIGTERM, once every seed checkpointed.
    """
    from pipeline.flows.fanout import run_seeds
    from pipeline.so3_benchmark import (
        fit_and_score_seed,
        mixture_table,
        mixture_timings,
        model_configs,
    )
    from pipeline.variants import get_variant

    params = load_params(args.params)
    so3 = section(params, SECTION, args.params)
    data = section(params, "so3_data", args.params)
    if args.mixture not in [int(m) for m in data["mixtures"]]:
        raise ValueError(f"{args.params}: so3_data.mixtures has no M = {args.mixture}")
    configs = model_configs(so3)
    results = {}
    for kind, config in configs.items():
        eval_kinds = [m for m in so3["models"] if get_variant(m).trained_from == kind]
        fn = functools.partial(
            fit_and_score_seed,
            kind=kind,
            config=config,
            eval_kinds=eval_kinds,
            mixture=args.mixture,
            # Absolute: a Dask worker started in another folder must still find them.
            data_dir=str(args.data_dir.resolve()),
            models_dir=str((args.models_dir / f"m{args.mixture}").resolve()),
            torch_threads=int(so3.get("torch_threads", 1)),
            rtol=float(so3.get("rtol", 1e-5)),
            atol=float(so3.get("atol", 1e-5)),
            batch_size=int(so3.get("batch_size", 4096)),
            device=str(so3.get("device", "cpu")),
        )
        results[kind] = run_seeds(
            fn,
            [int(s) for s in data["seeds"]],
            runner_spec=so3.get("runner"),
            flow_name=f"so3-m{args.mixture}-{kind}",
            expected=EXPECTED,
        )
    table = mixture_table(args.mixture, results)
    write_json_atomic(table, args.metrics_dir / f"m{args.mixture}.json")
    write_json_atomic(mixture_timings(results), args.timings_dir / f"m{args.mixture}.json")
    true = table["true_density"]["angle"]["mean"]
    for kind, row in table["models"].items():
        print(
            f"so3 M={args.mixture} {kind}: test log-likelihood {row['angle']['mean']:+.3f} "
            f"(angle measure; true density {true:+.3f}), NFE {row['nfe']:.0f}"
        )
    return table


def main(argv: list[str] | None = None) -> int:
    """Train and score one mixture; return the exit code."""
    args = parse_args(argv)
    from pipeline.flows.stage import stage_main

    return stage_main(lambda: run(args), f"so3-m{args.mixture}", EXPECTED, "so3", in_flow=False)


if __name__ == "__main__":
    raise SystemExit(main())
