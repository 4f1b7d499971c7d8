"""Tests for pipeline.report.summary: seed statistics and the summary schema check."""

from __future__ import annotations

import math

import pytest
from report_helpers import T_975_4, _summary

from pipeline.report.summary import seed_statistics, validate_summary


def test_seed_statistics_matches_t_interval() -> None:
    mean, std, ci95 = seed_statistics([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == 3.0
    assert math.isclose(std, math.sqrt(2.5), rel_tol=1e-15)
    assert math.isclose(ci95, T_975_4 * math.sqrt(2.5) / math.sqrt(5.0), rel_tol=1e-12)
    assert math.isnan(seed_statistics([1.0])[1])
    with pytest.raises(ValueError, match="non-empty"):
        seed_statistics([])


def test_validate_summary_names_the_problem() -> None:
    bad = _summary()
    del bad["results"]["volcano"]["rsgm"]["per_seed"][2]["test_nll"]
    with pytest.raises(ValueError, match=r"results\['volcano'\]\['rsgm'\]\['per_seed'\]\[2\]"):
        validate_summary(bad)
    bad = _summary()
    bad["results"]["volcano"]["rsgm"]["per_seed"][0]["nfe"] = "many"
    with pytest.raises(ValueError, match="'nfe'\\] must be a number"):
        validate_summary(bad)
    with pytest.raises(ValueError, match="missing top-level key 'seeds'"):
        validate_summary({"protocol": "p", "units": "u", "results": {}})
