"""The report's Langevin section: paired differences and where the reference helps."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.report.build import build_report
from pipeline.report.langevin import langevin_blocks, paired_difference
from tests.report.report_helpers import _entry, _summary


def _with_langevin() -> dict:
    summary = _summary()
    res = summary["results"]
    # volcano: Langevin better by 0.5 in every seed; earthquake: noise around 0.
    base_v = [r["test_nll"] for r in res["volcano"]["rsgm"]["per_seed"]]
    res["volcano"]["rsgm_langevin"] = _entry([v - 0.5 + 0.01 * i for i, v in enumerate(base_v)])
    base_e = [r["test_nll"] for r in res["earthquake"]["rsgm"]["per_seed"]]
    noise = [0.02, -0.03, 0.01, -0.01, 0.0]
    res["earthquake"]["rsgm_langevin"] = _entry([v + d for v, d in zip(base_e, noise, strict=True)])
    return summary


def test_paired_difference_is_mean_and_standard_error_over_common_seeds() -> None:
    res = _with_langevin()["results"]["volcano"]
    mean, se, n = paired_difference(res["rsgm"], res["rsgm_langevin"])
    assert n == 5 and mean == pytest.approx(-0.48)
    assert se == pytest.approx(0.01 * math.sqrt(2.5) / math.sqrt(5))
    one = {"per_seed": [{"seed": 3, "test_nll": 1.0}]}
    assert math.isnan(paired_difference(one, one)[1])
    assert paired_difference(one, {"per_seed": [{"seed": 0, "test_nll": 1.0}]}) is None


def test_section_names_where_the_reference_helps_and_is_absent_otherwise(tmp_path: Path) -> None:
    assert langevin_blocks(_summary()) == []
    text = langevin_blocks(_with_langevin())[-1].markdown
    assert "lowers the test NLL on volcano (-0.480)" in text
    assert "earthquake" not in text.split(":")[1].split(".")[0]  # not beyond 2 SE
    md = build_report(_with_langevin(), tmp_path).markdown.read_text(encoding="utf-8")
    assert "## Langevin noising" in md
    assert "## Langevin noising" not in build_report(_summary(), tmp_path).markdown.read_text(
        encoding="utf-8"
    )
