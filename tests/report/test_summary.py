"""Tests for pipeline.report.summary: seed statistics and the summary schema check."""

from __future__ import annotations

import pytest
from report_helpers import _summary

from pipeline.report.summary import validate_summary


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
