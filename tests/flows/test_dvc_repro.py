"""``dvc repro`` as a child in its own session: its stages, its failure, its group stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pipeline.flows.dvc_repro import DvcReproError, run_dvc_repro, stop_process_group
from tests.errors import raises_naming

pytestmark = pytest.mark.process  # dvc repro children


def _group_alive(pgid: int) -> bool:
    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


def test_run_dvc_repro_returns_the_stages_it_ran(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True
    )
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  hello:\n    cmd: python -c \"open('out.txt', 'w').write('hi')\"\n"
        "    outs: [out.txt]\n"
    )
    assert run_dvc_repro(tmp_path) == ["hello"]
    assert (tmp_path / "out.txt").read_text() == "hi"
    assert run_dvc_repro(tmp_path) == []  # up to date: nothing ran


def test_a_failed_dvc_repro_raises_with_the_end_of_its_output(tmp_path: Path) -> None:
    with raises_naming(DvcReproError, "dvc repro", str(tmp_path), "(exit ") as info:
        run_dvc_repro(tmp_path)  # not a DVC project
    assert "(exit 0)" not in str(info.value)


def test_stop_process_group_stops_the_leader_and_its_children(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, text=True)
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ready.exists()
    stop_process_group(proc, grace=5.0)
    assert proc.wait(timeout=5) != 0
    assert not _group_alive(proc.pid)
