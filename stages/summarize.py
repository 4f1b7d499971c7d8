"""DVC stage ``summarize``: aggregate per-model metrics into ``reports/metrics/summary.json``.

Reads ``ingest.catalogues`` (which catalogues), ``evaluate.models`` (which models) and
``train.seeds``; prints the test-NLL table with the published RSGM row beside ours.

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


def build_summary(
    metrics_dir: Path, catalogues: list[str], models: list[str], seeds: list[int], protocol: str
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
            m = json.loads(path.read_text())
            entry = {k: m[k] for k in ENTRY_KEYS if k in m}
            entry["per_seed"] = [{k: r[k] for k in PER_SEED_KEYS if k in r} for r in m["per_seed"]]
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
        args: Parsed command line (``params``, ``metrics_dir``).

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
    summary = build_summary(args.metrics_dir, catalogues, models, seeds, protocol)
    write_json_atomic(summary, args.metrics_dir / "summary.json")
    print(format_nll_table(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    """Write summary.json and print the table; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m stages.summarize", description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--metrics-dir", type=Path, default=Path("reports/metrics"))
    args = parser.parse_args(argv)
    from pipeline.flows.stage import stage_main

    return stage_main(lambda: run(args), "summarize", BAD_INPUT, "summarize")


if __name__ == "__main__":
    raise SystemExit(main())
