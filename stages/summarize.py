"""DVC stage ``summarize``: aggregate per-model metrics into ``reports/summary.json``.

Reads ``ingest.catalogues`` (which catalogues), ``evaluate.models`` (which models) and
``train.seeds``; the test NLLs come from ``reports/metrics/<catalogue>/<model>.json`` and the
training seconds from ``reports/timings/<catalogue>/<model>.json`` (both declared DVC deps, so
the stage reruns exactly when one changes); prints the test-NLL table with the published RSGM
row beside ours.

Usage::

    python -m stages.summarize
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from stages.common import load_params, section, write_json_atomic

PER_SEED_KEYS = (
    "seed",
    "test_nll",
    "val_nll",
    "nfe",
    "train_steps",
    "train_seconds",
    "normalization",
    "nll_seconds_per_1000",
)
BAD_INPUT: tuple[type[Exception], ...] = (FileNotFoundError, KeyError, ValueError)
"""Errors that mean missing metrics or bad params: a message and exit 1, no traceback."""
ENTRY_KEYS = ("mean", "std", "ci95", "n_test", "nfe_mean", "normalization_max_error")


def _train_seconds(timings_dir: Path, catalogue: str, model: str) -> dict[int, float]:
    """Training seconds per seed of the weights a model uses ({} when not recorded)."""
    from pipeline.kinds import TRAINED_FROM

    path = timings_dir / catalogue / f"{TRAINED_FROM.get(model, model)}.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {int(r["seed"]): float(r["train_seconds"]) for r in data["per_seed"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a timings file ({exc}); rerun the train stage") from exc


def build_summary(
    metrics_dir: Path,
    catalogues: list[str],
    models: list[str],
    seeds: list[int],
    protocol: str,
    timings_dir: Path | None = None,
) -> dict[str, Any]:
    """The summary dict (schema in docs/ARCHITECTURE.md) from the per-model metrics files.

    Raises:
        FileNotFoundError: If a (catalogue, model) metrics file is missing.
    """
    results: dict[str, dict[str, Any]] = {}
    for cat in catalogues:
        results[cat] = {}
        for model in models:
            path = metrics_dir / cat / f"{model}.json"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing (run evaluate@{cat}-{model})")
            try:
                m = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(
                    f"{path}: not valid JSON ({exc}); rerun evaluate@{cat}-{model}"
                ) from exc
            seconds = _train_seconds(timings_dir, cat, model) if timings_dir else {}
            entry = {k: m[k] for k in ENTRY_KEYS if k in m}
            entry["per_seed"] = []
            for r in m["per_seed"]:
                row = {k: r[k] for k in PER_SEED_KEYS if k in r}
                if int(r["seed"]) in seconds:
                    row["train_seconds"] = seconds[int(r["seed"])]
                entry["per_seed"].append(row)
            results[cat][model] = entry
    return {
        "protocol": protocol,
        "seeds": seeds,
        "units": "test NLL in nats per point, w.r.t. the area measure of the unit sphere",
        "weights": "final EMA weights, no model selection",
        "results": results,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Write ``summary.json`` from the per-model metrics and print the table.

    Args:
        args: Parsed command line (``params``, ``metrics_dir``, ``timings_dir``, ``out``).

    Returns:
        The summary dict.

    Raises:
        FileNotFoundError: If a (catalogue, model) metrics file is missing.
        KeyError: If params lack a section the summary needs.
    """
    from pipeline.metrics import format_nll_table

    params = load_params(args.params)
    catalogues = list(section(params, "ingest", args.params)["catalogues"])
    models = list(section(params, "evaluate", args.params)["models"])
    seeds = [int(s) for s in section(params, "train", args.params)["seeds"]]
    protocol = str(section(params, "split", args.params).get("protocol", "rsgm"))
    summary = build_summary(
        args.metrics_dir, catalogues, models, seeds, protocol, timings_dir=args.timings_dir
    )
    write_json_atomic(summary, args.out)
    print(format_nll_table(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    """Write summary.json and print the table; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m stages.summarize", description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics-dir", type=Path, default=Path("reports/metrics"))
    parser.add_argument("--timings-dir", type=Path, default=Path("reports/timings"))
    parser.add_argument("--out", type=Path, default=Path("reports/summary.json"))
    args = parser.parse_args(argv)
    from pipeline.flows.stage import stage_main

    return stage_main(lambda: run(args), "summarize", BAD_INPUT, "summarize")


if __name__ == "__main__":
    raise SystemExit(main())
