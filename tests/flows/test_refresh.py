"""The refresh flow on a tiny DVC project: append-only merge, quarantine, rerun, lock."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import pytest

from pipeline import cli
from pipeline.data.registry import CatalogueSpec
from pipeline.flows import server
from pipeline.flows.refresh import (
    LOCK_NAME,
    RefreshLockedError,
    merge_incoming_file,
    record_version,
    refresh,
    refresh_lock,
)

VOLCANO_RAW = b"# source: NOAA\nLatitude,Longitude\n-30.2,-178.47\n30.78,130.28\n11.984,-86.161"
FLOOD_RAW = b"# source: DFO\r\nlat,long\r\n35.8142,5.23026\r\n-18.7111,-45.3489"

PARAMS = """\
ingest:
  max_reject_fraction: 0.25
  catalogues:
    volcano: {file: volerup.csv, lat_col: Latitude, lon_col: Longitude, has_header: true}
    flood: {file: flood.csv, lat_col: lat, lon_col: long, has_header: true}
"""

# count_<catalogue> counts the raw rows; summarize writes a summary in the reporting schema
# whose "test NLL" is -rows/100, so the version comparison has a known difference.
STAGE_SCRIPT = """\
import json, sys
from pathlib import Path
stage = sys.argv[1]
with open("runs.log", "a") as log:
    log.write(stage + "\\n")
if stage == "summarize":
    results = {}
    for name in ("volcano", "flood"):
        n = int(Path(f"out/{name}.txt").read_text())
        row = {"seed": 0, "test_nll": -n / 100, "val_nll": 0.0, "nfe": 1, "train_steps": 1,
               "train_seconds": 0.0, "normalization": 1.0}
        results[name] = {"toy": {"mean": -n / 100, "std": 0.0, "ci95": 0.0, "n_test": n,
                                 "per_seed": [row]}}
    Path("reports/metrics").mkdir(parents=True, exist_ok=True)
    summary = {"protocol": "toy", "seeds": [0], "units": "nats", "results": results}
    Path("reports/metrics/summary.json").write_text(json.dumps(summary))
else:
    lines = [l for l in Path(sys.argv[2]).read_text().splitlines() if l and l[0] != "#"]
    Path(sys.argv[3]).parent.mkdir(exist_ok=True)
    Path(sys.argv[3]).write_text(str(len(lines) - 1))
"""


def _dvc_yaml() -> str:
    py = sys.executable
    return f"""\
stages:
  count_volcano:
    cmd: {py} stage.py count_volcano data/raw/volerup.csv out/volcano.txt
    deps: [data/raw/volerup.csv, stage.py]
    outs: [out/volcano.txt]
  count_flood:
    cmd: {py} stage.py count_flood data/raw/flood.csv out/flood.txt
    deps: [data/raw/flood.csv, stage.py]
    outs: [out/flood.txt]
  summarize:
    cmd: {py} stage.py summarize
    deps: [out/volcano.txt, out/flood.txt, stage.py]
    metrics:
      - reports/metrics/summary.json:
          cache: false
"""


def _run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _git(cwd: Path, *args: str) -> str:
    ident = ["-c", "user.name=geosgm-test", "-c", "user.email=test@example.invalid"]
    return _run(["git", *ident, *args], cwd)


@pytest.fixture(scope="module")
def template_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC project with two raw catalogues, reproduced once, a version recorded."""
    root = tmp_path_factory.mktemp("tiny") / "project"
    (root / "data" / "raw").mkdir(parents=True)
    (root / "data" / "raw" / "volerup.csv").write_bytes(VOLCANO_RAW)
    (root / "data" / "raw" / "flood.csv").write_bytes(FLOOD_RAW)
    (root / "params.yaml").write_text(PARAMS)
    (root / "stage.py").write_text(STAGE_SCRIPT)
    (root / "dvc.yaml").write_text(_dvc_yaml())
    (root / ".gitignore").write_text("runs.log\ndata/incoming/\ndata/.refresh.lock\n")
    _git(root, "init", "-q")
    _run([sys.executable, "-m", "dvc", "init", "-q"], root)
    with (root / ".dvc" / "config").open("a") as cfg:
        cfg.write("[core]\n    analytics = false\n    check_update = false\n")
    _run([sys.executable, "-m", "dvc", "repro", "-q"], root)
    record_version.fn(root, root / "data" / "raw", {}, [])  # the baseline version
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "tiny project")
    (root / "runs.log").unlink()
    return root


@pytest.fixture
def project(template_project: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "project"
    shutil.copytree(template_project, dest, symlinks=True)
    return dest


def _drop(project: Path, catalogue: str, name: str, content: bytes) -> Path:
    path = project / "data" / "incoming" / catalogue / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


NEW_VOLCANO = (
    b"Latitude,Longitude\n"
    b"30.78,130.28\n"  # duplicate of a raw event
    b"1.5,2.5\n"
    b"95,10\n"  # rejected: latitude out of range
    b"1.5,2.5\n"  # duplicate of a row appended just before
    b"-7.25,110.5\n"
)


def test_refresh_appends_and_reruns_only_dependent_stages(
    prefect_harness: None, project: Path
) -> None:
    raw = project / "data" / "raw" / "volerup.csv"
    flood_before = (project / "data" / "raw" / "flood.csv").read_bytes()
    _drop(project, "volcano", "batch1.csv", NEW_VOLCANO)

    result = refresh(project)

    # Append-only, LF and "no final newline" kept, duplicates dropped and counted.
    assert raw.read_bytes() == VOLCANO_RAW + b"\n1.5,2.5\n-7.25,110.5"
    assert (project / "data" / "raw" / "flood.csv").read_bytes() == flood_before
    assert result.appended == {"volcano": 2}
    assert result.duplicates == {"volcano": 2}
    (outcome,) = result.merged
    assert (outcome.n_rows_read, outcome.n_rejected) == (5, 1)
    processed = project / "data" / "incoming" / "volcano" / "processed"
    assert outcome.moved_to == processed / "batch1.csv"
    assert not (project / "data" / "incoming" / "volcano" / "batch1.csv").exists()
    record = json.loads((processed / "batch1.csv.json").read_text())
    assert (record["n_appended"], record["n_duplicates"], record["n_rejected"]) == (2, 2, 1)
    assert "latitude 95.0 outside" in (processed / "batch1.rejects.csv").read_text()

    # Only the stages downstream of the changed raw file ran.
    assert result.repro_ran
    assert result.stages_run == ["count_volcano", "summarize"]
    assert (project / "runs.log").read_text().split() == ["count_volcano", "summarize"]
    assert (project / "out" / "volcano.txt").read_text() == "5"
    status = _run([sys.executable, "-m", "dvc", "status"], project)
    assert "up to date" in status

    # The new version: git revision, raw md5s as in dvc.lock, comparison with the baseline.
    versions = json.loads((project / "reports" / "versions.json").read_text())
    assert len(versions) == 2 and versions[-1] == result.version
    head = _git(project, "rev-parse", "HEAD").strip()
    assert result.version is not None
    assert (result.version["git_rev"], result.version["git_dirty"]) == (head, True)
    assert result.version["data_md5"] == {
        "data/raw/flood.csv": hashlib.md5(flood_before).hexdigest(),
        "data/raw/volerup.csv": hashlib.md5(raw.read_bytes()).hexdigest(),
    }
    assert result.version["data_hash"] != versions[0]["data_hash"]
    comparison = json.loads((project / "reports" / "version_comparison.json").read_text())
    assert comparison["previous"] == versions[0]["version_id"]
    assert comparison["current"] == versions[1]["version_id"]
    by_key = {(r["catalogue"], r["metric"]): r for r in comparison["comparison"]}
    # 3 -> 5 volcano rows: "test NLL" -0.03 -> -0.05.
    assert by_key[("volcano", "test_nll_mean")]["diff"] == pytest.approx(-0.02, abs=1e-12)
    assert by_key[("volcano", "test_nll_mean")]["better"] == "B"
    assert by_key[("flood", "test_nll_mean")]["diff"] == 0.0

    assert result.ok
    assert "merged volcano/batch1.csv: 2 appended, 2 duplicates dropped" in result.summary()

    # A second refresh with nothing new reruns nothing and records no version.
    again = refresh(project)
    assert again.outcomes == [] and again.stages_run == [] and again.version is None
    assert len(json.loads((project / "reports" / "versions.json").read_text())) == 2


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"Latitude,Longitude\nabc,def\n", "no valid rows"),
        (b"Latitude,Longitude\n1,2\n99,3\n98,4\n", "rejected"),
        (b"lat_deg,lon_deg\n1,2\n", "no latitude column"),
        (b"", "empty"),
    ],
    ids=["no-valid-rows", "over-reject-budget", "wrong-header", "empty"],
)
def test_malformed_file_is_quarantined_and_changes_nothing(
    prefect_harness: None, project: Path, content: bytes, reason: str
) -> None:
    raw = project / "data" / "raw" / "volerup.csv"
    _drop(project, "volcano", "bad.csv", content)
    versions_before = (project / "reports" / "versions.json").read_bytes()

    result = refresh(project, run_repro=False)

    assert raw.read_bytes() == VOLCANO_RAW
    (outcome,) = result.quarantined
    quarantine = project / "data" / "incoming" / "volcano" / "quarantine"
    assert outcome.moved_to == quarantine / "bad.csv"
    assert (quarantine / "bad.csv").read_bytes() == content
    assert reason in (quarantine / "bad.csv.reasons.txt").read_text()
    assert reason in outcome.reasons
    assert not (project / "data" / "incoming" / "volcano" / "bad.csv").exists()
    assert not (project / "data" / "incoming" / "volcano" / "processed").exists()
    assert result.appended == {} and not result.repro_ran and not result.ok
    assert "QUARANTINED volcano/bad.csv" in result.summary()
    assert (project / "reports" / "versions.json").read_bytes() == versions_before


def test_lock_blocks_a_concurrent_refresh(
    prefect_harness: None,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = project / "data" / "raw" / "volerup.csv"
    incoming = _drop(project, "volcano", "batch.csv", NEW_VOLCANO)
    held = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:  # another refresh, from this process's point of view
        with refresh_lock(project):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(RefreshLockedError, match=r"another refresh is running.*refresh\.lock"):
            refresh(project, run_repro=False)
        # The CLI says so in one line and exits 3 (the Prefect harness is the API already).
        monkeypatch.setattr(server, "local_prefect_server", lambda repo: nullcontext(""))
        assert cli.main(["--repo", str(project), "refresh", "--no-repro"]) == cli.EXIT_LOCKED
        assert "another refresh is running" in capsys.readouterr().err
        start = time.perf_counter()
        with pytest.raises(RefreshLockedError, match="waited 0.3 s"):
            refresh(project, run_repro=False, lock_timeout=0.3)
        assert time.perf_counter() - start >= 0.3
        assert raw.read_bytes() == VOLCANO_RAW and incoming.exists()
    finally:
        release.set()
        holder.join()
    assert (project / LOCK_NAME).parent.is_dir()
    result = refresh(project, run_repro=False)  # the lock is free again
    assert result.appended == {"volcano": 2}


def test_merge_keeps_crlf_and_raw_column_order(tmp_path: Path) -> None:
    raw = tmp_path / "flood.csv"
    raw.write_bytes(FLOOD_RAW)
    incoming = tmp_path / "incoming" / "new.csv"
    incoming.parent.mkdir()
    # Columns in the other order, LF endings, a duplicate of a raw event (given as 5.23026).
    incoming.write_bytes(b"long,lat\n5.23026,35.8142\n-60.5,12.25\n190,-3\n")
    spec = CatalogueSpec("flood", "flood.csv", "lat", "long", "auto", True)

    out = merge_incoming_file.fn(incoming, spec, raw, 0.0)

    assert (out.status, out.n_appended, out.n_duplicates, out.n_rejected) == ("merged", 2, 1, 0)
    # The raw file keeps CRLF and its lat,long order; 190 stays as given (ingest wraps it).
    assert raw.read_bytes() == FLOOD_RAW + b"\r\n12.25,-60.5\r\n-3,190"


def test_merge_keeps_a_final_newline(tmp_path: Path) -> None:
    raw = tmp_path / "fire.csv"
    raw.write_bytes(b"# FIRMS\n-25.088,152.358\n-30.087,150.998\n")
    incoming = tmp_path / "new.csv"
    incoming.write_bytes(b"-30.087,150.998\n10,20\n")
    spec = CatalogueSpec("fire", "fire.csv", 0, 1, "auto", False)

    out = merge_incoming_file.fn(incoming, spec, raw, 0.0)

    assert (out.n_appended, out.n_duplicates) == (1, 1)
    assert raw.read_bytes() == b"# FIRMS\n-25.088,152.358\n-30.087,150.998\n10,20\n"
