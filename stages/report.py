"""DVC stage ``report``: ``reports/report.md`` and ``reports/report.html`` (images linked, in git).

Reads the ``report`` section of params.yaml::

    report:
      title: geosgm report
      compare_rev: auto      # previous version: a git revision, or auto (see below)

and assembles, with :func:`pipeline.report.build.build_report`:

* the test-NLL table of ``reports/summary.json`` beside the published rows;
* training-loss curves drawn from the ``loss_history`` of every
  ``reports/metrics/<catalogue>/<model>.json`` into ``reports/figures/loss/<catalogue>.png``;
* the maps ``reports/maps/<catalogue>/<model>.png`` of the ``maps`` stage;
* the geometry stage's ``reports/geometry/*.json`` and ``*.png`` when that folder exists;
* the SO(3) benchmark's ``reports/metrics/so3/m<M>.json`` (stages ``so3@<M>``);
* the Schrödinger-bridge measurement ``reports/benchmarks/bridge_steps.json``
  (``benchmarks/bridge_steps.py``) when it exists, its figure in ``reports/figures/bridge/``;
* the versions section: this run against ``summary.json`` at ``compare_rev`` (read with
  ``git show``, or through DVC if the file is DVC-tracked). ``auto`` is the latest commit
  whose test NLLs differ from this run's, so a committed report never compares with itself;
  with the Δ log-density map of every map against that version's grid in git
  (``reports/figures/change/<catalogue>/<model>.png``).

Usage::

    python -m stages.report
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from pipeline.report.bridge import draw_bridge_steps
from pipeline.report.build import build_report
from pipeline.report.loss_curves import loss_figures
from pipeline.report.map_changes import change_maps, write_change_index
from pipeline.report.revisions import previous_version
from pipeline.report.summary import DEFAULT_SUMMARY_PATH, read_report_json, validate_summary
from stages.common import load_params, section

SECTION = "report"


BAD_INPUT: tuple[type[Exception], ...] = (ValueError, KeyError, FileNotFoundError)
"""Errors that mean bad params or inputs: a one-line message and exit 1, no traceback."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line of the stage."""
    parser = argparse.ArgumentParser(prog="python -m stages.report", description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--repo", type=Path, default=Path("."), help="git repository root")
    parser.add_argument("--summary", default=DEFAULT_SUMMARY_PATH, help="relative to --repo")
    parser.add_argument("--metrics-dir", type=Path, default=Path("reports/metrics"))
    parser.add_argument("--maps-dir", type=Path, default=Path("reports/maps"))
    parser.add_argument("--geometry-dir", type=Path, default=Path("reports/geometry"))
    parser.add_argument("--figures-dir", type=Path, default=Path("reports/figures/loss"))
    parser.add_argument("--bridge-figures-dir", type=Path, default=Path("reports/figures/bridge"))
    parser.add_argument("--changes-dir", type=Path, default=Path("reports/figures/change"))
    parser.add_argument("--out-dir", type=Path, default=Path("reports"))
    parser.add_argument(
        "--bridge-steps",
        type=Path,
        default=Path("reports/benchmarks/bridge_steps.json"),
        help="benchmarks/bridge_steps.py's output (optional: no bridge section without it)",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> Path:
    """Build the report; return the HTML path."""
    params = load_params(args.params)
    cfg = section(params, SECTION, args.params)
    maps_models = (params.get("maps") or {}).get("models")  # None: every model has a map
    mapped = None if maps_models is None else set(maps_models)
    for key in ("title", "compare_rev"):
        if not isinstance(cfg.get(key), str):
            raise ValueError(f"{args.params}: report.{key} must be a string")
    summary_file = args.repo / args.summary
    if not summary_file.is_file():
        raise FileNotFoundError(f"{summary_file} (written by the summarize stage) is missing")
    summary = read_report_json(summary_file)
    validate_summary(summary, str(summary_file))

    maps: dict[str, dict[str, Path]] = {}
    for cat, models in summary["results"].items():
        for model in models:
            if mapped is not None and model not in mapped:
                continue  # maps.models chooses which models get a map
            png = args.maps_dir / cat / f"{model}.png"
            if not png.is_file():
                raise FileNotFoundError(f"map {png} (written by maps@{cat}-{model}) is missing")
            maps.setdefault(cat, {})[model] = png
    geometry: dict[str, Any] = {}
    geometry_pngs: list[Path] = []
    if args.geometry_dir.is_dir():
        geometry = {p.stem: read_report_json(p) for p in sorted(args.geometry_dir.glob("*.json"))}
        geometry_pngs = sorted(args.geometry_dir.glob("*.png"))

    previous = previous_version(args.repo, cfg["compare_rev"], summary, args.summary)
    changes = []
    shutil.rmtree(args.changes_dir, ignore_errors=True)  # no stale map of an older comparison
    if previous.rev is not None:
        maps_cfg = params.get("maps") or {}
        changes = change_maps(
            args.repo,
            previous.rev,
            "workspace",
            [(cat, model) for cat, models in maps.items() for model in models],
            args.changes_dir,
            naturalearth_dir=maps_cfg.get("naturalearth_dir"),
            display_upsample=int(maps_cfg.get("display_upsample", 1)),
        )
    write_change_index(args.changes_dir, changes, previous.rev, "workspace")
    bridge, bridge_png = None, None
    if args.bridge_steps.is_file():
        bridge = read_report_json(args.bridge_steps)
        bridge_png = draw_bridge_steps(bridge, args.bridge_figures_dir / "steps.png")
    paths = build_report(
        summary,
        args.out_dir,
        map_pngs=maps,
        loss_pngs=loss_figures(summary, args.metrics_dir, args.figures_dir),
        geometry=geometry,
        geometry_pngs=geometry_pngs,
        previous=previous,
        title=cfg["title"],
        map_changes=changes,
        so3_tables=[
            read_report_json(p) for p in sorted((args.metrics_dir / "so3").glob("m*.json"))
        ],
        bridge_steps=bridge,
        bridge_png=bridge_png,
    )
    size = paths.html.stat().st_size / 1e6
    print(f"report: wrote {paths.markdown} and {paths.html} ({size:.1f} MB, self-contained)")
    return paths.html


def main(argv: list[str] | None = None) -> int:
    """Entry point: one Prefect flow run; 0 on success, 1 on bad params or inputs (on stderr)."""
    from pipeline.flows.stage import stage_main

    args = parse_args(argv)
    return stage_main(lambda: run(args), "report", BAD_INPUT, "report")


if __name__ == "__main__":
    sys.exit(main())
