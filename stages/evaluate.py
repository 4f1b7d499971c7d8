"""DVC stage ``evaluate@<catalogue>-<model>``: test NLL of every seed's final EMA model.

Reads the ``evaluate`` section of params.yaml. For each seed: the test (and validation) NLL by
the probability-flow ODE (the likelihood's solver and exact divergence, the process's reference
law as base, tolerances from params; :mod:`pipeline.split_scores`), its
mean number of function evaluations, and for the seeds in ``evaluate.normalization_seeds`` the
integral of the model density over S² on a Gauss–Legendre grid (expect 1). No model selection
is made: the final EMA weights are evaluated. Writes ``reports/metrics/<catalogue>/<model>.json``.

Usage::

    python -m stages.evaluate --catalogue earthquake --model rsgm
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.stopping import StopRequested
from stages.common import load_params, section, worker_sees, write_json_atomic

SECTION = "evaluate"
EXPECTED: tuple[type[Exception], ...] = (
    KeyError,
    ValueError,  # bad params, a bad catalogue or split, a damaged checkpoint
    FileNotFoundError,
    StopRequested,
)
"""Errors that mean bad input or a stop request: one line, no traceback."""


def evaluate_seed(
    seed: int,
    *,
    model: str,
    model_dir: str,
    processed: str,
    split_csv: str,
    settings: dict[str, Any],
    normalization_seeds: list[int],
) -> dict[str, Any]:
    """Evaluate one seed (module-level so process and Dask runners can pickle it)."""
    import torch

    from pipeline.data.splits import load_split
    from pipeline.split_scores import score_seed
    from pipeline.stopping import check_stop, install_stop_handlers

    install_stop_handlers()  # in a process-pool worker; a no-op on a worker thread
    check_stop(f"seed {seed}")
    worker_sees(processed)
    torch.set_num_threads(max(1, int(settings.get("torch_threads", 1))))
    parts = load_split(processed, split_csv, seed)
    return score_seed(
        Path(model_dir) / f"seed{seed}",
        model,
        parts,
        settings,
        seed=seed,
        normalize=seed in normalization_seeds,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line of the stage."""
    parser = argparse.ArgumentParser(prog="python -m stages.evaluate", description=__doc__)
    parser.add_argument("--catalogue", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--processed-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--splits-dir", type=Path, default=Path("data/splits"))
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"))
    parser.add_argument("--metrics-dir", type=Path, default=Path("reports/metrics"))
    parser.add_argument("--scores-dir", type=Path, default=Path("data/scores"))
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate every seed, write the metrics file and print the line of results.

    Raises:
        KeyError, ValueError: On bad params (one line naming the key path) or a bad checkpoint.
        FileNotFoundError: If a model folder or input is missing.
        pipeline.stopping.StopRequested: After SIGINT/SIGTERM.
    """
    from pipeline.atomic import atomic_write
    from pipeline.flows.fanout import run_seeds
    from pipeline.split_scores import metrics_over_seeds, pop_scores

    params = load_params(args.params)
    settings = section(params, SECTION, args.params)
    from pipeline.variants import check_kind

    model = check_kind(args.model)
    seeds = [int(s) for s in section(params, "train", args.params)["seeds"]]
    norm_seeds = settings.get("normalization_seeds", "all")
    norm_list = seeds if norm_seeds == "all" else [int(s) for s in norm_seeds]
    fn = functools.partial(
        evaluate_seed,
        model=model,
        # Each model has its own folder (ambient_rb_corrected's is a copy made by derive@<cat>).
        # Absolute: a Dask worker started in another folder must still read here.
        model_dir=str((args.models_dir / args.catalogue / model).resolve()),
        processed=str((args.processed_dir / f"{args.catalogue}.nc").resolve()),
        split_csv=str((args.splits_dir / f"{args.catalogue}.csv").resolve()),
        settings=settings,
        normalization_seeds=norm_list,
    )
    per_seed = run_seeds(
        fn,
        seeds,
        runner_spec=settings.get("runner"),
        flow_name=f"evaluate-{args.catalogue}-{model}",
        expected=EXPECTED,
    )
    arrays = pop_scores(per_seed)
    metrics = metrics_over_seeds(model, args.catalogue, per_seed, settings)
    # Per-event log-densities (val and test, every seed): what an ensemble is fitted on.
    scores_path = args.scores_dir / args.catalogue / f"{model}.npz"
    scores_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(scores_path, lambda p: np.savez(p, **arrays), suffix=".npz")  # type: ignore[arg-type]
    write_json_atomic(metrics, args.metrics_dir / args.catalogue / f"{model}.json")
    print(
        f"evaluate {args.catalogue}/{model}: test NLL {metrics['mean']:+.3f}"
        f" ± {metrics['ci95']:.3f}"
        f" (std {metrics['std']:.3f}, {len(seeds)} seeds, NFE {metrics['nfe_mean']:.0f})"
    )
    print(json.dumps({r["seed"]: round(r["test_nll"], 4) for r in per_seed}))
    for radius, entry in metrics["far"].items():
        if "mean" in entry:
            print(
                f"  beyond {radius}°: test NLL {entry['mean']:+.3f} ± {entry['ci95']:.3f}"
                f" ({100 * entry['share_mean']:.0f}% of test events)"
            )
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Evaluate every seed of one (catalogue, model); return the exit code."""
    args = parse_args(argv)
    from pipeline.flows.stage import stage_main

    flow = f"evaluate-{args.catalogue}-{args.model}"
    return stage_main(lambda: run(args), flow, EXPECTED, "evaluate", in_flow=False)


if __name__ == "__main__":
    raise SystemExit(main())
