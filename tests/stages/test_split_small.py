"""The split stage fails with one line on a catalogue too small to split (issue 33)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stages import ingest, split

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_split_main_returns_1_on_five_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_dir = tmp_path / "data" / "raw"
    raw_dir.mkdir(parents=True)
    rows = ["10.0,20.0", "-30.5,40.25", "5.0,-100.0", "60.0,150.0", "-45.0,-60.0"]
    (raw_dir / "tiny.csv").write_text("lat,lon\n" + "\n".join(rows) + "\n", encoding="utf-8")
    spec = {"file": "tiny.csv", "lat_col": "lat", "lon_col": "lon"}
    spec |= {"skip_lines": "auto", "has_header": "auto"}
    params = {
        "ingest": {"max_reject_fraction": 0.01, "catalogues": {"tiny": spec}},
        "split": {"protocol": "hash", "seeds": [0, 1], "fractions": [0.8, 0.1, 0.1]},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    dirs = [
        "--processed-dir",
        str(tmp_path / "processed"),
        "--params",
        str(tmp_path / "params.yaml"),
    ]
    rc = ingest.main(
        ["--catalogue", "tiny", "--raw-dir", str(raw_dir)]
        + dirs
        + ["--rejects-dir", str(tmp_path / "rej"), "--metrics-dir", str(tmp_path / "met")]
    )
    assert rc == 0
    capsys.readouterr()

    rc = split.main(["--catalogue", "tiny", "--splits-dir", str(tmp_path / "splits")] + dirs)
    assert rc == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert any(
        line.startswith("split: error: catalogue tiny has 5 events: split seed 0 gives 0 ")
        and line.endswith("(need at least 1 in train, val and test)")
        for line in errors
    ), errors
    assert not (tmp_path / "splits" / "tiny.csv").exists()
