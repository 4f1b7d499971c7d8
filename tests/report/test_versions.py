"""Tests for pipeline.report.versions: differences, direction and p-values between versions."""

from __future__ import annotations

import copy
import math

from report_helpers import _TEST_NLL, _entry, _summary

from pipeline.report.versions import compare_versions, format_version_rows


def test_compare_versions_differences_direction_and_paired_p_value() -> None:
    a = _summary()
    b = copy.deepcopy(a)
    deltas = [-0.1, -0.2, -0.1, -0.2, -0.15]
    vals = [v + d for v, d in zip(_TEST_NLL["volcano"]["rsgm"], deltas, strict=True)]
    b["results"]["volcano"]["rsgm"] = _entry(vals, steps=20_000)
    b["results"]["earthquake"]["ambient_rb"] = _entry(
        [v + 0.3 for v in _TEST_NLL["earthquake"]["ambient_rb"]]
    )
    del b["results"]["earthquake"]["rsgm"]
    b["results"]["fire"] = {"rsgm": _entry([-1.0, -1.1, -1.2, -1.0, -1.1])}
    rows = compare_versions(a, b)
    by = {(r.catalogue, r.model, r.metric): r for r in rows}

    r = by[("volcano", "rsgm", "test_nll_mean")]
    assert math.isclose(r.diff or 0.0, -0.15, abs_tol=1e-12)
    assert r.better == "B" and r.note == "paired t-test"
    # paired differences have mean -0.15 and sample std 0.05: t = -0.15 / (0.05 / sqrt 5)
    from scipy import stats

    t_stat = 0.15 / (0.05 / math.sqrt(5.0))
    assert math.isclose(r.p_value or 0.0, 2.0 * stats.t.sf(t_stat, 4), rel_tol=1e-9)
    assert by[("volcano", "rsgm", "train_steps_mean")].diff == 10_000
    assert by[("volcano", "rsgm", "train_steps_mean")].better == "—"
    assert by[("volcano", "ambient_rb", "test_nll_mean")].better == "tie"
    eq = by[("earthquake", "ambient_rb", "test_nll_mean")]
    assert math.isclose(eq.diff or 0.0, 0.3, abs_tol=1e-12) and eq.better == "A"
    assert eq.p_value == 0.0  # the same shift on every seed: certain, not a t-test NaN
    assert by[("earthquake", "rsgm", "test_nll_mean")].note == "removed in B"
    assert by[("fire", "rsgm", "test_nll_mean")].note == "added in B"
    assert [r.catalogue for r in rows][0] == "volcano"

    text = format_version_rows(rows, "v1", "v2")
    assert "-0.1500" in text and "+0.3000" in text and "+10000" in text
    assert "v2 is better on 1 of 3" in text
    md = format_version_rows(rows, "v1", "v2", markdown=True)
    assert md.startswith("| catalogue | model | metric | v1 | v2 |")
