"""build_report: the report's sections in order, written to ``report.md`` and ``report.html``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.atomic import atomic_write
from pipeline.report.bridge import bridge_blocks
from pipeline.report.document import (
    Block,
    Gallery,
    Heading,
    Image,
    Text,
    render_html,
    render_markdown,
    slug,
)
from pipeline.report.langevin import langevin_blocks
from pipeline.report.map_changes import ChangeMap, change_blocks
from pipeline.report.protocols import protocol_blocks
from pipeline.report.sections import (
    budget_blocks,
    caveat_blocks,
    geometry_blocks,
    glance_blocks,
    map_caption,
    nll_blocks,
)
from pipeline.report.so3 import so3_blocks
from pipeline.report.summary import catalogue_order, validate_summary
from pipeline.report.version_section import version_blocks
from pipeline.report.versions import PreviousVersion

__all__ = ["ReportPaths", "build_report"]


@dataclass
class ReportPaths:
    """Files written by :func:`build_report`.

    Attributes:
        markdown: ``report.md`` (images linked by relative path).
        html: ``report.html`` (images linked, as in the Markdown).
    """

    markdown: Path
    html: Path


def _write_text_atomic(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


#: What each ``split.protocol`` means, in the report's words.
_PROTOCOL_TEXT = {
    "rsgm": "the published RSGM labels (rsgm)",
    "hash": "the append-stable hash split (hash)",
    "rsgm+hash": "the published RSGM labels, hash labels for appended rows (rsgm+hash)",
    "auto": "the published RSGM labels where a catalogue has them, hash labels for appended rows "
    "and for catalogues without them (auto)",
}


def split_protocol_text(protocol: str) -> str:
    """The split protocol spelled out for a reader (unknown names are shown as they are)."""
    return _PROTOCOL_TEXT.get(protocol, protocol)


def build_report(
    summary: Mapping[str, Any],
    out_dir: str | os.PathLike[str],
    *,
    map_pngs: Mapping[str, Mapping[str, str | os.PathLike[str]]] | None = None,
    loss_pngs: Mapping[str, str | os.PathLike[str]] | None = None,
    geometry: Mapping[str, Any] | None = None,
    geometry_pngs: Sequence[str | os.PathLike[str]] = (),
    previous: PreviousVersion | None = None,
    title: str = "geosgm report",
    map_changes: Sequence[ChangeMap] = (),
    so3_tables: Sequence[Mapping[str, Any]] = (),
    bridge_steps: Mapping[str, Any] | None = None,
    bridge_png: str | os.PathLike[str] | None = None,
) -> ReportPaths:
    """Write ``report.md`` and ``report.html`` into ``out_dir``.

    Sections: test-NLL table beside the published rows (best entries marked), training and
    evaluation budget, density maps with test events and generated samples, training-loss
    curves, seed-002 geometry results (if given), versions (this run against ``previous``),
    caveats. Both link images by relative path (so both are small enough for git, beside the
    PNGs they show); the HTML uses inline CSS only and makes no network request.

    Args:
        summary: Summary metrics dict (schema in :mod:`pipeline.report.summary`).
        out_dir: Folder for ``report.md`` and ``report.html`` (created).
        map_pngs: ``catalogue -> model -> PNG`` density maps (missing files raise).
        loss_pngs: ``catalogue -> PNG`` loss-curve figures.
        geometry: ``name -> parsed JSON`` of the geometry stage (``reports/geometry/*.json``).
        geometry_pngs: Figures of the geometry stage.
        previous: The version to compare with; ``None`` leaves the versions section empty.
        title: Report title.
        map_changes: Δ log-density maps against ``previous``
            (:func:`pipeline.report.map_changes.change_maps`), shown in the versions section.
        so3_tables: The SO(3) benchmark's per-mixture metrics (``reports/metrics/so3/``);
            none: no SO(3) section.
        bridge_steps: ``benchmarks/bridge_steps.py``'s JSON (sample quality against reverse
            steps, rsgm and the Schrödinger bridge); None: no bridge section.
        bridge_png: Its figure (:func:`pipeline.report.bridge.draw_bridge_steps`).

    Returns:
        The paths of the two files.

    Raises:
        ValueError: If the summary is malformed.
        FileNotFoundError: If a listed PNG does not exist.
    """
    validate_summary(summary)
    out = Path(out_dir)
    blocks: list[Block] = []

    def heading(level: int, text: str) -> None:
        blocks.append(Heading(level, text, slug(text)))

    heading(1, title)
    seeds = ", ".join(str(s) for s in summary["seeds"])
    blocks.append(
        Text(
            f"Split: {split_protocol_text(str(summary['protocol']))}. Seeds: {seeds}. "
            f"Units: {summary['units']}. "
            "For scale, the uniform density on the sphere has NLL log 4π = 2.531 nats."
        )
    )
    heading(2, "At a glance")
    blocks += glance_blocks(summary, map_pngs or {})
    heading(2, "Test NLL")
    blocks += nll_blocks(summary)
    protocols = protocol_blocks(summary)
    if protocols:
        heading(2, "Memorisation-free protocol and the incumbent")
        blocks += protocols
    langevin = langevin_blocks(summary)
    if langevin:
        heading(2, "Langevin noising")
        blocks += langevin
    so3 = so3_blocks(so3_tables)
    if so3:
        heading(2, "SO(3) benchmark")
        blocks += so3
    bridge = bridge_blocks(bridge_steps, Path(bridge_png) if bridge_png else None)
    if bridge:
        heading(2, "Schrödinger bridge: sample quality against reverse steps")
        blocks += bridge
    heading(2, "Training and evaluation")
    blocks += budget_blocks(summary)
    blocks.append(
        Text(
            "Z is the probability-flow density integrated over a latitude/longitude grid "
            "(≈ 1 for a correctly normalised model)."
        )
    )

    def image(path: str | os.PathLike[str], alt: str, caption: str) -> Image:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"report image {p} ({alt}) does not exist")
        return Image(p, alt, caption)

    heading(2, "Density maps and samples")
    if map_pngs:
        blocks.append(
            Text(
                "Log-density of each model (seed-0 weights) from the exact probability-flow ODE "
                "on a latitude/longitude grid, with the test events of split seed 0 (top), and "
                "samples generated by the reverse geodesic random walk (bottom)."
            )
        )
        for cat in catalogue_order(map_pngs):
            heading(3, cat)
            blocks.append(
                Gallery(
                    [
                        image(png, f"{cat} {model} density map", map_caption(cat, model))
                        for model, png in map_pngs[cat].items()
                    ]
                )
            )
    else:
        blocks.append(Text("No maps were produced."))
    heading(2, "Training loss")
    if loss_pngs:
        for cat in catalogue_order(loss_pngs):
            blocks.append(
                image(
                    loss_pngs[cat],
                    f"{cat} training loss",
                    f"Training loss against steps of each model and seed on the {cat} catalogue.",
                )
            )
    else:
        blocks.append(Text("No loss histories were recorded."))
    if geometry or geometry_pngs:
        heading(2, "Geometry (seed 002)")
        blocks.append(
            Text(
                "Ambient denoising score matching on embedded manifolds: raw and "
                "Rao-Blackwellized targets and the curvature correction, as computed by the "
                "geometry stage."
            )
        )
        for name in sorted(geometry or {}):
            heading(3, name)
            blocks += geometry_blocks(name, (geometry or {})[name])
        for png in geometry_pngs:
            blocks.append(image(png, Path(png).stem, Path(png).stem))
    heading(2, "Versions")
    blocks += version_blocks(summary, previous)
    if map_changes and previous is not None:
        heading(3, "What moved on the maps")
        blocks += change_blocks(list(map_changes), previous.label)
    heading(2, "Caveats")
    blocks += caveat_blocks(summary)

    md_path, html_path = out / "report.md", out / "report.html"
    _write_text_atomic(md_path, render_markdown(blocks, out))
    _write_text_atomic(html_path, render_html(blocks, title, link_from=out))
    return ReportPaths(md_path, html_path)
