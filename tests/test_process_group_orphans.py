"""``kill -9`` of a supervisor leaves no supervised command running (issue 33).

Each case starts a supervisor in a subprocess; it launches a worker through the API under test
(:meth:`Supervisor.run`, :func:`start_service`, or ``Popen(tie_to_parent(...))`` as
``run_dvc_repro`` does), and the worker starts a grandchild (like ``dvc`` starts a stage).
Then the supervisor (its pid, or its whole process group) gets SIGKILL, and both the worker
and the grandchild must be gone soon after. Waits poll with a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only"
    ),
]

ROOT = Path(__file__).resolve().parents[1]

# The worker: starts a long sleeper (its "stage"), records both pids, then sleeps too.
WORKER = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as fh:
    fh.write(f"{os.getpid()} {child.pid}")
os.replace(tmp, sys.argv[1])
time.sleep(600)
"""

SUPERVISOR = """
import subprocess, sys
from pipeline.process_group import start_service, supervise, tie_to_parent
api, pidfile, worker = sys.argv[1], sys.argv[2], sys.argv[3]
cmd = [sys.executable, "-c", worker, pidfile]
with supervise() as sup:
    if api == "run":
        sup.run(cmd)
    elif api == "service":
        start_service(cmd).wait()
    else:  # as run_dvc_repro starts `dvc repro`
        subprocess.Popen(tie_to_parent(cmd), start_new_session=True).wait()
"""


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("api", ["run", "service", "tied-popen"])
@pytest.mark.parametrize("kill", ["pid", "group"])
def test_kill_9_of_the_supervisor_stops_worker_and_grandchild(
    tmp_path: Path, api: str, kill: str
) -> None:
    pidfile = tmp_path / "pids"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    sup = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, api, str(pidfile), WORKER],
        cwd=ROOT,
        env=env,
        start_new_session=True,  # its own group, so that killing the group spares pytest
    )
    pids: list[int] = []
    try:
        _wait_for(lambda: pidfile.is_file() or sup.poll() is not None, 30, "the worker")
        assert sup.poll() is None, "the supervisor exited early"
        pids = [int(p) for p in pidfile.read_text().split()]
        assert not any(_gone(p) for p in pids)
        if kill == "pid":
            os.kill(sup.pid, signal.SIGKILL)
        else:
            os.killpg(sup.pid, signal.SIGKILL)
        sup.wait(10)
        _wait_for(lambda: all(_gone(p) for p in pids), 15, f"pids {pids} to exit")
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if sup.poll() is None:
            sup.kill()
            sup.wait()


def test_guard_keeps_the_exit_code(tmp_path: Path) -> None:
    from pipeline.process_group import supervise

    with supervise() as sup:
        assert sup.run([sys.executable, "-c", "import sys; sys.exit(7)"]) == 7
        rc = sup.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), 9)"])
    assert rc == -signal.SIGKILL
