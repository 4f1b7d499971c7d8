"""Comparison of two summaries (version A against version B): differences and p-values.

Used by the report's versions section, by ``geosgm compare`` (through
:mod:`pipeline.report.revisions`) and by the refresh flow's version registry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pipeline.report.document import md_escape
from pipeline.report.summary import (
    catalogue_order,
    seed_mean,
    unique_in_order,
    validate_summary,
)

__all__ = [
    "PreviousVersion",
    "VersionRow",
    "compare_versions",
    "format_diff",
    "format_number",
    "format_version_rows",
    "nll_verdict",
]

#: Compared metrics: name -> (what it is, direction); direction ``"lower"`` means lower is
#: better, ``None`` means informative only (no better/worse).
_VERSION_METRICS: dict[str, tuple[str, Literal["lower"] | None]] = {
    "test_nll_mean": ("mean test NLL over seeds", "lower"),
    "test_nll_std": ("std of test NLL over seeds", "lower"),
    "test_nll_ci95": ("95% CI half-width", "lower"),
    "val_nll_mean": ("mean validation NLL", "lower"),
    "n_test": ("test points", None),
    "train_steps_mean": ("training steps per seed", None),
    "train_seconds_mean": ("training seconds per seed", None),
    "nfe_mean": ("ODE function evaluations", None),
}


@dataclass
class VersionRow:
    """One metric of one (catalogue, model) compared between versions A and B.

    Attributes:
        catalogue: Catalogue name.
        model: Model name.
        metric: Metric key (``test_nll_mean``, ``test_nll_std``, ``test_nll_ci95``,
            ``val_nll_mean``, ``n_test``, ``train_steps_mean``, ``train_seconds_mean``,
            ``nfe_mean``).
        value_a: Value in version A (``None`` if the entry is absent there).
        value_b: Value in version B (``None`` if absent).
        diff: ``value_b - value_a`` (``None`` if either is absent).
        better: ``"A"``, ``"B"``, ``"tie"``, or ``"—"`` (informative metric or missing entry).
        p_value: For ``test_nll_mean``: two-sided p-value of the difference over seeds (paired
            t-test when both versions have the same seeds and test-set size, Welch otherwise);
            ``None`` elsewhere or when it cannot be computed.
        note: ``"added in B"``, ``"removed in B"``, the test used, or ``""``.
    """

    catalogue: str
    model: str
    metric: str
    value_a: float | None
    value_b: float | None
    diff: float | None
    better: str
    p_value: float | None = None
    note: str = ""


@dataclass
class PreviousVersion:
    """The version this run is compared with in the report.

    Attributes:
        label: Its display name (e.g. ``"HEAD (1a2b3c4)"``).
        summary: Its summary metrics, or ``None`` if it has none.
        note: Why there is no summary (shown in the report when ``summary`` is ``None``).
        rev: The git revision, for the ``geosgm compare`` hint (default: ``label``).
        same_as: How many committed versions have exactly this run's test NLLs (``auto``
            found no different one among them).
        oldest_same: The oldest of those commits (short hash).
    """

    label: str
    summary: Mapping[str, Any] | None
    note: str = ""
    rev: str | None = None
    same_as: int = 0
    oldest_same: str = ""


def _entry_metrics(entry: Mapping[str, Any]) -> dict[str, float | None]:
    """Metric values of one summary entry (see :data:`_VERSION_METRICS`); ``None``: absent."""
    return {
        "test_nll_mean": float(entry["mean"]),
        "test_nll_std": float(entry["std"]),
        "test_nll_ci95": float(entry["ci95"]),
        "val_nll_mean": seed_mean(entry, "val_nll"),
        "n_test": float(entry["n_test"]),
        "train_steps_mean": seed_mean(entry, "train_steps"),
        "train_seconds_mean": seed_mean(entry, "train_seconds"),
        "nfe_mean": seed_mean(entry, "nfe"),
    }


#: Relative spread below which per-seed values count as constant (no t-test possible).
_DEGENERATE = 1e-9


def _nll_p_value(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[float | None, str]:
    """Two-sided p-value for a difference of test NLL over seeds, and the test's name."""
    from scipy import stats

    seeds_a = {int(r["seed"]): float(r["test_nll"]) for r in a["per_seed"]}
    seeds_b = {int(r["seed"]): float(r["test_nll"]) for r in b["per_seed"]}
    paired = set(seeds_a) == set(seeds_b) and int(a["n_test"]) == int(b["n_test"])
    if paired:
        order = sorted(seeds_a)
        xa = np.array([seeds_a[s] for s in order])
        xb = np.array([seeds_b[s] for s in order])
        d = xb - xa
        if len(order) < 2:
            return None, "paired t-test (needs 2 seeds)"
        if np.ptp(d) <= _DEGENERATE * max(1.0, float(np.max(np.abs(d)))):
            # the same change on every seed (up to rounding): the t statistic is infinite or 0/0
            return (1.0 if abs(float(d.mean())) <= _DEGENERATE else 0.0), "paired t-test"
        return float(stats.ttest_rel(xb, xa).pvalue), "paired t-test"
    xa = np.array(list(seeds_a.values()))
    xb = np.array(list(seeds_b.values()))
    if len(xa) < 2 or len(xb) < 2:
        return None, "Welch t-test (needs 2 seeds each)"
    scale = max(1.0, float(np.max(np.abs(xa))), float(np.max(np.abs(xb))))
    if np.ptp(xa) <= _DEGENERATE * scale and np.ptp(xb) <= _DEGENERATE * scale:
        same = abs(float(xa.mean() - xb.mean())) <= _DEGENERATE * scale
        return (1.0 if same else 0.0), "Welch t-test"
    return float(stats.ttest_ind(xb, xa, equal_var=False).pvalue), "Welch t-test"


def compare_versions(
    summary_a: Mapping[str, Any], summary_b: Mapping[str, Any], *, tol: float = 1e-12
) -> list[VersionRow]:
    """Per-metric differences between two summaries (B minus A) and which version is better.

    Every (catalogue, model) in either summary gets one row per metric. Entries present in
    only one version get a single row with ``note`` ``"added in B"``/``"removed in B"``.

    Args:
        summary_a: Summary metrics of version A (e.g. the previous version).
        summary_b: Summary metrics of version B (e.g. this run).
        tol: Differences with absolute value ``<= tol`` count as a tie.

    Returns:
        Rows sorted by catalogue (published order first), model, then metric order.

    Raises:
        ValueError: If a summary does not follow the schema.
    """
    validate_summary(summary_a, "version A")
    validate_summary(summary_b, "version B")
    ra, rb = summary_a["results"], summary_b["results"]
    rows: list[VersionRow] = []
    for cat in catalogue_order(set(ra) | set(rb)):
        for model in unique_in_order([*rb.get(cat, {}), *ra.get(cat, {})]):
            ea, eb = ra.get(cat, {}).get(model), rb.get(cat, {}).get(model)
            if ea is None or eb is None:
                present = eb if ea is None else ea
                value = float(present["mean"])
                rows.append(
                    VersionRow(
                        cat,
                        model,
                        "test_nll_mean",
                        None if ea is None else value,
                        None if eb is None else value,
                        None,
                        "—",
                        note="added in B" if ea is None else "removed in B",
                    )
                )
                continue
            ma, mb = _entry_metrics(ea), _entry_metrics(eb)
            for metric, (_, direction) in _VERSION_METRICS.items():
                va, vb = ma[metric], mb[metric]
                if va is None and vb is None:
                    continue
                diff = None if va is None or vb is None else vb - va
                if (
                    direction is None
                    or diff is None
                    or not (math.isfinite(va or 0.0) and math.isfinite(vb or 0.0))
                ):
                    better = "—"
                elif abs(diff) <= tol:
                    better = "tie"
                else:
                    better = "B" if diff < 0 else "A"
                p_value, note = (None, "")
                if metric == "test_nll_mean":
                    p_value, note = _nll_p_value(ea, eb)
                rows.append(VersionRow(cat, model, metric, va, vb, diff, better, p_value, note))
    return rows


#: Version metrics shown as whole numbers when they are integral.
_COUNT_METRICS = frozenset({"n_test", "train_steps_mean", "nfe_mean"})


def format_number(x: float | None, metric: str = "") -> str:
    """Number for the versions table: counts as integers, the rest with 4 decimals.

    Args:
        x: The value (``None``: absent).
        metric: Its metric key; counts print as integers, training seconds with 1 decimal.

    Returns:
        The text (``—`` for ``None``).
    """
    if x is None:
        return "—"
    if not math.isfinite(x):
        return str(x)
    if metric in _COUNT_METRICS and float(x).is_integer():
        return f"{int(x):d}"
    if metric == "train_seconds_mean":
        return f"{x:.1f}"
    return f"{x:.4f}"


def format_diff(x: float | None, metric: str = "") -> str:
    """Signed difference, formatted like :func:`format_number`.

    Args:
        x: The difference B − A (``None``: not computable).
        metric: Its metric key.

    Returns:
        The text with its sign (``—`` for ``None``).
    """
    if x is None:
        return "—"
    if metric in _COUNT_METRICS and float(x).is_integer():
        return f"{int(x):+d}"
    if metric == "train_seconds_mean":
        return f"{x:+.1f}"
    return f"{x:+.4f}"


def nll_verdict(rows: Sequence[VersionRow], label_a: str, label_b: str, alpha: float = 0.05) -> str:
    """One-paragraph verdict on the mean test NLL.

    Args:
        rows: Output of :func:`compare_versions`.
        label_a: Name of version A.
        label_b: Name of version B.
        alpha: Significance level of the p-values.

    Returns:
        Wins, significant wins and the average change of each version, and which is better.
    """
    nll = [r for r in rows if r.metric == "test_nll_mean" and r.diff is not None]
    if not nll:
        return "No (catalogue, model) pair is present in both versions."
    wins_b = [r for r in nll if r.better == "B"]
    wins_a = [r for r in nll if r.better == "A"]
    sig_b = [r for r in wins_b if r.p_value is not None and r.p_value < alpha]
    sig_a = [r for r in wins_a if r.p_value is not None and r.p_value < alpha]
    mean_diff = float(np.mean([r.diff for r in nll if r.diff is not None]))
    overall = label_b if mean_diff < 0 else label_a if mean_diff > 0 else "neither"
    return (
        f"Mean test NLL: {label_b} is better on {len(wins_b)} of {len(nll)} "
        f"(catalogue, model) pairs ({len(sig_b)} significant at p < {alpha}), "
        f"{label_a} on {len(wins_a)} ({len(sig_a)} significant); average change "
        f"{mean_diff:+.4f} nats ({label_b} − {label_a}), so {overall} is better overall."
    )


def format_version_rows(
    rows: Sequence[VersionRow], label_a: str = "A", label_b: str = "B", *, markdown: bool = False
) -> str:
    """Format a version comparison as an aligned terminal table (or a Markdown table).

    Args:
        rows: Output of :func:`compare_versions`.
        label_a: Name of version A (e.g. a git revision).
        label_b: Name of version B.
        markdown: Emit a Markdown table instead of fixed-width text.

    Returns:
        The table followed by a verdict line on the mean test NLL.
    """
    header = ["catalogue", "model", "metric", label_a, label_b, "diff (B-A)", "better", "p", "note"]
    body: list[list[str]] = []
    for r in rows:
        better = {"A": label_a, "B": label_b}.get(r.better, r.better)
        p = "—" if r.p_value is None else f"{r.p_value:.3g}"
        body.append(
            [
                r.catalogue,
                r.model,
                r.metric,
                format_number(r.value_a, r.metric),
                format_number(r.value_b, r.metric),
                format_diff(r.diff, r.metric),
                better,
                p,
                r.note,
            ]
        )
    verdict = nll_verdict(rows, label_a, label_b)
    if markdown:
        lines = ["| " + " | ".join(md_escape(h) for h in header) + " |"]
        lines.append("|" + "|".join(["---"] * 3 + ["---:"] * 3 + ["---"] * 3) + "|")
        lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in body]
        return "\n".join(lines) + "\n\n" + verdict + "\n"
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=False)]
    numeric = {3, 4, 5, 7}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(header), line(["-" * w for w in widths])] + [line(row) for row in body]
    return "\n".join(out) + "\n\n" + verdict + "\n"
