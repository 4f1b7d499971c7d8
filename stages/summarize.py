"""DVC stage ``summarize``: aggregate per-model metrics into ``reports/summary.json``.

Reads ``ingest.catalogues`` (which catalogues), ``evaluate.models`` and ``ensemble.models``
(which models) and
``train.seeds``; the test NLLs come from ``reports/metrics/<catalogue>/<model>.json`` and the
training seconds from ``reports/timings/<catalogue>/<model>.json`` (both declared DVC deps, so
the stage reruns exactly when one changes); prints the test-NLL table with the published RSGM
row beside ours.

Usage::

    python -m stages.summarize
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stages.common import load_params, section, write_json_atomic

BAD_INPUT: tuple[type[Exception], ...] = (FileNotFoundError, KeyError, ValueError)
"""Errors that mean missing metrics or bad params: a message and exit 1, no traceback."""


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
    from pipeline.report.summary import build_summary

    params = load_params(args.params)
    catalogues = list(section(params, "ingest", args.params)["catalogues"])
    models = list(section(params, "evaluate", args.params)["models"])
    # Ensembles (ensemble@<catalogue>) are reported beside the evaluated models.
    ensembles = (params.get("ensemble") or {}).get("models") or []
    models += [m for m in ensembles if m not in models]
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
