"""DVC stage ``train@<catalogue>-<model>``: train one model variant on one catalogue, every seed.

Reads the pair's resolved config, ``data/configs/<catalogue>/<model>.json`` (written by
``train_config@<catalogue>-<model>`` from the ``train`` section of params.yaml), and from
params.yaml only what cannot change a result (``train.runner``, ``train.torch_threads``).
Seeds fan out as Prefect tasks on the runner in ``train.runner`` (threads, processes or a Dask
cluster). Each seed writes ``data/models/<catalogue>/<model>/seed<k>/`` (checkpoint + model
card); an interrupted run resumes from its last checkpoint when the config is unchanged.

Usage::

    python -m stages.train --catalogue earthquake --model rsgm
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.stopping import StopRequested
from stages.common import load_params, section, worker_sees, write_json_atomic
from stages.train_config import CONFIGS_DIR, config_path

SECTION = "train"
EXPECTED: tuple[type[Exception], ...] = (
    KeyError,
    ValueError,  # bad params, a bad catalogue or split, a damaged checkpoint
    FileNotFoundError,
    StopRequested,
)
"""Errors that mean bad input or a stop request: one line, no traceback."""
TIMINGS_DIR = Path("reports/timings")
"""Training seconds per seed (``cache: false``): wall-clock values stay out of the model folder."""


def train_seed(
    seed: int,
    *,
    catalogue: str,
    model: str,
    config: dict[str, Any],
    processed: str,
    split_csv: str,
    models_dir: str,
    torch_threads: int,
) -> dict[str, Any]:
    """Fit one seed (module-level so process and Dask runners can pickle it).

    Returns:
        ``{"seed", "steps", "train_seconds", "resumed_from", "loss_history"}`` (and for some
        variants ``"note"``, a line about the fit).
    """
    import torch

    from pipeline.data.splits import load_split
    from pipeline.stopping import check_stop, install_stop_handlers
    from pipeline.variants import get_variant

    install_stop_handlers()  # in a process-pool worker; a no-op on a worker thread
    check_stop(f"seed {seed}")
    worker_sees(processed)
    torch.set_num_threads(max(1, torch_threads))
    split = load_split(processed, split_csv, seed)
    # float64 as stored: a network variant trains in float32 (its own cast), the kernel
    # density keeps every digit (volcano's bandwidths reach 1e-4 rad).
    parts = {k: torch.as_tensor(split[k], dtype=torch.float64) for k in ("train", "val")}
    out_dir = Path(models_dir) / catalogue / model / f"seed{seed}"
    variant = get_variant(model)
    return variant.fit(config, parts, seed, out_dir, progress=sys.stderr.isatty())


def read_resolved_config(path: Path) -> dict[str, Any]:
    """The pair's resolved config (``train_config@``'s output).

    Raises:
        FileNotFoundError: If it is missing (one line saying which stage writes it).
        ValueError: If it is not the JSON that stage writes.
    """
    if not path.is_file():
        pair = f"{path.parent.name}-{path.stem}"
        raise FileNotFoundError(
            f"{path}: resolved config not found; run `dvc repro train_config@{pair}` first"
        )
    try:
        resolved = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(resolved["config"], dict) or not isinstance(resolved["seeds"], list):
            raise TypeError
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path}: not a resolved config (expected 'config' and 'seeds'); "
            f"run `dvc repro train_config@{path.parent.name}-{path.stem}` again"
        ) from exc
    return dict(resolved)


def write_loss_csv(results: list[dict[str, Any]], path: Path) -> None:
    """Training-loss curves of every seed as one long CSV (``seed,step,loss``) for dvc plots."""
    from pipeline.atomic import atomic_write

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["seed", "step", "loss"])
            for res in results:
                for step, loss in res["loss_history"]:
                    writer.writerow([res["seed"], step, f"{loss:.6g}"])

    atomic_write(path, write)


def write_timings(results: list[dict[str, Any]], path: Path) -> None:
    """Training seconds per seed (this run's; a resumed seed adds its previous seconds)."""
    previous: dict[int, float] = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            previous = {int(r["seed"]): float(r["train_seconds"]) for r in old["per_seed"]}
        except (ValueError, KeyError, TypeError):
            previous = {}  # a damaged timings file only loses the earlier seconds
    per_seed = [
        {
            "seed": r["seed"],
            "steps": r["steps"],
            "resumed_from": r["resumed_from"],
            "train_seconds": r["train_seconds"]
            + (previous.get(int(r["seed"]), 0.0) if r["resumed_from"] else 0.0),
        }
        for r in results
    ]
    write_json_atomic({"per_seed": per_seed}, path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line of the stage."""
    parser = argparse.ArgumentParser(prog="python -m stages.train", description=__doc__)
    parser.add_argument("--catalogue", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--configs-dir", type=Path, default=CONFIGS_DIR)
    parser.add_argument("--processed-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--splits-dir", type=Path, default=Path("data/splits"))
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"))
    parser.add_argument("--plots-dir", type=Path, default=Path("reports/plots/loss"))
    parser.add_argument("--timings-dir", type=Path, default=TIMINGS_DIR)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train every seed of one (catalogue, model) and write the loss curves and timings.

    Raises:
        KeyError, ValueError: On bad params (one line naming the key path).
        pipeline.stopping.StopRequested: After SIGINT/SIGTERM, once every seed checkpointed.
    """
    from pipeline.flows.fanout import run_seeds
    from pipeline.variants import get_variant

    params = load_params(args.params)
    train_params = section(params, SECTION, args.params)
    model = args.model
    variant = get_variant(model)
    if variant.fitted_by != "train":
        raise ValueError(f"model {model!r} is not trained: it is fitted by {variant.fitted_by}@")
    resolved = read_resolved_config(config_path(args.configs_dir, args.catalogue, model))
    config, seeds = resolved["config"], [int(s) for s in resolved["seeds"]]
    fn = functools.partial(
        train_seed,
        catalogue=args.catalogue,
        model=model,
        config=config,
        # Absolute: a Dask worker started in another folder must still write here.
        processed=str((args.processed_dir / f"{args.catalogue}.nc").resolve()),
        split_csv=str((args.splits_dir / f"{args.catalogue}.csv").resolve()),
        models_dir=str(args.models_dir.resolve()),
        torch_threads=int(train_params.get("torch_threads", 1)),
    )
    results = run_seeds(
        fn,
        seeds,
        runner_spec=train_params.get("runner"),
        flow_name=f"train-{args.catalogue}-{model}",
        expected=EXPECTED,
    )
    write_loss_csv(results, args.plots_dir / args.catalogue / f"{model}.csv")
    write_timings(results, args.timings_dir / args.catalogue / f"{model}.json")
    for res in results:
        head = f"train {args.catalogue}/{model} seed {res['seed']}"
        if res.get("note"):
            print(f"{head}: {res['note']} in {res['train_seconds']:.1f} s")
        elif res["loss_history"]:
            print(
                f"{head}: {res['steps']} steps in {res['train_seconds']:.0f} s, "
                f"final loss {res['loss_history'][-1][1]:.4f}"
            )
        else:
            print(f"{head}: {res['steps']} steps")
    return results


def main(argv: list[str] | None = None) -> int:
    """Train every seed of one (catalogue, model); return the exit code."""
    args = parse_args(argv)
    from pipeline.flows.stage import stage_main

    return stage_main(
        lambda: run(args), f"train-{args.catalogue}-{args.model}", EXPECTED, "train", in_flow=False
    )


if __name__ == "__main__":
    raise SystemExit(main())
