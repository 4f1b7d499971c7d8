"""Tests for pipeline.report.summary: seed statistics and the summary schema check."""

from __future__ import annotations

from report_helpers import _summary

from pipeline.report.summary import validate_summary
from tests.errors import raises_naming


def test_validate_summary_names_the_problem() -> None:
    bad = _summary()
    del bad["results"]["volcano"]["rsgm"]["per_seed"][2]["test_nll"]
    with raises_naming(ValueError, "results['volcano']['rsgm']['per_seed'][2]", "['test_nll']"):
        validate_summary(bad)
    bad = _summary()
    bad["results"]["volcano"]["rsgm"]["per_seed"][0]["nfe"] = "many"
    with raises_naming(ValueError, "results['volcano']['rsgm']['per_seed'][0]['nfe']", "'many'"):
        validate_summary(bad)
    with raises_naming(ValueError, "'seeds'"):
        validate_summary({"protocol": "p", "units": "u", "results": {}})
