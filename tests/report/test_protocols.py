"""The memorisation-free table, the paired comparison with kde and the per-protocol winners."""

from __future__ import annotations

import math

import pytest

from pipeline.report.protocols import far_radii_of, paired_difference, paired_rows, winners


def _entry(test: list[float], far: list[float]) -> dict:
    per_seed = [
        {"seed": s, "test_nll": t, "far": {"0.1": {"test_nll": f, "n": 5, "share": 0.5}}}
        for s, (t, f) in enumerate(zip(test, far, strict=True))
    ]
    mean_far = sum(far) / len(far)
    return {
        "mean": sum(test) / len(test),
        "std": 0.1,
        "ci95": 0.1,
        "n_test": 10,
        "per_seed": per_seed,
        "far": {"0.1": {"mean": mean_far, "std": 0.1, "ci95": 0.1, "share_mean": 0.5}},
    }


SUMMARY = {
    "protocol": "rsgm",
    "seeds": [0, 1, 2],
    "units": "nats",
    "results": {
        "earthquake": {
            "kde": _entry([-1.0, -1.2, -0.8], [0.6, 0.5, 0.7]),
            "rsgm": _entry([-0.1, -0.2, 0.0], [0.3, 0.2, 0.4]),
        }
    },
}


def test_paired_difference_is_the_mean_and_se_of_per_seed_differences() -> None:
    kde, rsgm = (SUMMARY["results"]["earthquake"][m] for m in ("kde", "rsgm"))
    mean, se, n = paired_difference(rsgm, kde)
    assert (mean, n) == (pytest.approx(0.9), 3)
    assert se == pytest.approx(0.1 / math.sqrt(3))  # differences 0.9, 1.0, 0.8
    far_mean, far_se, _ = paired_difference(rsgm, kde, "0.1")
    assert far_mean == pytest.approx(-0.3) and far_se == pytest.approx(0.0, abs=1e-12)


def test_rows_mark_a_win_beyond_two_se_and_winners_differ_by_protocol() -> None:
    assert far_radii_of(SUMMARY) == ["0.1"]
    rows = paired_rows(SUMMARY, "kde")
    assert rows[0][:2] == ["rsgm", "published"] and "✓" not in rows[0][2]
    assert rows[1][:2] == ["rsgm", "beyond 0.1°"] and rows[1][2].endswith("✓")
    assert winners(SUMMARY) == {"earthquake": {"published": "kde", "beyond 0.1°": "rsgm"}}
