"""The report's versions section: this run (B) against the previous version (A)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.report.document import Block, HtmlCell, Table, Text
from pipeline.report.versions import (
    PreviousVersion,
    VersionRow,
    compare_versions,
    format_diff,
    format_number,
    nll_verdict,
)

__all__ = ["version_blocks"]


def version_blocks(summary: Mapping[str, Any], previous: PreviousVersion | None) -> list[Block]:
    """The versions section: this run (B) against the previous version (A).

    Args:
        summary: This run's summary metrics.
        previous: The version to compare with; ``None`` or one without a summary gives a
            sentence saying there is nothing to compare.

    Returns:
        The verdict, the per-(catalogue, model) table and the ``geosgm compare`` hint.

    Raises:
        ValueError: If a summary does not follow the schema.
    """
    if previous is None:
        return [Text("No previous version was given, so there is nothing to compare with.")]
    if previous.summary is None and previous.same_as:
        return [
            Text(
                f"Every model's per-seed test NLLs equal those of all {previous.same_as} "
                f"committed versions of the summary (back to {previous.oldest_same}): the models "
                "have not moved, so there is no earlier, different version to compare with."
            )
        ]
    if previous.summary is None:
        note = f" ({previous.note})" if previous.note else ""
        return [
            Text(
                f"No previous metrics at `{previous.label}`{note}: this is the first recorded "
                "version, so there is nothing to compare with."
            )
        ]
    rows = compare_versions(previous.summary, summary)
    label_a, label_b = previous.label, "this run"
    by_pair: dict[tuple[str, str], dict[str, VersionRow]] = {}
    for r in rows:
        by_pair.setdefault((r.catalogue, r.model), {})[r.metric] = r
    table_rows: list[list[HtmlCell]] = []
    for (cat, model), metrics in by_pair.items():
        nll = metrics["test_nll_mean"]
        attrs = {"data-catalogue": cat, "data-model": model, "data-metric": "test_nll_mean"}
        if nll.diff is not None:
            attrs["data-diff"] = repr(nll.diff)
        better = {"A": label_a, "B": label_b}.get(nll.better, nll.better)

        def diff(metric: str, m: Mapping[str, VersionRow] = metrics) -> str:
            row = m.get(metric)
            return "—" if row is None else format_diff(row.diff, metric)

        steps = metrics.get("train_steps_mean")
        steps_text = (
            "—"
            if steps is None
            else format_number(steps.value_a, steps.metric)
            + " → "
            + format_number(steps.value_b, steps.metric)
        )
        table_rows.append(
            [
                HtmlCell(cat),
                HtmlCell(model),
                HtmlCell(format_number(nll.value_a)),
                HtmlCell(format_number(nll.value_b)),
                HtmlCell(format_diff(nll.diff), attrs=attrs),
                HtmlCell("—" if nll.p_value is None else f"{nll.p_value:.3g}"),
                HtmlCell(better, strong=nll.better == "B"),
                HtmlCell(diff("test_nll_ci95")),
                HtmlCell(diff("val_nll_mean")),
                HtmlCell(steps_text),
                HtmlCell(nll.note),
            ]
        )
    header = [
        "catalogue",
        "model",
        f"test NLL ({label_a})",
        f"test NLL ({label_b})",
        "Δ test NLL",
        "p",
        "better",
        "Δ CI half-width",
        "Δ val NLL",
        "train steps",
        "note",
    ]
    return [
        Text(
            f"This run (B) against `{label_a}` (A). Differences Δ are B − A; for NLLs lower is "
            "better. The p-value tests the mean test-NLL difference over seeds (paired by seed "
            "when both versions share seeds and test-set size, Welch otherwise). "
            + nll_verdict(rows, label_a, label_b)
        ),
        Table(header, table_rows, set(range(2, 10))),
        Text(
            "Every metric (std, CI, validation NLL, steps, wall time, NFE) in a terminal: "
            f"`geosgm compare {previous.rev or label_a} workspace`."
        ),
    ]
