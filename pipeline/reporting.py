"""Reports: the test-NLL table beside the published one, loss curves, maps and version diffs.

Everything here takes plain dicts, numbers and file paths (never a model):

* the **summary metrics** written by the ``evaluate``/``summarize`` stages
  (``reports/summary.json``)::

      {"protocol": str, "seeds": [int], "units": str,
       "results": {catalogue: {model: {"mean": float, "std": float, "ci95": float,
                                       "n_test": int,
                                       "per_seed": [{"seed": int, "test_nll": float,
                                                     "val_nll": float, "nfe": int,
                                                     "train_steps": int,
                                                     "train_seconds": float,
                                                     "normalization": float}, ...]}}}}

  and per-model files (the inner dict plus ``"loss_history": {"<seed>": [[step, loss], ...]}``);
* PNG maps and loss curves, embedded in the HTML as base64 ``data:`` URIs so that
  ``report.html`` is self-contained (inline CSS, no script, no request to the web);
* a previous version's summary, read from a git revision, for the **versions** section
  (:func:`compare_versions`, :func:`compare_revisions`, used by ``geosgm compare``).

``std`` is the sample standard deviation over seeds (ddof = 1) and ``ci95`` the half-width
:math:`t_{0.975, n-1}\\,\\mathrm{std}/\\sqrt{n}` of the 95 % confidence interval of the mean
(:math:`2.776\\,\\mathrm{std}/\\sqrt5` for 5 seeds), as in the published tables.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.atomic import atomic_write
from pipeline.published import (
    PUBLISHED_BOUND_METHODS,
    PUBLISHED_CATALOGUES,
    PUBLISHED_NLL,
    PUBLISHED_TRAIN_STEPS,
)

__all__ = [
    "DEFAULT_SUMMARY_PATH",
    "PUBLISHED_BOUND_METHODS",
    "PUBLISHED_CATALOGUES",
    "PUBLISHED_NLL",
    "PUBLISHED_TRAIN_STEPS",
    "VOLCANO_DISTINCT_POINTS",
    "VOLCANO_ROWS",
    "NllCell",
    "NllRow",
    "NllTable",
    "PreviousVersion",
    "ReportPaths",
    "VersionRow",
    "build_report",
    "build_nll_table",
    "compare_revisions",
    "compare_versions",
    "draw_loss_curves",
    "format_version_rows",
    "nll_table_markdown",
    "read_summary_at_revision",
    "seed_mean",
    "seed_statistics",
    "validate_summary",
]


#: Where the summary metrics live, relative to the repository root.
DEFAULT_SUMMARY_PATH = "reports/summary.json"

#: Where revisions before the summarize stage declared its inputs kept it (read as a fallback).
LEGACY_SUMMARY_PATH = "reports/metrics/summary.json"

#: Volcano catalogue: rows and distinct (lat, lon) points.
VOLCANO_ROWS = 827
VOLCANO_DISTINCT_POINTS = 267

#: Keys every ``per_seed`` entry must have; ``val_nll``, ``nfe``, ``train_steps``,
#: ``train_seconds`` and ``normalization`` are optional (shown as "—" where absent).
_PER_SEED_REQUIRED: tuple[str, ...] = ("seed", "test_nll")


# --------------------------------------------------------------------------------------------
# summary schema and statistics
# --------------------------------------------------------------------------------------------


def seed_statistics(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean, sample std (ddof = 1) and 95 % CI half-width of per-seed values.

    Args:
        values: Per-seed values, length ``n >= 1``.

    Returns:
        ``(mean, std, ci95)`` with ``ci95 = t_{0.975, n-1} * std / sqrt(n)``; for ``n = 1``
        std and ci95 are NaN.

    Raises:
        ValueError: If ``values`` is empty or holds non-finite numbers.
    """
    from scipy import stats

    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"seed_statistics needs a non-empty 1-D finite sequence, got {values!r}")
    n = arr.size
    mean = float(arr.mean())
    if n == 1:
        return mean, math.nan, math.nan
    std = float(arr.std(ddof=1))
    ci95 = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n))
    return mean, std, ci95


def validate_summary(summary: Mapping[str, Any], where: str = "summary") -> None:
    """Check a summary-metrics dict against the schema described in the module docstring.

    Args:
        summary: The parsed ``summary.json``.
        where: Name used in error messages (e.g. the file or revision it came from).

    Raises:
        ValueError: Naming the first missing key or wrongly typed value.
    """
    if not isinstance(summary, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(summary).__name__}")
    for key in ("protocol", "seeds", "units", "results"):
        if key not in summary:
            raise ValueError(f"{where}: missing top-level key {key!r}")
    results = summary["results"]
    if not isinstance(results, Mapping):
        raise ValueError(f"{where}: 'results' must map catalogue -> model -> metrics")
    for cat, models in results.items():
        if not isinstance(models, Mapping):
            raise ValueError(f"{where}: results[{cat!r}] must map model -> metrics")
        for model, entry in models.items():
            loc = f"{where}: results[{cat!r}][{model!r}]"
            if not isinstance(entry, Mapping):
                raise ValueError(f"{loc} must be an object")
            for key in ("mean", "std", "ci95", "n_test", "per_seed"):
                if key not in entry:
                    raise ValueError(f"{loc} is missing {key!r}")
            for key in ("mean", "std", "ci95"):
                if not isinstance(entry[key], (int, float)) or isinstance(entry[key], bool):
                    raise ValueError(f"{loc}[{key!r}] must be a number, got {entry[key]!r}")
            if not isinstance(entry["per_seed"], list) or not entry["per_seed"]:
                raise ValueError(f"{loc}['per_seed'] must be a non-empty list")
            for i, row in enumerate(entry["per_seed"]):
                if not isinstance(row, Mapping):
                    raise ValueError(f"{loc}['per_seed'][{i}] must be an object")
                missing = [k for k in _PER_SEED_REQUIRED if k not in row]
                if missing:
                    raise ValueError(f"{loc}['per_seed'][{i}] is missing {missing}")
                for key, value in row.items():
                    if key != "seed" and key in _OPTIONAL_NUMBERS + ("test_nll",):
                        if not isinstance(value, (int, float)) or isinstance(value, bool):
                            raise ValueError(
                                f"{loc}['per_seed'][{i}][{key!r}] must be a number, got {value!r}"
                            )


_OPTIONAL_NUMBERS: tuple[str, ...] = (
    "val_nll",
    "nfe",
    "train_steps",
    "train_seconds",
    "normalization",
)


def seed_mean(entry: Mapping[str, Any], key: str) -> float | None:
    """Mean of an optional per-seed value over the seeds that record it (``None`` if none do).

    Args:
        entry: One ``results[catalogue][model]`` entry of a summary.
        key: Per-seed key, e.g. ``"train_steps"``.

    Returns:
        The mean, or ``None``.
    """
    values = [float(r[key]) for r in entry["per_seed"] if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def _catalogue_order(names: Iterable[str]) -> list[str]:
    """Published catalogues first (in table order), then the others alphabetically."""
    names = set(names)
    head = [c for c in PUBLISHED_CATALOGUES if c in names]
    return head + sorted(names - set(head))


def _models(summary: Mapping[str, Any]) -> list[str]:
    """All model names of a summary, in order of first appearance (the evaluate order)."""
    return _ordered(m for models in summary["results"].values() for m in models)


def _ordered(names: Iterable[str]) -> list[str]:
    """Unique names in order of first appearance."""
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------------------------
# the NLL table
# --------------------------------------------------------------------------------------------


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
        summary: Summary metrics dict (see the module docstring).
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
    cats = _catalogue_order(set(results) | {c for row in published.values() for c in row})
    rows: list[NllRow] = []
    for method, entries in published.items():
        cells = {c: NllCell(float(m), None, ci) for c, (m, ci) in entries.items() if c in cats}
        rows.append(NllRow(method, "published", cells, method in PUBLISHED_BOUND_METHODS))
    for model in _models(summary):
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


def _cell_text(cell: NllCell, source: str) -> str:
    """Plain-text content of an NLL cell (without best markers)."""
    if source == "published":
        ci = "" if cell.ci95 is None else f" (±{_fmt(cell.ci95, 2)})"
        return f"{_fmt(cell.mean, 2)}{ci}"
    return f"{_fmt(cell.mean, 3)} ± {_fmt(cell.std, 3)} (±{_fmt(cell.ci95, 3)})"


def _cell_markers(cell: NllCell) -> str:
    """Marker suffix for best entries."""
    return ("★" if cell.best else "") + ("◆" if cell.best_of_run else "")


_NLL_LEGEND = (
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
        "| " + " | ".join(_md_escape(h) for h in header) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * len(table.catalogues)) + "|",
    ]
    for row in table.rows:
        name = row.method + (" ‡" if row.is_bound else "")
        cells = [_md_escape(name), row.source]
        for cat in table.catalogues:
            cell = row.cells.get(cat)
            if cell is None:
                cells.append("—")
                continue
            text = _cell_text(cell, row.source) + _cell_markers(cell)
            cells.append(f"**{text}**" if cell.best else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + _NLL_LEGEND + "\n"


def _md_escape(text: str) -> str:
    """Escape characters that break a Markdown table cell."""
    return text.replace("|", "\\|")


# --------------------------------------------------------------------------------------------
# loss curves
# --------------------------------------------------------------------------------------------


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean with a shrinking window at the ends (same length as ``y``)."""
    if window <= 1 or y.size < 3:
        return y
    window = min(window, y.size)
    kernel = np.ones(window)
    num = np.convolve(y, kernel, mode="same")
    den = np.convolve(np.ones_like(y), kernel, mode="same")
    return num / den


def draw_loss_curves(
    loss_histories: Mapping[str, Mapping[str, Sequence[Sequence[float]]]],
    title: str,
    out_png: str | os.PathLike[str],
    *,
    smooth_window: int = 25,
    dpi: int = 110,
) -> Path:
    """Draw training-loss curves: one panel per model (in the given order), one line per seed.

    Args:
        loss_histories: ``model -> seed -> [[step, loss], ...]`` (the ``loss_history`` of the
            per-model metrics files); the key is used as the panel title.
        title: Figure title (e.g. the catalogue).
        out_png: Output PNG path (written atomically; parents created).
        smooth_window: Width of the running mean drawn over the raw (faint) curve.
        dpi: Resolution.

    Returns:
        The written path.

    Raises:
        ValueError: If there is no model, or a history is not a list of ``[step, loss]`` pairs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(loss_histories)
    if not models:
        raise ValueError(f"draw_loss_curves({title!r}): no loss history given")
    n = len(models)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False, layout="constrained"
    )
    try:
        for k, model in enumerate(models):
            ax = axes[k // ncols][k % ncols]
            tails: list[np.ndarray] = []
            for i, seed in enumerate(sorted(loss_histories[model], key=_seed_key)):
                arr = np.asarray(loss_histories[model][seed], dtype=np.float64)
                if arr.ndim != 2 or arr.shape[1] != 2:
                    raise ValueError(
                        f"loss history of {model!r} seed {seed!r} must be [[step, loss], ...], "
                        f"got shape {arr.shape}"
                    )
                if arr.shape[0] == 0:
                    continue
                colour = f"C{i % 10}"
                ax.plot(arr[:, 0], arr[:, 1], color=colour, alpha=0.25, linewidth=0.6)
                ax.plot(
                    arr[:, 0],
                    _smooth(arr[:, 1], smooth_window),
                    color=colour,
                    linewidth=1.3,
                    label=f"seed {seed}",
                )
                finite = arr[np.isfinite(arr[:, 1]), 1]
                if finite.size:
                    tails.append(finite[finite.size // 10 :])
            if tails:
                tail = np.concatenate(tails)
                lo, hi = float(np.min(tail)), float(np.percentile(tail, 99.0))
                pad = 0.08 * max(hi - lo, 1e-12)
                ax.set_ylim(lo - pad, hi + pad)
            ax.set_title(model, fontsize=10)
            ax.set_xlabel("training step")
            ax.set_ylabel("loss")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        for k in range(n, nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        fig.suptitle(title)
        out = Path(out_png)
        _atomic_savefig(fig, out, dpi)
    finally:
        plt.close(fig)
    return out


def _seed_key(seed: str) -> tuple[int, str]:
    """Sort seeds numerically when they are integers."""
    return (int(seed), "") if str(seed).lstrip("-").isdigit() else (1 << 30, str(seed))


def _atomic_savefig(fig: Any, out: Path, dpi: int) -> None:
    """Save a matplotlib figure as PNG atomically."""
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"), ".png")


# --------------------------------------------------------------------------------------------
# versions
# --------------------------------------------------------------------------------------------

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
    for cat in _catalogue_order(set(ra) | set(rb)):
        for model in _ordered([*rb.get(cat, {}), *ra.get(cat, {})]):
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


def _fmt_num(x: float | None, metric: str = "") -> str:
    """Number for the versions table: counts as integers, the rest with 4 decimals."""
    if x is None:
        return "—"
    if not math.isfinite(x):
        return str(x)
    if metric in _COUNT_METRICS and float(x).is_integer():
        return f"{int(x):d}"
    if metric == "train_seconds_mean":
        return f"{x:.1f}"
    return f"{x:.4f}"


def _fmt_diff(x: float | None, metric: str = "") -> str:
    """Signed difference, formatted like :func:`_fmt_num`."""
    if x is None:
        return "—"
    if metric in _COUNT_METRICS and float(x).is_integer():
        return f"{int(x):+d}"
    if metric == "train_seconds_mean":
        return f"{x:+.1f}"
    return f"{x:+.4f}"


def _verdict(rows: Sequence[VersionRow], label_a: str, label_b: str, alpha: float = 0.05) -> str:
    """One-paragraph verdict on the mean test NLL."""
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
                _fmt_num(r.value_a, r.metric),
                _fmt_num(r.value_b, r.metric),
                _fmt_diff(r.diff, r.metric),
                better,
                p,
                r.note,
            ]
        )
    verdict = _verdict(rows, label_a, label_b)
    if markdown:
        lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |"]
        lines.append("|" + "|".join(["---"] * 3 + ["---:"] * 3 + ["---"] * 3) + "|")
        lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in body]
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


def read_summary_at_revision(
    repo_dir: str | os.PathLike[str], rev: str, summary_path: str = DEFAULT_SUMMARY_PATH
) -> dict[str, Any]:
    """Read the summary metrics of a git revision (or of the working tree).

    Tries ``git show REV:PATH`` first (metrics committed to git, as DVC does for
    ``cache: false`` metrics), then ``dvc.api.read`` (metrics tracked in the DVC cache).
    ``rev`` ``"workspace"`` reads the file on disk.

    Args:
        repo_dir: Root of the git repository.
        rev: Any git revision (``HEAD``, ``HEAD~1``, a tag, a hash) or ``"workspace"``.
        summary_path: Path of ``summary.json`` relative to ``repo_dir``.

    Returns:
        The validated summary dict.

    Raises:
        FileNotFoundError: If neither git nor DVC has the file at that revision.
        ValueError: If the file is not valid JSON or does not follow the schema.
    """
    repo = Path(repo_dir)
    where = f"{summary_path} at {rev}"
    if rev == "workspace":
        file = repo / summary_path
        if not file.exists() and summary_path == DEFAULT_SUMMARY_PATH:
            file = repo / LEGACY_SUMMARY_PATH if (repo / LEGACY_SUMMARY_PATH).exists() else file
        if not file.exists():
            raise FileNotFoundError(f"{file} does not exist in the workspace")
        text = file.read_text(encoding="utf-8")
    else:
        proc = subprocess.run(
            ["git", "-C", str(repo), "show", f"{rev}:{summary_path}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 and summary_path == DEFAULT_SUMMARY_PATH:
            proc = subprocess.run(
                ["git", "-C", str(repo), "show", f"{rev}:{LEGACY_SUMMARY_PATH}"],
                capture_output=True,
                text=True,
                check=False,
            )
        if proc.returncode == 0:
            text = proc.stdout
        else:
            text = _read_with_dvc(repo, rev, summary_path, proc.stderr.strip())
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not valid JSON: {exc}") from exc
    validate_summary(summary, where)
    return summary


def _read_with_dvc(repo: Path, rev: str, summary_path: str, git_error: str) -> str:
    """Read a DVC-tracked file at a revision; raise FileNotFoundError with both errors."""
    if not (repo / ".dvc").is_dir():
        raise FileNotFoundError(f"git cannot show {summary_path} at {rev!r}: {git_error}")
    try:
        import dvc.api
        from dvc.exceptions import DvcException
    except ImportError as exc:  # pragma: no cover - dvc is a dependency
        raise FileNotFoundError(f"git cannot show {summary_path} at {rev!r}: {git_error}") from exc
    try:
        return str(dvc.api.read(summary_path, repo=str(repo), rev=rev, mode="r"))
    except (DvcException, FileNotFoundError, OSError, KeyError) as exc:
        # KeyError: dvc's index lookup when the path is in neither git nor DVC at rev.
        raise FileNotFoundError(
            f"no {summary_path} at revision {rev!r}: git said {git_error!r}; dvc said {exc!r}"
        ) from exc


def compare_revisions(
    repo_dir: str | os.PathLike[str],
    rev_a: str,
    rev_b: str,
    summary_path: str = DEFAULT_SUMMARY_PATH,
) -> str:
    """Compare the summary metrics of two revisions; the text ``geosgm compare`` prints.

    Args:
        repo_dir: Root of the git repository.
        rev_a: Revision A (e.g. ``HEAD~1``); ``"workspace"`` for the files on disk.
        rev_b: Revision B (e.g. ``HEAD`` or ``"workspace"``).
        summary_path: Path of ``summary.json`` relative to ``repo_dir``.

    Returns:
        A terminal table of per-metric differences (B − A) with the better version, then a
        verdict line.

    Raises:
        FileNotFoundError: If a revision has no summary.
        ValueError: If a summary is malformed.
    """
    summary_a = read_summary_at_revision(repo_dir, rev_a, summary_path)
    summary_b = read_summary_at_revision(repo_dir, rev_b, summary_path)
    rows = compare_versions(summary_a, summary_b)
    head = f"{summary_path}: A = {rev_a}, B = {rev_b} (lower NLL is better)\n\n"
    return head + format_version_rows(rows, rev_a, rev_b)


# --------------------------------------------------------------------------------------------
# report assembly: a small block model rendered to Markdown and to self-contained HTML
# --------------------------------------------------------------------------------------------


@dataclass
class _Heading:
    level: int
    text: str
    anchor: str


@dataclass
class _Text:
    markdown: str


@dataclass
class _Table:
    header: list[str]
    rows: list[list[_HtmlCell]]
    align_right: set[int] = field(default_factory=set)
    caption: str = ""
    row_classes: dict[int, str] = field(default_factory=dict)


@dataclass
class _HtmlCell:
    text: str
    strong: bool = False
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class _Image:
    path: Path
    alt: str
    caption: str


@dataclass
class _Gallery:
    images: list[_Image]


_Block = _Heading | _Text | _Table | _Image | _Gallery


@dataclass
class PreviousVersion:
    """The version this run is compared with in the report.

    Attributes:
        label: Its display name (e.g. ``"HEAD (1a2b3c4)"``).
        summary: Its summary metrics, or ``None`` if it has none.
        note: Why there is no summary (shown in the report when ``summary`` is ``None``).
        rev: The git revision, for the ``geosgm compare`` hint (default: ``label``).
    """

    label: str
    summary: Mapping[str, Any] | None
    note: str = ""
    rev: str | None = None


@dataclass
class ReportPaths:
    """Files written by :func:`build_report`."""

    markdown: Path
    html: Path


def _slug(text: str) -> str:
    """HTML anchor for a heading."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


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


def _geometry_blocks(name: str, data: Any) -> list[_Block]:
    """Tables for one geometry-stage JSON: record lists as tables, the rest as key/value."""
    blocks: list[_Block] = []
    records: list[tuple[str, list[Mapping[str, Any]]]] = []
    scalars: list[tuple[str, Any]] = []
    for key, value in _flatten(data):
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            records.append((key, value))
        else:
            scalars.append((key, value))
    if scalars:
        blocks.append(
            _Table(
                ["quantity", "value"],
                [[_HtmlCell(k), _HtmlCell(_scalar_text(v))] for k, v in scalars],
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
        rows = [[_HtmlCell(_scalar_text(rec.get(c, ""))) for c in cols] for rec in recs]
        blocks.append(_Table(cols, rows, set(range(len(cols))), caption=f"{name}: {key}"))
    return blocks


def _nll_blocks(summary: Mapping[str, Any]) -> list[_Block]:
    """The NLL table as a block (cells carry the exact numbers as data attributes)."""
    table = build_nll_table(summary)
    header = ["method", "source", *table.catalogues]
    rows: list[list[_HtmlCell]] = []
    for row in table.rows:
        cells = [_HtmlCell(row.method + (" ‡" if row.is_bound else "")), _HtmlCell(row.source)]
        for cat in table.catalogues:
            cell = row.cells.get(cat)
            if cell is None:
                cells.append(_HtmlCell("—"))
                continue
            attrs = {"data-catalogue": cat, "data-method": row.method, "data-source": row.source}
            attrs["data-mean"] = repr(cell.mean)
            if cell.std is not None:
                attrs["data-std"] = repr(cell.std)
            if cell.ci95 is not None:
                attrs["data-ci95"] = repr(cell.ci95)
            cells.append(
                _HtmlCell(_cell_text(cell, row.source) + _cell_markers(cell), cell.best, attrs)
            )
        rows.append(cells)
    first_ours = next((i for i, r in enumerate(table.rows) if r.source == "this run"), None)
    row_classes = {} if first_ours is None else {first_ours: "first-of-run"}
    return [
        _Table(header, rows, set(range(2, len(header))), row_classes=row_classes),
        _Text(_NLL_LEGEND),
    ]


def _budget_blocks(summary: Mapping[str, Any]) -> list[_Block]:
    """Per catalogue × model: seeds, test points, training budget, NFE and normalisation."""
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
    rows: list[list[_HtmlCell]] = []
    results = summary["results"]
    for cat in _catalogue_order(results):
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
                    _HtmlCell(cat),
                    _HtmlCell(model),
                    _HtmlCell(str(len(ps))),
                    _HtmlCell(str(entry["n_test"])),
                    _HtmlCell("—" if steps is None else f"{steps:,.0f}"),
                    _HtmlCell("—" if secs is None else _duration(secs)),
                    _HtmlCell("—" if nfe is None else f"{nfe:.0f}"),
                    _HtmlCell(z_text),
                    _HtmlCell("—" if val is None else f"{val:.3f}"),
                ]
            )
    return [_Table(header, rows, set(range(2, len(header))))]


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


def _caveat_blocks(summary: Mapping[str, Any]) -> list[_Block]:
    """Caveats every reader of the table needs."""
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
    return [_Text("\n".join(f"- {item}" for item in items))]


def _version_blocks(summary: Mapping[str, Any], previous: PreviousVersion | None) -> list[_Block]:
    """The versions section: this run (B) against the previous version (A)."""
    if previous is None:
        return [_Text("No previous version was given, so there is nothing to compare with.")]
    if previous.summary is None:
        note = f" ({previous.note})" if previous.note else ""
        return [
            _Text(
                f"No previous metrics at `{previous.label}`{note}: this is the first recorded "
                "version, so there is nothing to compare with."
            )
        ]
    rows = compare_versions(previous.summary, summary)
    label_a, label_b = previous.label, "this run"
    by_pair: dict[tuple[str, str], dict[str, VersionRow]] = {}
    for r in rows:
        by_pair.setdefault((r.catalogue, r.model), {})[r.metric] = r
    table_rows: list[list[_HtmlCell]] = []
    for (cat, model), metrics in by_pair.items():
        nll = metrics["test_nll_mean"]
        attrs = {"data-catalogue": cat, "data-model": model, "data-metric": "test_nll_mean"}
        if nll.diff is not None:
            attrs["data-diff"] = repr(nll.diff)
        better = {"A": label_a, "B": label_b}.get(nll.better, nll.better)

        def diff(metric: str, m: Mapping[str, VersionRow] = metrics) -> str:
            row = m.get(metric)
            return "—" if row is None else _fmt_diff(row.diff, metric)

        steps = metrics.get("train_steps_mean")
        steps_text = (
            "—"
            if steps is None
            else _fmt_num(steps.value_a, steps.metric)
            + " → "
            + _fmt_num(steps.value_b, steps.metric)
        )
        table_rows.append(
            [
                _HtmlCell(cat),
                _HtmlCell(model),
                _HtmlCell(_fmt_num(nll.value_a)),
                _HtmlCell(_fmt_num(nll.value_b)),
                _HtmlCell(_fmt_diff(nll.diff), attrs=attrs),
                _HtmlCell("—" if nll.p_value is None else f"{nll.p_value:.3g}"),
                _HtmlCell(better, strong=nll.better == "B"),
                _HtmlCell(diff("test_nll_ci95")),
                _HtmlCell(diff("val_nll_mean")),
                _HtmlCell(steps_text),
                _HtmlCell(nll.note),
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
        _Text(
            f"This run (B) against `{label_a}` (A). Differences Δ are B − A; for NLLs lower is "
            "better. The p-value tests the mean test-NLL difference over seeds (paired by seed "
            "when both versions share seeds and test-set size, Welch otherwise). "
            + _verdict(rows, label_a, label_b)
        ),
        _Table(header, table_rows, set(range(2, 10))),
        _Text(
            "Every metric (std, CI, validation NLL, steps, wall time, NFE) in a terminal: "
            f"`geosgm compare {previous.rev or label_a} workspace`."
        ),
    ]


def _render_markdown(blocks: Sequence[_Block], md_dir: Path) -> str:
    """Render blocks as GitHub Markdown; images are linked by path relative to ``md_dir``."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, _Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, _Text):
            out.append(b.markdown)
        elif isinstance(b, _Table):
            lines = ["| " + " | ".join(_md_escape(h) for h in b.header) + " |"]
            lines.append(
                "|"
                + "|".join("---:" if i in b.align_right else "---" for i in range(len(b.header)))
                + "|"
            )
            for row in b.rows:
                cells = [
                    f"**{_md_escape(c.text)}**" if c.strong and c.text else _md_escape(c.text)
                    for c in row
                ]
                lines.append("| " + " | ".join(cells) + " |")
            out.append("\n".join(lines))
        else:
            for img in b.images if isinstance(b, _Gallery) else [b]:
                rel = Path(os.path.relpath(img.path, md_dir)).as_posix()
                out.append(f"![{img.alt}]({rel})\n\n*{img.caption}*")
    return "\n\n".join(out) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:1em 0;font-size:.86em}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
th,td{border:1px solid #d0d0d0;padding:.3em .55em;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.best{background:#e4f4e4}tr:nth-child(even) td{background-color:#fafafa}
tr:nth-child(even) td.best{background:#dcefdc}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}nav ul{columns:2}code{background:#f3f3f3;padding:0 .2em}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:.8em}
.gallery figure{margin:0}tr.first-of-run td{border-top:3px solid #888}
"""


def _data_uri(path: Path) -> str:
    """Base64 ``data:`` URI of a PNG file."""
    if path.suffix.lower() != ".png":
        raise ValueError(f"only PNG images can be embedded, got {path}")
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _md_inline_html(text: str) -> str:
    """Markdown text to HTML with the ``markdown`` package (no raw HTML passes through)."""
    import markdown

    return markdown.markdown(html.escape(text, quote=False), extensions=[])


def _figure(img: _Image) -> str:
    """An embedded ``<figure>`` for one image."""
    alt = html.escape(img.alt, quote=True)
    return (
        f'<figure><img src="{_data_uri(img.path)}" alt="{alt}">'
        f"<figcaption>{html.escape(img.caption)}</figcaption></figure>"
    )


def _render_html(blocks: Sequence[_Block], title: str) -> str:
    """Render blocks as one self-contained HTML page (inline CSS, images as data URIs)."""
    toc = [b for b in blocks if isinstance(b, _Heading) and b.level == 2]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for b in blocks:
        if isinstance(b, _Heading):
            parts.append(f'<h{b.level} id="{b.anchor}">{html.escape(b.text)}</h{b.level}>')
            if b.level == 1 and toc:
                links = "".join(
                    f'<li><a href="#{h.anchor}">{html.escape(h.text)}</a></li>' for h in toc
                )
                parts.append(f"<nav><ul>{links}</ul></nav>")
        elif isinstance(b, _Text):
            parts.append(_md_inline_html(b.markdown))
        elif isinstance(b, _Table):
            rows = ["<table>"]
            if b.caption:
                rows.append(f"<caption>{html.escape(b.caption)}</caption>")
            rows.append(
                "<thead><tr>"
                + "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
                + "</tr></thead><tbody>"
            )
            for k, row in enumerate(b.rows):
                tds = []
                for i, c in enumerate(row):
                    classes = (["num"] if i in b.align_right else []) + (
                        ["best"] if c.strong else []
                    )
                    attrs = "".join(
                        f' {k}="{html.escape(v, quote=True)}"' for k, v in c.attrs.items()
                    )
                    cls = f' class="{" ".join(classes)}"' if classes else ""
                    text = html.escape(c.text)
                    tds.append(
                        f"<td{cls}{attrs}>{f'<strong>{text}</strong>' if c.strong else text}</td>"
                    )
                row_cls = b.row_classes.get(k)
                tr = f'<tr class="{row_cls}">' if row_cls else "<tr>"
                rows.append(tr + "".join(tds) + "</tr>")
            rows.append("</tbody></table>")
            parts.append("".join(rows))
        elif isinstance(b, _Gallery):
            parts.append('<div class="gallery">' + "".join(_figure(i) for i in b.images) + "</div>")
        else:
            parts.append(_figure(b))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _write_text_atomic(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), ".tmp")


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
) -> ReportPaths:
    """Write ``report.md`` and a self-contained ``report.html`` into ``out_dir``.

    Sections: test-NLL table beside the published rows (best entries marked), training and
    evaluation budget, density maps with test events and generated samples, training-loss
    curves, seed-002 geometry results (if given), versions (this run against ``previous``),
    caveats. The Markdown links images by relative path; the HTML embeds them as base64
    ``data:`` URIs and uses inline CSS only, so it makes no network request.

    Args:
        summary: Summary metrics dict (schema in the module docstring).
        out_dir: Folder for ``report.md`` and ``report.html`` (created).
        map_pngs: ``catalogue -> model -> PNG`` density maps (missing files raise).
        loss_pngs: ``catalogue -> PNG`` loss-curve figures.
        geometry: ``name -> parsed JSON`` of the geometry stage (``reports/geometry/*.json``).
        geometry_pngs: Figures of the geometry stage.
        previous: The version to compare with; ``None`` leaves the versions section empty.
        title: Report title.

    Returns:
        The paths of the two files.

    Raises:
        ValueError: If the summary is malformed.
        FileNotFoundError: If a listed PNG does not exist.
    """
    validate_summary(summary)
    out = Path(out_dir)
    blocks: list[_Block] = []

    def heading(level: int, text: str) -> None:
        blocks.append(_Heading(level, text, _slug(text)))

    heading(1, title)
    seeds = ", ".join(str(s) for s in summary["seeds"])
    blocks.append(
        _Text(
            f"Protocol: {summary['protocol']}. Seeds: {seeds}. Units: {summary['units']}. "
            "For scale, the uniform density on the sphere has NLL log 4π = 2.531 nats."
        )
    )
    heading(2, "Test NLL")
    blocks += _nll_blocks(summary)
    heading(2, "Training and evaluation")
    blocks += _budget_blocks(summary)
    blocks.append(
        _Text(
            "Z is the probability-flow density integrated over a latitude/longitude grid "
            "(≈ 1 for a correctly normalised model)."
        )
    )

    def image(path: str | os.PathLike[str], alt: str, caption: str) -> _Image:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"report image {p} ({alt}) does not exist")
        return _Image(p, alt, caption)

    heading(2, "Density maps and samples")
    if map_pngs:
        blocks.append(
            _Text(
                "Log-density of each model (seed-0 weights) from the exact probability-flow ODE "
                "on a latitude/longitude grid, with the test events of split seed 0 (top), and "
                "samples generated by the reverse geodesic random walk (bottom)."
            )
        )
        for cat in _catalogue_order(map_pngs):
            heading(3, cat)
            blocks.append(
                _Gallery(
                    [
                        image(png, f"{cat} {model} density map", f"{cat} / {model}")
                        for model, png in map_pngs[cat].items()
                    ]
                )
            )
    else:
        blocks.append(_Text("No maps were produced."))
    heading(2, "Training loss")
    if loss_pngs:
        for cat in _catalogue_order(loss_pngs):
            blocks.append(
                image(loss_pngs[cat], f"{cat} training loss", f"{cat}: training loss per seed.")
            )
    else:
        blocks.append(_Text("No loss histories were recorded."))
    if geometry or geometry_pngs:
        heading(2, "Geometry (seed 002)")
        blocks.append(
            _Text(
                "Ambient denoising score matching on embedded manifolds: raw and "
                "Rao-Blackwellized targets and the curvature correction, as computed by the "
                "geometry stage."
            )
        )
        for name in sorted(geometry or {}):
            heading(3, name)
            blocks += _geometry_blocks(name, (geometry or {})[name])
        for png in geometry_pngs:
            blocks.append(image(png, Path(png).stem, Path(png).stem))
    heading(2, "Versions")
    blocks += _version_blocks(summary, previous)
    heading(2, "Caveats")
    blocks += _caveat_blocks(summary)

    md_path, html_path = out / "report.md", out / "report.html"
    _write_text_atomic(md_path, _render_markdown(blocks, out))
    _write_text_atomic(html_path, _render_html(blocks, title))
    return ReportPaths(md_path, html_path)
