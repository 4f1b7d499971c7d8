"""The report's sections: summary data and geometry results turned into blocks.

The versions section (this run against the previous version):
:mod:`pipeline.report.version_section`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.published import (
    PUBLISHED_BOUND_METHODS,
    PUBLISHED_NLL,
    PUBLISHED_RSGM_METHOD,
    PUBLISHED_TRAIN_STEPS,
)
from pipeline.report.document import Block, Gallery, HtmlCell, Image, Table, Text
from pipeline.report.nll_table import NLL_LEGEND, build_nll_table, cell_markers, cell_text
from pipeline.report.protocols import winners
from pipeline.report.summary import catalogue_order, seed_mean

__all__ = [
    "VOLCANO_DISTINCT_POINTS",
    "VOLCANO_ROWS",
    "budget_blocks",
    "caveat_blocks",
    "change_caption",
    "geometry_blocks",
    "map_caption",
    "model_title",
    "nll_blocks",
]

#: What each model id is, for captions a newcomer can read.
_MODEL_TITLES = {
    "kde": "adaptive kernel density (kde)",
    "kde_rsgm": "kde/rsgm mixture (kde_rsgm)",
    "rsgm": "Riemannian score-based model (rsgm)",
    "rsgm_langevin": "Riemannian score-based model with Langevin noising (rsgm_langevin)",
    "ambient_raw": "ambient score model, raw target (ambient_raw)",
    "ambient_rb": "ambient score model, Rao-Blackwellized target (ambient_rb)",
    "ambient_rb_corrected": "ambient score model, Rao-Blackwellized and curvature-corrected "
    "(ambient_rb_corrected)",
    "dsb": "diffusion Schrödinger bridge (dsb)",
}


def model_title(model: str) -> str:
    """A model id as words with the id in brackets, e.g. ``Riemannian score-based model (rsgm)``."""
    return _MODEL_TITLES.get(model, model)


def map_caption(catalogue: str, model: str, *, best: bool = False) -> str:
    """The caption of a density map (:func:`pipeline.maps.render.render_map`'s panels).

    Args:
        catalogue: Catalogue name, e.g. ``volcano``.
        model: Model id, e.g. ``rsgm``.
        best: The catalogue's lowest test NLL of this run (the "At a glance" gallery).

    Returns:
        One or two full sentences.
    """
    who = f"{model_title(model)} on the {catalogue} catalogue"
    lead = f"Best model by test NLL here: {who}." if best else f"The {who}."
    return (
        f"{lead} Top: its log-density (seed-0 weights) with the test events of split seed 0 "
        "as red rings; below: samples it generated; last, where several seeds were trained: "
        "the spread of the log-density over seeds, grey where the density is negligible."
    )


def change_caption(catalogue: str, model: str, since: str) -> str:
    """The caption of a change map (:func:`pipeline.maps.change.draw_change_map`).

    Args:
        catalogue: Catalogue name.
        model: Model id.
        since: The previous version's label (a git revision).

    Returns:
        A full sentence.
    """
    return (
        f"How the log-density of the {model_title(model)} on the {catalogue} catalogue moved "
        f"since {since}: red where events are more likely now, hatched beyond twice the "
        "seeds' spread."
    )


#: Volcano catalogue: rows and distinct (lat, lon) points.
VOLCANO_ROWS = 827
VOLCANO_DISTINCT_POINTS = 267


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Flatten nested dicts into ``(dotted.key, scalar)`` pairs; lists of scalars are kept."""
    out: list[tuple[str, Any]] = []
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        out.append((prefix or "value", obj))
    return out


def _scalar_text(value: Any) -> str:
    """Readable text for a JSON value in a table cell."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        if all(not isinstance(v, (list, Mapping)) for v in value):
            items = [_scalar_text(v) for v in value[:12]]
            return "[" + ", ".join(items) + (", …" if len(value) > 12 else "") + "]"
        return f"[{len(value)} items]"
    return str(value)


def geometry_blocks(name: str, data: Any) -> list[Block]:
    """Tables for one geometry-stage JSON: record lists as tables, the rest as key/value.

    Args:
        name: The JSON file's stem (used in the captions).
        data: Its parsed content.

    Returns:
        A quantity/value table of the scalars, then one table per list of records.
    """
    blocks: list[Block] = []
    records: list[tuple[str, list[Mapping[str, Any]]]] = []
    scalars: list[tuple[str, Any]] = []
    for key, value in _flatten(data):
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            records.append((key, value))
        else:
            scalars.append((key, value))
    if scalars:
        blocks.append(
            Table(
                ["quantity", "value"],
                [[HtmlCell(k), HtmlCell(_scalar_text(v))] for k, v in scalars],
                {1},
                caption=f"{name}",
            )
        )
    for key, recs in records:
        cols: list[str] = []
        for rec in recs:
            for k in rec:
                if k not in cols:
                    cols.append(str(k))
        rows = [[HtmlCell(_scalar_text(rec.get(c, ""))) for c in cols] for rec in recs]
        blocks.append(Table(cols, rows, set(range(len(cols))), caption=f"{name}: {key}"))
    return blocks


def nll_blocks(summary: Mapping[str, Any]) -> list[Block]:
    """The NLL table as a block (cells carry the exact numbers as data attributes).

    Args:
        summary: Summary metrics dict.

    Returns:
        The table (this run's first row marked ``first-of-run``) and its legend.
    """
    table = build_nll_table(summary)
    header = ["method", "source", *table.catalogues]
    rows: list[list[HtmlCell]] = []
    for row in table.rows:
        cells = [HtmlCell(row.method + (" ‡" if row.is_bound else "")), HtmlCell(row.source)]
        for cat in table.catalogues:
            cell = row.cells.get(cat)
            if cell is None:
                cells.append(HtmlCell("—"))
                continue
            attrs = {"data-catalogue": cat, "data-method": row.method, "data-source": row.source}
            attrs["data-mean"] = repr(cell.mean)
            if cell.std is not None:
                attrs["data-std"] = repr(cell.std)
            if cell.ci95 is not None:
                attrs["data-ci95"] = repr(cell.ci95)
            cells.append(
                HtmlCell(cell_text(cell, row.source) + cell_markers(cell), cell.best, attrs)
            )
        rows.append(cells)
    first_ours = next((i for i, r in enumerate(table.rows) if r.source == "this run"), None)
    row_classes = {} if first_ours is None else {first_ours: "first-of-run"}
    return [
        Table(header, rows, set(range(2, len(header))), row_classes=row_classes),
        Text(NLL_LEGEND),
    ]


def budget_blocks(summary: Mapping[str, Any]) -> list[Block]:
    """Per catalogue × model: seeds, test points, training budget, NFE and normalisation.

    Args:
        summary: Summary metrics dict.

    Returns:
        One table; optional per-seed values absent everywhere show as ``—``.
    """
    header = [
        "catalogue",
        "model",
        "seeds",
        "test points",
        "train steps / seed",
        "train time / seed",
        "mean NFE",
        "normalisation Z (min–max)",
        "val NLL mean",
    ]
    rows: list[list[HtmlCell]] = []
    results = summary["results"]
    for cat in catalogue_order(results):
        for model in results[cat]:
            entry = results[cat][model]
            ps = entry["per_seed"]
            steps = seed_mean(entry, "train_steps")
            secs = seed_mean(entry, "train_seconds")
            nfe = seed_mean(entry, "nfe")
            val = seed_mean(entry, "val_nll")
            z = [float(r["normalization"]) for r in ps if r.get("normalization") is not None]
            z_text = (
                "—" if not z else f"{min(z):.4f}–{max(z):.4f} ({len(z)} seed{'s' * (len(z) > 1)})"
            )
            rows.append(
                [
                    HtmlCell(cat),
                    HtmlCell(model),
                    HtmlCell(str(len(ps))),
                    HtmlCell(str(entry["n_test"])),
                    HtmlCell("—" if steps is None else f"{steps:,.0f}"),
                    HtmlCell("—" if secs is None else _duration(secs)),
                    HtmlCell("—" if nfe is None else f"{nfe:.0f}"),
                    HtmlCell(z_text),
                    HtmlCell("—" if val is None else f"{val:.3f}"),
                ]
            )
    return [Table(header, rows, set(range(2, len(header))))]


def _duration(seconds: float) -> str:
    """Seconds below two minutes, then minutes, then hours."""
    if seconds < 120.0:
        return f"{seconds:.0f} s"
    if seconds < 7200.0:
        return f"{seconds / 60.0:.1f} min"
    return f"{seconds / 3600.0:.1f} h"


def _budget_caveat(summary: Mapping[str, Any]) -> str:
    """What the run's training budget trades away against the published one."""
    per_seed = [
        r for models in summary["results"].values() for e in models.values() for r in e["per_seed"]
    ]
    steps = np.array([float(r["train_steps"]) for r in per_seed if "train_steps" in r])
    secs = np.array([float(r["train_seconds"]) for r in per_seed if "train_seconds" in r])
    if steps.size:
        frac = float(np.median(steps)) / PUBLISHED_TRAIN_STEPS
        used = (
            f"This run trained each seed for {np.median(steps):,.0f} steps (median over models "
            f"and seeds; range {steps.min():,.0f}–{steps.max():,.0f})"
            + (
                f" in {_duration(float(np.median(secs)))} of wall time (median)"
                if secs.size
                else ""
            )
            + f", {100 * frac:.2g} % of the {PUBLISHED_TRAIN_STEPS:,} steps"
        )
    else:
        used = (
            "The summary records no training steps; compare with the "
            f"{PUBLISHED_TRAIN_STEPS:,} steps"
        )
    return (
        f"**Training budget.** {used} (batch 512, 5×512 network, on a GPU) behind the "
        "published RSGM rows. The default CPU profile trades that budget for a laptop-sized run: "
        "smaller networks, fewer steps and training curves that are still falling at their last "
        "point, so its NLLs are higher (worse) than a full-budget run would give and the gap "
        "to the published rows is mostly budget. The `paper` profile restores the published "
        "budget on a GPU."
    )


def caveat_blocks(summary: Mapping[str, Any]) -> list[Block]:
    """Caveats every reader of the table needs.

    Args:
        summary: Summary metrics dict (its training budget and number of seeds).

    Returns:
        One Markdown list: volcano duplicates, the bound row, the training budget, seed noise.
    """
    items = [
        f"**Volcano duplicates.** The volcano catalogue has only {VOLCANO_DISTINCT_POINTS} "
        f"distinct (lat, lon) points among its {VOLCANO_ROWS} rows, so a random row split puts "
        "copies of most test points in the training set. Its test NLL rewards memorising "
        "duplicates (ever sharper peaks give ever lower NLL) rather than generalising; read the "
        "volcano column, ours and the published one alike, with that in mind.",
        "**A bound, not an NLL.** The Riemannian-diffusion row (Huang et al. 2022, marked ‡) "
        "reports a variational likelihood bound, not the exact NLL that every other row reports "
        "from the probability-flow ODE.",
        _budget_caveat(summary),
        f"**Seed noise.** Intervals are over {len(summary['seeds'])} seeds (a new split per "
        "seed); differences smaller than the CI half-widths are not evidence of a better model.",
    ]
    return [Text("\n".join(f"- {item}" for item in items))]


def glance_blocks(
    summary: Mapping[str, Any], map_pngs: Mapping[str, Mapping[str, Any]]
) -> list[Block]:
    """The first screen: per catalogue, this run's best model against the published RSGM row
    and the best published exact NLL, then that model's map ("how good, and where")."""
    lines = []
    best_maps = []
    for cat in catalogue_order(summary["results"]):
        entries = summary["results"][cat]
        model = min(entries, key=lambda m: entries[m]["mean"])
        mean = float(entries[model]["mean"])
        text = f"- **{cat}**: best here `{model}` {mean:+.3f} nats"
        rsgm = PUBLISHED_NLL.get(PUBLISHED_RSGM_METHOD, {}).get(cat)
        exact = [
            (v[0], name)
            for name, row in PUBLISHED_NLL.items()
            if name not in PUBLISHED_BOUND_METHODS and (v := row.get(cat)) is not None
        ]
        if rsgm is not None:
            text += f"; published RSGM {rsgm[0]:+.2f} (Δ {mean - rsgm[0]:+.2f})"
        if exact:
            value, name = min(exact)
            text += f"; best published exact NLL {value:+.2f} ({name})"
        lines.append(text + ".")
        png = map_pngs.get(cat, {}).get(model)
        if png is not None:
            best_maps.append((cat, model, png))
    by_protocol = [
        f"- **{cat}**: " + "; ".join(f"{proto} `{model}`" for proto, model in won.items())
        for cat, won in winners(summary).items()
        if len(won) > 1
    ]
    blocks: list[Block] = [
        Text(
            "Test NLL in nats per point, lower is better (uniform on the sphere: 2.531). "
            "Each catalogue's best model of this run against the published rows:\n\n"
            + "\n".join(lines)
        )
    ]
    if by_protocol:
        blocks.append(
            Text(
                "Which model wins where: under the published protocol, and on the test events "
                "farther than r from every training event (the memorisation-free protocol):"
                "\n\n" + "\n".join(by_protocol)
            )
        )
    if best_maps:
        blocks.append(
            Gallery(
                [
                    Image(
                        Path(png), f"{cat} {model} density map", map_caption(cat, model, best=True)
                    )
                    for cat, model, png in best_maps
                ]
            )
        )
    return blocks
