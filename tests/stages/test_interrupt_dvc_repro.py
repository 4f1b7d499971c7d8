"""Ctrl-C and ``kill`` under a plain ``dvc repro`` (the README's regenerate command).

A tiny project (one catalogue, rsgm, 2 seeds, a run far longer than the test) is ingested,
split and configured once by ``dvc repro``; each case copies it and runs ``dvc repro
train@tiny-rsgm`` in its own session, waits until every seed has begun training, then:

- Ctrl-C (SIGINT to the whole process group, as a terminal sends it), thread and process
  runners: dvc and the stage stop within seconds, the stage prints its one line and exits
  130, dvc reports that exit code in its one ERROR line (dvc itself exits 255), no traceback;
- SIGTERM to dvc's pid alone (``kill PID``): dvc dies at once; the stage, told by the kernel
  (``pipeline.process_group.stop_with_parent``), stops as on SIGTERM instead of training on
  as an orphan.

Every case runs under ``SHELL=/bin/sh`` (dash here, and what dvc uses where SHELL is unset).

In every case: no process of the run is left, each seed has a checkpoint of the step it
stopped at, and dvc.lock does not record the stage as done.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from pipeline.config import deep_merge
from tests.stages.stage_helpers import write_tiny_catalogue

pytestmark = pytest.mark.process  # dvc repro stopped by signals

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COPY = ["dvc.yaml", "params.yaml", "profiles", "pipeline", "stages", ".dvcignore"]
COPY += ["data/published_splits"]  # a dep of every split stage
SEEDS = (0, 1)
STEPS = 1_000_000  # never reached: the signal always arrives mid-run
STAGE = "train@tiny-rsgm"


def _env() -> dict[str, str]:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    for key in ("PREFECT_API_URL", "GEOSGM_PREFECT"):  # a plain dvc repro: no Prefect
        env.pop(key, None)
    # dvc runs each cmd through $SHELL. /bin/sh is what a machine without SHELL (CI) gets, and
    # the strict case: dash, unlike bash, does not exec a lone command itself.
    env["SHELL"] = "/bin/sh"
    return env


def _params(runner: str) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    smoke = yaml.safe_load((ROOT / "profiles/smoke.yaml").read_text(encoding="utf-8"))
    params = deep_merge(params, smoke)
    spec = {"lat_col": "lat", "lon_col": "lon", "skip_lines": "auto", "has_header": True}
    params["ingest"]["catalogues"] = {"tiny": {"file": "tiny.csv", **spec}}
    params["split"]["protocol"] = "hash"
    params["split"]["seeds"] = list(SEEDS)
    params["train"]["seeds"] = list(SEEDS)
    params["train"]["models"] = ["rsgm"]
    params["train"]["runner"] = {"kind": runner, "max_workers": 2}
    params["train"]["rsgm"]["optim"]["steps"] = STEPS
    params["train"]["common"]["optim"]["checkpoint_every"] = 10  # what _wait_for_training sees
    params["train"]["overrides"] = {}
    return params


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DVC project with the tiny catalogue ingested, split and configured (no model)."""
    root = tmp_path_factory.mktemp("dvc_interrupt") / "p"
    for name in COPY:
        src, dst = ROOT / name, root / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    write_tiny_catalogue(root)
    (root / "params.yaml").write_text(yaml.safe_dump(_params("thread"), sort_keys=False))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q", "-f"]):
        subprocess.run(cmd, cwd=root, env=_env(), check=True, capture_output=True)
    done = subprocess.run(
        ["dvc", "repro", "train_config@tiny-rsgm", "split@tiny"],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return root


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _wait_for_training(root: Path, proc: subprocess.Popen[str], timeout: float = 300.0) -> None:
    """Until every seed has written its first checkpoint (step 10), so the
    signal lands mid-training whatever the machine's load."""
    deadline = time.monotonic() + timeout
    metas = [root / f"data/models/tiny/rsgm/seed{s}/meta.json" for s in SEEDS]
    while not all(m.is_file() for m in metas):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training never reached its first checkpoint"
        time.sleep(0.05)


def _is_train_stage(p: psutil.Process) -> bool:
    try:
        return "stages.train" in " ".join(p.cmdline())
    except psutil.Error:  # it ended between the listing and this read
        return False


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """The processes still running (not zombies) after waiting up to ``timeout`` seconds."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize(
    ("runner", "how"),
    [("thread", "ctrl-c"), ("process", "ctrl-c"), ("process", "kill-dvc")],
    ids=["threads-ctrl-c", "processes-ctrl-c", "processes-sigterm-to-dvc-pid"],
)
def test_plain_dvc_repro_stops_promptly_with_one_line_and_a_checkpoint(
    prepared: Path, tmp_path: Path, runner: str, how: str
) -> None:
    root = tmp_path / "p"
    shutil.copytree(prepared, root, symlinks=True)
    (root / "params.yaml").write_text(yaml.safe_dump(_params(runner), sort_keys=False))
    proc = subprocess.Popen(
        ["dvc", "repro", STAGE],
        cwd=root,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: the Ctrl-C below reaches only this run
    )
    try:
        _wait_for_training(root, proc)
        tree = _children(proc.pid)
        assert any(_is_train_stage(p) for p in tree), tree
        sent = time.monotonic()
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)
        # The stage holds dvc's pipes: reading them to the end waits for the stage too.
        _, err = proc.communicate(timeout=120)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    left = _wait_gone(tree, timeout=10.0)
    assert not left, [p.cmdline() for p in left]
    # Not a timing test: the bound only catches a stage that trains on.
    assert took < 60.0, f"stopped {took:.1f} s after the signal"
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    if how == "ctrl-c":
        assert proc.returncode == 255, err  # dvc's own code for a failed stage
        assert len(lines) == 2, err
        assert lines[0].startswith("train: interrupted by SIGINT"), err
        assert lines[1].startswith(f"ERROR: failed to reproduce '{STAGE}'"), err
        assert lines[1].endswith("exited with 130"), err
    else:
        assert proc.returncode == -signal.SIGTERM, err  # dvc killed by the default action
        assert lines == [lines[0]] and lines[0].startswith("train: interrupted by SIGTERM"), err
    steps = [
        json.loads((root / f"data/models/tiny/rsgm/seed{s}/meta.json").read_text())["step"]
        for s in SEEDS
    ]
    assert all(0 < s < STEPS for s in steps), steps
    lock = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))
    assert STAGE not in lock["stages"] and "split@tiny" in lock["stages"]
