"""Tests for the ingest and split stages: main() in a temp project, and `dvc repro`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.data.io import load_processed
from pipeline.data.splits import PARTS, load_split
from pipeline.flows.server import local_prefect_server
from stages import ingest, split

ROOT = Path(__file__).resolve().parents[2]

# Each stage's main() is one Prefect flow run: run them against the session's test API.
pytestmark = pytest.mark.usefixtures("prefect_harness")


def _params(path: Path, catalogues: dict[str, Any], protocol: str = "hash") -> Path:
    params = {
        "ingest": {"max_reject_fraction": 0.01, "catalogues": catalogues},
        "split": {"protocol": protocol, "seeds": [0, 1, 2, 3, 4], "fractions": [0.8, 0.1, 0.1]},
    }
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def _dirs(root: Path) -> list[str]:
    return [
        "--processed-dir",
        str(root / "data" / "processed"),
        "--params",
        str(root / "params.yaml"),
    ]


def test_ingest_and_split_main(tmp_path: Path, tiny_catalogue: Any) -> None:
    _params(tmp_path / "params.yaml", {"tiny": tiny_catalogue.spec})
    before = tiny_catalogue.path.read_bytes()
    rc = ingest.main(
        ["--catalogue", "tiny", "--raw-dir", str(tiny_catalogue.raw_dir)]
        + _dirs(tmp_path)
        + ["--rejects-dir", str(tmp_path / "rej"), "--metrics-dir", str(tmp_path / "met")]
    )
    assert rc == 0
    assert tiny_catalogue.path.read_bytes() == before
    ds = load_processed(tmp_path / "data" / "processed" / "tiny.nc")
    np.testing.assert_array_equal(ds["lat"].to_numpy(), tiny_catalogue.lat)
    metrics = json.loads((tmp_path / "met" / "tiny.json").read_text())
    assert (metrics["n_rows_read"], metrics["n_valid"], metrics["n_rejected"]) == (60, 60, 0)
    assert (tmp_path / "rej" / "tiny.csv").read_text() == "line_number,raw_line,reason\n"

    rc = split.main(
        ["--catalogue", "tiny", "--splits-dir", str(tmp_path / "splits")] + _dirs(tmp_path)
    )
    assert rc == 0
    table = pd.read_csv(tmp_path / "splits" / "tiny.csv")
    assert list(table.columns) == ["event"] + [f"seed{k}" for k in range(5)]
    assert len(table) == 60 and set(table["seed2"]) <= set(PARTS)
    parts = load_split(
        tmp_path / "data" / "processed" / "tiny.nc", tmp_path / "splits" / "tiny.csv", 2
    )
    assert sum(len(v) for v in parts.values()) == 60


def test_ingest_failure_writes_rejects_and_returns_1(
    tmp_path: Path, tiny_catalogue: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with tiny_catalogue.path.open("a") as fh:
        fh.write("91,0\n")  # 1 of 61 rejected > 1 %
    _params(tmp_path / "params.yaml", {"tiny": tiny_catalogue.spec})
    rc = ingest.main(
        ["--catalogue", "tiny", "--raw-dir", str(tiny_catalogue.raw_dir)]
        + _dirs(tmp_path)
        + ["--rejects-dir", str(tmp_path / "rej"), "--metrics-dir", str(tmp_path / "met")]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "tiny.csv: 1 of 61 data lines rejected" in err and "line 63" in err
    assert "Traceback" not in err  # bad input is a message, not a crash
    rejects = pd.read_csv(tmp_path / "rej" / "tiny.csv")
    assert rejects.to_dict("records") == [
        {"line_number": 63, "raw_line": "91,0", "reason": "latitude 91.0 outside [-90, 90]"}
    ]
    assert not (tmp_path / "data" / "processed" / "tiny.nc").exists()


def test_unknown_catalogue_and_missing_labels(
    tmp_path: Path, tiny_catalogue: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _params(tmp_path / "params.yaml", {"tiny": tiny_catalogue.spec}, protocol="rsgm")
    assert ingest.main(["--catalogue", "other"] + _dirs(tmp_path)) == 1
    assert "unknown catalogue 'other'; known: ['tiny']" in capsys.readouterr().err
    args = ["--catalogue", "tiny", "--raw-dir", str(tiny_catalogue.raw_dir)] + _dirs(tmp_path)
    assert (
        ingest.main(
            args + ["--metrics-dir", str(tmp_path / "m"), "--rejects-dir", str(tmp_path / "r")]
        )
        == 0
    )
    rc = split.main(
        ["--catalogue", "tiny", "--published-dir", str(tmp_path / "none")] + _dirs(tmp_path)
    )
    assert rc == 1
    assert (
        "tiny_rsgm_splits_seed0-4.csv: published split labels not found" in capsys.readouterr().err
    )


def _dvc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(bin_dir / "dvc"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.process  # dvc repro
def test_dvc_repro_ingest_split(tmp_path: Path, tiny_catalogue: Any) -> None:
    """`dvc repro` of ingest+split in a copy of the project; a second repro runs nothing."""
    proj = tmp_path / "proj"
    proj.mkdir()
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy2(ROOT / name, proj / name)
    (proj / ".dvc").mkdir()
    shutil.copy2(ROOT / ".dvc" / "config", proj / ".dvc" / "config")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pipeline", "stages"):
        shutil.copytree(ROOT / name, proj / name, ignore=ignore)
    shutil.copytree(ROOT / "data" / "published_splits", proj / "data" / "published_splits")
    shutil.copytree(tiny_catalogue.raw_dir, proj / "data" / "raw")
    # The project's params with only the tiny catalogue and the append-stable split.
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["ingest"]["catalogues"] = {"tiny": tiny_catalogue.spec}
    params["split"]["protocol"] = "hash"
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=proj, check=True)

    # One Prefect server for both stages' flows, with its own database (not the one a test on
    # another pytest-xdist worker may be writing to).
    with local_prefect_server(proj, home=proj / ".prefect"):
        first = _dvc(proj, "repro", "ingest", "split")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Running stage 'ingest@tiny'" in first.stdout
    assert "Running stage 'split@tiny'" in first.stdout
    ds = load_processed(proj / "data" / "processed" / "tiny.nc")
    assert ds.sizes["event"] == 60
    table = pd.read_csv(proj / "data" / "splits" / "tiny.csv")
    assert len(table) == 60
    metrics = json.loads((proj / "reports" / "data" / "tiny.json").read_text())
    assert metrics["n_valid"] == 60
    assert "/tiny.nc" in (proj / "data" / "processed" / ".gitignore").read_text()
    lock = yaml.safe_load((proj / "dvc.lock").read_text())
    assert set(lock["stages"]) >= {"ingest@tiny", "split@tiny"}

    second = _dvc(proj, "repro", "ingest", "split")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Running stage" not in second.stdout
