"""The memorisation-free protocol and the paired comparison with the incumbent (``kde``).

Both read the summary only (:mod:`pipeline.report.summary`): each model's ``far`` entry (test
NLL over the test events farther than r degrees from every training event of their split) and
its per-seed rows, paired by split seed with the baseline's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from pipeline.report.document import Block, HtmlCell, Table, Text
from pipeline.report.summary import catalogue_order, summary_models

__all__ = [
    "FAR_WHY",
    "far_radii_of",
    "paired_difference",
    "paired_rows",
    "protocol_blocks",
    "winners",
]

FAR_WHY = (
    "The published protocol rewards copying known events: most volcano test events, and many "
    "earthquake and fire ones, have a copy or a near-copy in their training split, so a model "
    "scores there by memorising sites. The memorisation-free protocol keeps the same test NLL "
    "but only over the test events farther than r from every training event of their split: "
    "it asks where the next event happens away from known sites."
)


def far_radii_of(summary: Mapping[str, Any]) -> list[str]:
    """The radii (as keyed, degrees) that any model of the summary reports, in numeric order."""
    radii: set[str] = set()
    for models in summary["results"].values():
        for entry in models.values():
            radii.update((entry.get("far") or {}).keys())
    return sorted(radii, key=float)


def _per_seed(entry: Mapping[str, Any], radius: str | None) -> dict[int, float]:
    out = {}
    for row in entry["per_seed"]:
        value = (
            row["test_nll"]
            if radius is None
            else (row.get("far") or {}).get(radius, {}).get("test_nll")
        )
        if value is not None and math.isfinite(float(value)):
            out[int(row["seed"])] = float(value)
    return out


def paired_difference(
    entry: Mapping[str, Any], baseline: Mapping[str, Any], radius: str | None = None
) -> tuple[float, float, int] | None:
    """Mean and standard error of (model − baseline) test NLL over the seeds both have.

    Args:
        entry: A model's summary entry.
        baseline: The baseline's entry on the same catalogue.
        radius: None for the published protocol, else a ``far`` radius key.

    Returns:
        ``(mean, se, n)``, or None with fewer than 2 common seeds.
    """
    a, b = _per_seed(entry, radius), _per_seed(baseline, radius)
    common = sorted(set(a) & set(b))
    if len(common) < 2:
        return None
    d = np.array([a[s] - b[s] for s in common])
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))), len(d)


def _protocol_name(radius: str | None) -> str:
    return "published" if radius is None else f"beyond {radius}°"


def paired_rows(summary: Mapping[str, Any], baseline: str = "kde") -> list[list[str]]:
    """Rows ``[model, protocol, Δ per catalogue...]`` of the paired comparison with the
    baseline: "Δ ± SE", with "✓" where the model is lower by more than 2 SE."""
    results = summary["results"]
    cats = catalogue_order(results)
    rows = []
    for model in summary_models(summary):
        if model == baseline:
            continue
        for radius in [None, *far_radii_of(summary)]:
            cells = [model, _protocol_name(radius)]
            for cat in cats:
                entry, base = results[cat].get(model), results[cat].get(baseline)
                diff = (
                    None
                    if entry is None or base is None
                    else paired_difference(entry, base, radius)
                )
                if diff is None:
                    cells.append("—")
                    continue
                mean, se, _ = diff
                mark = " ✓" if mean < -2 * se else ""
                cells.append(f"{mean:+.3f} ± {se:.3f}{mark}")
            rows.append(cells)
    return rows


def winners(summary: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``{catalogue: {protocol name: model with the lowest mean}}`` over both protocols."""
    out: dict[str, dict[str, str]] = {}
    for cat in catalogue_order(summary["results"]):
        entries = summary["results"][cat]
        out[cat] = {}
        for radius in [None, *far_radii_of(summary)]:
            means = {}
            for model, entry in entries.items():
                value = (
                    entry["mean"]
                    if radius is None
                    else (entry.get("far") or {}).get(radius, {}).get("mean")
                )
                if value is not None and math.isfinite(float(value)):
                    means[model] = float(value)
            if means:
                out[cat][_protocol_name(radius)] = min(means, key=lambda m: means[m])
    return out


def _cells(rows: list[list[str]]) -> list[list[HtmlCell]]:
    return [[HtmlCell(text) for text in row] for row in rows]


def protocol_blocks(summary: Mapping[str, Any], baseline: str = "kde") -> list[Block]:
    """The memorisation-free table (every model, every radius) and the paired Δ against the
    baseline under both protocols; empty when no model reports the far protocol."""
    radii = far_radii_of(summary)
    if not radii:
        return []
    results = summary["results"]
    cats = catalogue_order(results)
    blocks: list[Block] = [Text(FAR_WHY)]
    for radius in radii:
        header = ["model", *cats]
        shares = []
        for cat in cats:
            kept = [
                e["far"][radius]["share_mean"]
                for e in results[cat].values()
                if radius in (e.get("far") or {})
            ]
            shares.append(f"{cat} {100 * kept[0]:.0f}%" if kept else f"{cat} —")
        rows = []
        for model in summary_models(summary):
            cells = [model]
            for cat in cats:
                far = (results[cat].get(model) or {}).get("far", {}).get(radius, {})
                if "mean" in far:
                    cells.append(f"{far['mean']:+.3f} (±{far['ci95']:.3f})")
                else:
                    cells.append("—")
            rows.append(cells)
        blocks.append(
            Text(
                f"**Test events farther than {radius}° from every training event** "
                f"(share kept, mean over seeds: {', '.join(shares)}). Mean test NLL "
                "(95 % CI half-width) over seeds; uniform on the sphere: 2.531."
            )
        )
        blocks.append(Table(header, _cells(rows), set(range(1, len(header)))))
    if any(baseline in models for models in results.values()):
        blocks.append(
            Text(
                f"**Paired by split seed against `{baseline}`**, the incumbent: mean of "
                f"(model − {baseline}) test NLL ± its standard error; ✓ lower by more than 2 SE."
            )
        )
        blocks.append(
            Table(
                ["model", "protocol", *cats],
                _cells(paired_rows(summary, baseline)),
                set(range(2, 2 + len(cats))),
            )
        )
    return blocks
