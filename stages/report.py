"""DVC stage ``report``: ``reports/report.md`` and a self-contained ``reports/report.html``.

Reads the ``report`` section of params.yaml::

    report:
      title: geosgm report
      compare_rev: HEAD      # previous version for the versions section (a git revision)

and assembles, with :func:`pipeline.report.build.build_report`:

* the test-NLL table of ``reports/summary.json`` beside the published rows;
* training-loss curves drawn from the ``loss_history`` of every
  ``reports/metrics/<catalogue>/<model>.json`` into ``reports/figures/loss/<catalogue>.png``;
* the maps ``reports/maps/<catalogue>/<model>.png`` of the ``maps`` stage;
* the geometry stage's ``reports/geometry/*.json`` and ``*.png`` when that folder exists;
* the versions section: this run against ``summary.json`` at ``compare_rev`` (read with
  ``git show``, or through DVC if the file is DVC-tracked). ``HEAD`` is the last committed
  version, i.e. the previous one while a ``dvc repro`` result is not yet committed.

Usage::

    python -m stages.report
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.report.build import build_report
from pipeline.report.loss_curves import draw_loss_curves
from pipeline.report.revisions import read_summary_at_revision
from pipeline.report.summary import DEFAULT_SUMMARY_PATH, validate_summary
from pipeline.report.versions import PreviousVersion
from stages.common import load_params, section

SECTION = "report"


def _read_json(path: Path) -> Any:
    """Parse a JSON file, naming it in the error."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc}); rerun `dvc repro` to write it again"
        ) from exc


def _revision_label(repo: Path, rev: str) -> str:
    """``REV (shorthash)`` when git can resolve ``rev``, else ``REV``."""
    proc = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"{rev} ({proc.stdout.strip()})" if proc.returncode == 0 else rev


def previous_version(repo: Path, rev: str, summary_path: str) -> PreviousVersion:
    """The summary at ``rev``, or a note saying why there is none.

    Args:
        repo: Repository root.
        rev: Git revision (``HEAD`` by default in params).
        summary_path: Path of ``summary.json`` relative to ``repo``.

    Returns:
        The previous version; its ``summary`` is ``None`` when ``rev`` has no summary (first
        run, not a git repository, unknown revision).

    Raises:
        ValueError: If the summary at ``rev`` exists but is malformed.
    """
    label = _revision_label(repo, rev)
    try:
        return PreviousVersion(label, read_summary_at_revision(repo, rev, summary_path), rev=rev)
    except FileNotFoundError as exc:
        note = f"no {summary_path} there: {exc}".splitlines()[0]
        return PreviousVersion(label, None, note, rev=rev)


def loss_figures(
    summary: Mapping[str, Any], metrics_dir: Path, figures_dir: Path
) -> dict[str, Path]:
    """Draw one loss-curve figure per catalogue from the per-model metrics files.

    Args:
        summary: Validated summary (gives the catalogues and models).
        metrics_dir: Folder of ``<catalogue>/<model>.json``.
        figures_dir: Output folder (``<catalogue>.png``).

    Returns:
        ``catalogue -> PNG`` for catalogues with at least one loss history.

    Raises:
        FileNotFoundError: If a per-model metrics file is missing.
        ValueError: If one is malformed.
    """
    out: dict[str, Path] = {}
    for cat, models in summary["results"].items():
        histories: dict[str, Mapping[str, Any]] = {}
        for model in models:
            path = metrics_dir / cat / f"{model}.json"
            if not path.is_file():
                raise FileNotFoundError(
                    f"per-model metrics {path} (written by evaluate) is missing"
                )
            data = _read_json(path)
            history = data.get("loss_history") if isinstance(data, Mapping) else None
            if history is None:
                continue
            if not isinstance(history, Mapping):
                raise ValueError(f"{path}: loss_history must map seed -> [[step, loss], ...]")
            if not any(len(h) for h in history.values()):
                continue
            # a model evaluated from another's weights (ambient_rb_corrected) has its history
            same = [name for name, h in histories.items() if h == history]
            if same:
                histories = {
                    (f"{name} = {model}" if name == same[0] else name): h
                    for name, h in histories.items()
                }
            else:
                histories[model] = history
        if histories:
            out[cat] = draw_loss_curves(
                histories, f"{cat}: training loss", figures_dir / f"{cat}.png"
            )
    return out


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
    parser.add_argument("--out-dir", type=Path, default=Path("reports"))
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
    summary = _read_json(summary_file)
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
        geometry = {p.stem: _read_json(p) for p in sorted(args.geometry_dir.glob("*.json"))}
        geometry_pngs = sorted(args.geometry_dir.glob("*.png"))

    paths = build_report(
        summary,
        args.out_dir,
        map_pngs=maps,
        loss_pngs=loss_figures(summary, args.metrics_dir, args.figures_dir),
        geometry=geometry,
        geometry_pngs=geometry_pngs,
        previous=previous_version(args.repo, cfg["compare_rev"], args.summary),
        title=cfg["title"],
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
