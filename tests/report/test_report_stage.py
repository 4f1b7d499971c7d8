"""The report stage (stages/report.py) end to end on a fixture tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_helpers import _git, _png, _summary


@pytest.mark.usefixtures("prefect_harness")
def test_report_stage_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """stages.report on a fixture tree: loss curves drawn, previous version read from git."""
    from stages.report import main

    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("report:\n  title: fixture report\n  compare_rev: HEAD\n")
    summary_path = Path("reports/summary.json")
    summary_path.parent.mkdir(parents=True)
    _git(tmp_path, "init", "-q")
    summary_path.write_text(json.dumps(_summary(shift=0.1)))
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "previous version")
    summary = _summary()
    summary_path.write_text(json.dumps(summary))
    for cat, models in summary["results"].items():
        for model, entry in models.items():
            history = {str(s): [[k, 1.0 / (k + 1)] for k in range(0, 200, 10)] for s in range(5)}
            per_model = {**entry, "loss_history": history}
            Path(f"reports/metrics/{cat}").mkdir(parents=True, exist_ok=True)
            Path(f"reports/metrics/{cat}/{model}.json").write_text(json.dumps(per_model))
            _png(Path(f"reports/maps/{cat}/{model}.png"))

    assert main([]) == 0
    html_text = Path("reports/report.html").read_text(encoding="utf-8")
    assert "<title>fixture report</title>" in html_text
    assert sorted(p.name for p in Path("reports/figures/loss").iterdir()) == [
        "earthquake.png",
        "volcano.png",
    ]
    md = Path("reports/report.md").read_text(encoding="utf-8")
    assert "](figures/loss/volcano.png)" in md
    assert "against `HEAD (" in md  # the committed summary is the previous version
    assert md.count("| -0.1000 |") == 8  # test and val NLL are 0.1 lower than at HEAD

    Path("reports/maps/volcano/rsgm.png").unlink()
    assert main([]) == 1  # a missing map fails the stage with a message

    summary_path.write_text('{"results": {"volcano"')  # a corrupt summary: one line, exit 1
    assert main([]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("report: error: reports/summary.json is not valid JSON"), err
    assert "rerun `dvc repro`" in err[-1]
