"""Statistics over seeds and the plain-text NLL table (light: no torch).

NLL is in nats per point, w.r.t. the area measure of the unit sphere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.published import PUBLISHED_NLL, PUBLISHED_RSGM_METHOD

# Two-sided 95% Student-t quantiles t_{0.975, n-1}; for 5 seeds 2.776 as in the published tables.
_T975 = {
    2: 12.706,
    3: 4.303,
    4: 3.182,
    5: 2.776,
    6: 2.571,
    7: 2.447,
    8: 2.365,
    9: 2.306,
    10: 2.262,
}


def nll_statistics(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample std (ddof = 1) and 95% CI half-width t_{0.975,n−1}·std/√n over seeds.

    For 5 seeds the half-width is 2.776·std/√5, as in the published tables; for one seed
    std and the half-width are NaN (a spread of one value is not zero but unknown).

    Raises:
        ValueError: If ``values`` is empty or not finite.
    """
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0 or not np.isfinite(arr).all():
        raise ValueError(f"need finite per-seed values, got {arr.tolist()}")
    mean = float(arr.mean())
    if arr.size == 1:
        return {"mean": mean, "std": float("nan"), "ci95": float("nan")}
    std = float(arr.std(ddof=1))
    n = int(arr.size)
    if n in _T975:
        t = _T975[n]
    else:
        from scipy.stats import t as student_t

        t = float(student_t.ppf(0.975, n - 1))
    return {"mean": mean, "std": std, "ci95": t * std / math.sqrt(n)}


def format_nll_table(summary: dict[str, Any]) -> str:
    """Plain-text test-NLL table (mean ± 95% CI half-width) with the published RSGM row."""
    results: dict[str, dict[str, Any]] = summary.get("results", {})
    catalogues = list(results)
    models: list[str] = []
    for per_model in results.values():
        models.extend(m for m in per_model if m not in models)
    width = 18
    head = f"{'test NLL (nats)':<24}" + "".join(f"{c:>{width}}" for c in catalogues)
    lines = [head, "-" * len(head)]
    for model in models:
        cells = []
        for cat in catalogues:
            entry = results[cat].get(model)
            if entry is None:
                cells.append(f"{'—':>{width}}")
            else:
                cells.append(f"{entry['mean']:>+9.3f} ± {entry['ci95']:<6.3f}".rjust(width))
        lines.append(f"{model:<24}" + "".join(cells))
    published = PUBLISHED_NLL[PUBLISHED_RSGM_METHOD]
    pub = "".join(
        f"{published[c][0]:>+9.2f} ± {published[c][1] or 0.0:<6.2f}".rjust(width)
        if c in published
        else f"{'—':>{width}}"
        for c in catalogues
    )
    lines.append(f"{'RSGM (published)':<24}" + pub)
    lines.append("mean ± 95% CI half-width over seeds; lower is better; nats per point on S².")
    radii = sorted(
        {r for per in results.values() for e in per.values() for r in (e.get("far") or {})},
        key=float,
    )
    for radius in radii:
        lines.append(f"\ntest events farther than {radius}° from every training event:")
        for model in models:
            cells = []
            for cat in catalogues:
                far = ((results[cat].get(model) or {}).get("far") or {}).get(radius, {})
                if "mean" in far:
                    cells.append(f"{far['mean']:>+9.3f} ± {far['ci95']:<6.3f}".rjust(width))
                else:
                    cells.append(f"{'—':>{width}}")
            lines.append(f"{model:<24}" + "".join(cells))
    return "\n".join(lines)
