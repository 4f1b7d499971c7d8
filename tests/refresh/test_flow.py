"""The refresh flow on a tiny DVC project: append-only merge, quarantine, rerun, lock,
the split-protocol check, rollback and recovery after ``kill -9`` (event identity, unreadable
files and the raw file's conventions: test_event_identity, test_incoming_files,
test_raw_append)."""

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
from refresh_helpers import FLOOD_RAW, _drop

import pipeline.refresh.flow as refresh_module
from pipeline import cli
from pipeline.flows import server
from pipeline.flows.dvc_repro import DvcReproError
from pipeline.refresh.errors import RefreshError, RefreshLockedError, SplitProtocolError
from pipeline.refresh.flow import record_version, refresh
from pipeline.refresh.journal import BACKUP_DIR, JOURNAL_NAME
from pipeline.refresh.lock import LOCK_NAME, refresh_lock
from tests.errors import raises_naming

pytestmark = pytest.mark.process  # refresh runs dvc repro

REPO = Path(__file__).resolve().parents[2]

VOLCANO_RAW = b"# source: NOAA\nLatitude,Longitude\n-30.2,-178.47\n30.78,130.28\n11.984,-86.161"

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
    Path("reports/summary.json").write_text(json.dumps(summary))
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
      - reports/summary.json:
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
        with raises_naming(RefreshLockedError, str(project / LOCK_NAME)):
            refresh(project, run_repro=False)
        # The CLI says so in one line and exits 3 (the Prefect harness is the API already).
        monkeypatch.setattr(server, "local_prefect_server", lambda repo: nullcontext(""))
        assert cli.main(["--repo", str(project), "refresh", "--no-repro"]) == cli.EXIT_LOCKED
        assert "another refresh is running" in capsys.readouterr().err
        start = time.perf_counter()
        with raises_naming(RefreshLockedError, str(project / LOCK_NAME), "0.3 s"):
            refresh(project, run_repro=False, lock_timeout=0.3)
        assert time.perf_counter() - start >= 0.3
        assert raw.read_bytes() == VOLCANO_RAW and incoming.exists()
    finally:
        release.set()
        holder.join()
    assert (project / LOCK_NAME).parent.is_dir()
    result = refresh(project, run_repro=False)  # the lock is free again
    assert result.appended == {"volcano": 2}


# --- transactional refresh: split protocol, rollback, kill -9 ---

NEW_FLOOD = b"lat,long\n12.25,-60.5\n35.8142,5.23026\n"  # one new event, one duplicate
VOLCANO_AFTER = VOLCANO_RAW + b"\n1.5,2.5\n-7.25,110.5"
FLOOD_AFTER = FLOOD_RAW + b"\r\n12.25,-60.5"


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under data/ and reports/ (but the lock file), by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for top in ("data", "reports")
        for p in sorted((root / top).rglob("*"))
        if p.is_file() and p.name != Path(LOCK_NAME).name
    }


def _set_protocol(project: Path, protocol: str) -> None:
    params = project / "params.yaml"
    params.write_text(params.read_text() + f"split:\n  protocol: {protocol}\n")


@pytest.mark.parametrize("protocol", ["rsgm", "unknown-protocol"])
def test_protocol_that_cannot_take_new_rows_fails_up_front_and_changes_nothing(
    prefect_harness: None, project: Path, protocol: str
) -> None:
    _set_protocol(project, protocol)
    incoming = _drop(project, "volcano", "batch1.csv", NEW_VOLCANO)
    _drop(project, "flood", "junk.csv", b"\x00\xff\xfe not a catalogue")  # not quarantined
    before = _snapshot(project)

    with pytest.raises(SplitProtocolError) as info:
        refresh(project)

    message = str(info.value)
    assert "\n" not in message
    assert "2 new row(s) for volcano" in message
    assert "set split.protocol to 'auto' or 'rsgm+hash'" in message
    assert "nothing was changed" in message
    assert _snapshot(project) == before
    assert incoming.read_bytes() == NEW_VOLCANO
    assert not (project / JOURNAL_NAME).exists()


def test_protocol_check_passes_duplicates_only_under_rsgm_and_new_rows_under_rsgm_hash(
    prefect_harness: None, project: Path
) -> None:
    _set_protocol(project, "rsgm")
    _drop(project, "volcano", "dups.csv", b"Latitude,Longitude\n30.78,130.28\n-30.2,-178.47\n")
    result = refresh(project, run_repro=False)  # nothing to append: rsgm is fine
    assert result.appended == {"volcano": 0} and result.duplicates == {"volcano": 2}
    assert (project / "data" / "raw" / "volerup.csv").read_bytes() == VOLCANO_RAW

    params = project / "params.yaml"
    params.write_text(params.read_text().replace("protocol: rsgm", "protocol: rsgm+hash"))
    _drop(project, "volcano", "batch1.csv", NEW_VOLCANO)
    assert refresh(project, run_repro=False).appended == {"volcano": 2}
    assert (project / "data" / "raw" / "volerup.csv").read_bytes() == VOLCANO_AFTER


@pytest.mark.parametrize("failure", ["repro-error", "keyboard-interrupt", "version-write-error"])
def test_a_failed_step_rolls_back_raw_files_incoming_files_and_version(
    prefect_harness: None, project: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    volcano_in = _drop(project, "volcano", "batch1.csv", NEW_VOLCANO)
    flood_in = _drop(project, "flood", "batch1.csv", NEW_FLOOD)
    before = _snapshot(project)
    seen_during: dict[str, bytes] = {}

    def fake_repro(repo_dir: Path) -> list[str]:
        # The batch is applied when dvc runs: both raw files appended, files processed.
        seen_during["volcano"] = (repo_dir / "data" / "raw" / "volerup.csv").read_bytes()
        seen_during["flood"] = (repo_dir / "data" / "raw" / "flood.csv").read_bytes()
        assert not volcano_in.exists() and (project / JOURNAL_NAME).is_file()
        if failure == "repro-error":
            raise DvcReproError("`dvc repro` failed in the project (exit 1):\nsplit@volcano: boom")
        if failure == "keyboard-interrupt":
            raise KeyboardInterrupt
        return ["count_volcano", "count_flood", "summarize"]

    def failing_write_version(repo_dir: Path, *args: object, **kwargs: object) -> None:
        (repo_dir / "reports" / "version_comparison.json").write_text("half-written")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(refresh_module, "run_dvc_repro", fake_repro)
    monkeypatch.setattr(refresh_module, "write_version", failing_write_version)
    expected: type[BaseException] = (
        KeyboardInterrupt if failure == "keyboard-interrupt" else RefreshError
    )

    with pytest.raises(expected) as info:
        refresh(project)

    assert seen_during == {"volcano": VOLCANO_AFTER, "flood": FLOOD_AFTER}
    after = _snapshot(project)
    assert after == before  # raw, incoming, reports: byte for byte; no records, no backups
    assert volcano_in.read_bytes() == NEW_VOLCANO and flood_in.read_bytes() == NEW_FLOOD
    assert not (project / "data" / "incoming" / "volcano" / "processed").exists()
    assert not (project / JOURNAL_NAME).exists() and not (project / BACKUP_DIR).exists()
    if failure != "keyboard-interrupt":
        message = str(info.value)
        what = "`dvc repro`" if failure == "repro-error" else "recording the version"
        assert message.startswith(f"refresh failed at {what}, rolled back")
        assert "rolled back: data/raw restored to its pre-refresh bytes (put back: " in message
        assert "data/raw/volerup.csv" in message and "2 incoming file(s) moved back" in message
        assert ("boom" if failure == "repro-error" else "No space left") in message

    # The files are merged once by the next refresh.
    again = refresh(project, run_repro=False)
    assert again.appended == {"volcano": 2, "flood": 1}
    assert (project / "data" / "raw" / "volerup.csv").read_bytes() == VOLCANO_AFTER
    assert (project / "data" / "raw" / "flood.csv").read_bytes() == FLOOD_AFTER


# Runs the refresh transaction (the prefect-free core of the flow) in a forked process per
# case and kills it with SIGKILL at the case's point; one interpreter start for all cases.
_KILL_CHILD = """\
import json, os, signal, sys, traceback
from datetime import datetime, timezone
from pathlib import Path
import yaml
from pipeline.data.registry import parse_catalogues
from pipeline.refresh import batch_plan, versions
from pipeline.refresh import journal as refresh_journal

def kill_after(module, name, only=None):
    original = getattr(module, name)
    def wrapper(*args, **kwargs):
        if only == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        out = original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return out
    setattr(module, name, wrapper)

def run(project, point, record):
    module, name = point.split(".")
    kill_after({"journal": refresh_journal, "versions": versions}[module], name,
               "before" if name == "atomic_write" else None)
    params = yaml.safe_load((project / "params.yaml").read_text())
    specs = parse_catalogues(params["ingest"]["catalogues"])
    items = [(c, project / "data/incoming" / c / "batch1.csv") for c in ("volcano", "flood")]
    plan = batch_plan.plan_batch(items, specs, project / "data/raw", 0.25)
    now = datetime.now(timezone.utc)
    def finish(outcomes, step):
        if record:
            versions.write_version(project, project / "data/raw", {}, [],
                                   project / "reports/summary.json", now)
    refresh_journal.apply_in_transaction(
        project, plan, now, finish,
        marker=project / "reports/versions.json" if record else None,
        also_guard=[project / "reports/version_comparison.json"] if record else [])

killed = []
for project, point, record in json.loads(sys.argv[1]):
    pid = os.fork()
    if pid == 0:
        try:
            run(Path(project), point, record)
        except BaseException:
            traceback.print_exc()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    killed.append(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL)
print(json.dumps(killed))
"""

# (case id, where the process is killed, whether a version is recorded, journal left behind)
_KILL_CASES = [
    ("before-journal", "journal.atomic_write", False, False),  # backups written, no journal
    ("mid-append", "journal.replace_raw_file", False, True),  # volcano appended, flood not
    ("mid-move", "journal.finish_merged_file", False, True),  # one file in processed/
    ("after-version", "versions.write_version", True, True),  # committed, journal not deleted
]


def test_kill_9_then_refresh_gives_every_row_exactly_once(
    prefect_harness: None, template_project: Path, tmp_path: Path
) -> None:
    projects = {}
    for case, *_ in _KILL_CASES:
        projects[case] = shutil.copytree(template_project, tmp_path / case, symlinks=True)
        _drop(projects[case], "volcano", "batch1.csv", NEW_VOLCANO)
        _drop(projects[case], "flood", "batch1.csv", NEW_FLOOD)
    cases = [(str(projects[case]), point, record) for case, point, record, _ in _KILL_CASES]
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_CHILD, json.dumps(cases)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [True] * len(_KILL_CASES), proc.stderr

    for case, point, _, journal_left in _KILL_CASES:
        project = projects[case]
        assert (project / JOURNAL_NAME).is_file() == journal_left, case
        if case == "mid-append":  # killed between the two raw replaces
            assert (project / "data" / "raw" / "volerup.csv").read_bytes() == VOLCANO_AFTER
            assert (project / "data" / "raw" / "flood.csv").read_bytes() == FLOOD_RAW
        n_versions = len(json.loads((project / "reports" / "versions.json").read_text()))

        result = refresh(project, run_repro=False)

        assert (project / "data" / "raw" / "volerup.csv").read_bytes() == VOLCANO_AFTER, case
        assert (project / "data" / "raw" / "flood.csv").read_bytes() == FLOOD_AFTER, case
        for catalogue, rejects in (("volcano", ["batch1.rejects.csv"]), ("flood", [])):
            folder = project / "data" / "incoming" / catalogue
            assert not (folder / "batch1.csv").exists(), case
            files = sorted(p.name for p in (folder / "processed").iterdir())
            assert files == sorted(["batch1.csv", "batch1.csv.json", *rejects]), case
        assert not (project / JOURNAL_NAME).exists() and not (project / BACKUP_DIR).exists()
        if point == "versions.write_version":  # committed before the kill: kept as it is
            assert n_versions == 2 and result.outcomes == [], case
            assert result.recovered is not None and "changes are kept" in result.recovered
        else:
            assert n_versions == 1 and result.appended == {"volcano": 2, "flood": 1}, case
            if journal_left:
                assert result.recovered is not None and "rolled back" in result.recovered
            else:
                assert result.recovered is None, case
