"""The test-NLL table: this run's models beside the published rows, best entries marked."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.published import PUBLISHED_BOUND_METHODS, PUBLISHED_NLL
from pipeline.report.document import md_escape
from pipeline.report.summary import catalogue_order, summary_models, validate_summary

__all__ = [
    "NLL_LEGEND",
    "NllCell",
    "NllRow",
    "NllTable",
    "build_nll_table",
    "cell_markers",
    "cell_text",
    "nll_table_markdown",
]


@dataclass
class NllCell:
    """One entry of the NLL table.

    Attributes:
        mean: Mean test NLL over seeds (nats per point).
        std: Sample std over seeds, ``None`` for published rows (not published).
        ci95: 95 % CI half-width over seeds, ``None`` where not published.
        n_seeds: Number of seeds behind the entry (``None`` for published rows).
        best: Lowest mean of its column over all rows.
        best_of_run: Lowest mean of its column among this run's models.
    """

    mean: float
    std: float | None
    ci95: float | None
    n_seeds: int | None = None
    best: bool = False
    best_of_run: bool = False


@dataclass
class NllRow:
    """One method of the NLL table (a published method or one of this run's models).

    Attributes:
        method: Display name.
        source: ``"published"`` or ``"this run"``.
        cells: Catalogue -> entry (missing catalogues have no key).
        is_bound: Whether the row reports a likelihood bound rather than the NLL.
    """

    method: str
    source: Literal["published", "this run"]
    cells: dict[str, NllCell]
    is_bound: bool = False


@dataclass
class NllTable:
    """Test-NLL table: this run's models beside the published rows.

    Attributes:
        catalogues: Column order.
        rows: Published rows first, then this run's models.
    """

    catalogues: list[str]
    rows: list[NllRow]


def build_nll_table(
    summary: Mapping[str, Any],
    published: Mapping[str, Mapping[str, tuple[float, float | None]]] | None = None,
) -> NllTable:
    """Build the test-NLL table and mark the best (lowest mean) entry of every column.

    Args:
        summary: Summary metrics dict (schema in :mod:`pipeline.report.summary`).
        published: ``method -> catalogue -> (mean, ci95 or None)``; default
            :data:`PUBLISHED_NLL`. Pass ``{}`` for this run's models only.

    Returns:
        The table; columns are the published catalogues present in either source, then others.

    Raises:
        ValueError: If the summary does not follow the schema.
    """
    validate_summary(summary)
    published = PUBLISHED_NLL if published is None else published
    results = summary["results"]
    cats = catalogue_order(set(results) | {c for row in published.values() for c in row})
    rows: list[NllRow] = []
    for method, entries in published.items():
        cells = {c: NllCell(float(m), None, ci) for c, (m, ci) in entries.items() if c in cats}
        rows.append(NllRow(method, "published", cells, method in PUBLISHED_BOUND_METHODS))
    for model in summary_models(summary):
        cells = {}
        for cat in cats:
            entry = results.get(cat, {}).get(model)
            if entry is not None:
                cells[cat] = NllCell(
                    float(entry["mean"]),
                    float(entry["std"]),
                    float(entry["ci95"]),
                    len(entry["per_seed"]),
                )
        rows.append(NllRow(model, "this run", cells))
    for cat in cats:
        column = [(row, row.cells[cat]) for row in rows if cat in row.cells]
        finite = [(r, c) for r, c in column if math.isfinite(c.mean)]
        if finite:
            low = min(c.mean for _, c in finite)
            for _, c in finite:
                c.best = c.mean == low
        ours = [(r, c) for r, c in finite if r.source == "this run"]
        if ours:
            low = min(c.mean for _, c in ours)
            for _, c in ours:
                c.best_of_run = c.mean == low
    return NllTable(cats, rows)


def _fmt(x: float | None, digits: int) -> str:
    """Fixed-point number with an ASCII minus; ``None``/NaN give an em dash."""
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:.{digits}f}"


def cell_text(cell: NllCell, source: str) -> str:
    """Plain-text content of an NLL cell (without best markers).

    Args:
        cell: The entry.
        source: Its row's source: published rows show ``mean (±ci95)`` with 2 decimals, this
            run's ``mean ± std (±ci95)`` with 3.

    Returns:
        The text (``—`` for a missing or non-finite number).
    """
    if source == "published":
        ci = "" if cell.ci95 is None else f" (±{_fmt(cell.ci95, 2)})"
        return f"{_fmt(cell.mean, 2)}{ci}"
    return f"{_fmt(cell.mean, 3)} ± {_fmt(cell.std, 3)} (±{_fmt(cell.ci95, 3)})"


def cell_markers(cell: NllCell) -> str:
    """Marker suffix for best entries.

    Args:
        cell: The entry.

    Returns:
        ``★`` for the best of its column, ``◆`` for the best of this run's models, both, or ``""``.
    """
    return ("★" if cell.best else "") + ("◆" if cell.best_of_run else "")


#: The legend printed under the NLL table (Markdown and HTML).
NLL_LEGEND = (
    "Test NLL in nats per point (lower is better). This run: mean ± sample std over seeds "
    "(95 % CI half-width, t quantile). Published: mean (95 % CI half-width over 5 seeds). "
    "★ best entry of the column; ◆ best of this run's models; ‡ a likelihood bound, not the NLL."
)


def nll_table_markdown(
    summary: Mapping[str, Any],
    published: Mapping[str, Mapping[str, tuple[float, float | None]]] | None = None,
) -> str:
    """The test-NLL table as a Markdown (GitHub) table, best entries in bold with markers.

    Args:
        summary: Summary metrics dict.
        published: Published rows (default :data:`PUBLISHED_NLL`; ``{}`` for none).

    Returns:
        Markdown text: the table followed by a one-line legend.
    """
    table = build_nll_table(summary, published)
    header = ["method", "source", *table.catalogues]
    lines = [
        "| " + " | ".join(md_escape(h) for h in header) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * len(table.catalogues)) + "|",
    ]
    for row in table.rows:
        name = row.method + (" ‡" if row.is_bound else "")
        cells = [md_escape(name), row.source]
        for cat in table.catalogues:
            cell = row.cells.get(cat)
            if cell is None:
                cells.append("—")
                continue
            text = cell_text(cell, row.source) + cell_markers(cell)
            cells.append(f"**{text}**" if cell.best else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + NLL_LEGEND + "\n"
