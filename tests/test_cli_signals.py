"""SIGINT/SIGTERM stop a command's whole process tree, then its server (pipeline.process_group).

Each test starts a real ``geosgm``-like parent process (the scripts below, run by this
environment's python) that supervises a child which starts a grandchild, and a fake server
registered as a service; it signals the parent and checks the exit code, the time it took, and
that no process survives. A real Prefect server is not started (the stop path is the same
:func:`pipeline.process_group.stop_service` the fake server goes through).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pipeline import cli
from pipeline.cli import commands
from pipeline.process_group import (
    Interrupted,
    interrupt_exit_code,
    start_service,
    stop_service,
    supervise,
)

pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(os.name != "posix", reason="POSIX signals and sessions"),
]

# A stage stand-in: argv = out_dir, role, behaviour. "checkpoint": on SIGINT/SIGTERM write
# <role>.stopped and exit 130 (what a stage does); "ignore": ignore both signals. A "child"
# starts the "grandchild" first.
TREE = r"""
import os, signal, subprocess, sys, time
from pathlib import Path

out, role, behaviour = Path(sys.argv[1]), sys.argv[2], sys.argv[3]

def stop(signum, frame):
    (out / f"{role}.stopped").write_text(str(signum))
    os._exit(130)

for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN if behaviour == "ignore" else stop)
if role == "child":
    subprocess.Popen([sys.executable, __file__, str(out), "grandchild", behaviour])
(out / f"{role}.pid").write_text(str(os.getpid()))
while True:
    time.sleep(0.1)
"""

# The fake Prefect server: on SIGTERM it records whether any stage stand-in was still alive
# (it must be stopped after them) and exits; a SIGINT reaching it is recorded as a failure.
SERVER = r"""
import os, signal, sys, time
from pathlib import Path

import psutil

out = Path(sys.argv[1])

def alive(role):
    try:
        proc = psutil.Process(int((out / f"{role}.pid").read_text()))
        return proc.status() != psutil.STATUS_ZOMBIE
    except (OSError, ValueError, psutil.Error):
        return False

def on_term(signum, frame):
    busy = [role for role in ("child", "grandchild") if alive(role)]
    (out / "server.stopped").write_text(",".join(busy) or "none")
    os._exit(0)

signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, lambda s, f: (out / "server.got_sigint").write_text("1"))
(out / "server.pid").write_text(str(os.getpid()))
while True:
    time.sleep(0.1)
"""

# The geosgm-like parent: argv = out_dir, grace, how, behaviour. "session": the child runs
# in its own session through Supervisor.run (geosgm run's dvc repro). "inprocess": a plain
# subprocess.run in the parent's process group under a Prefect-style SIGTERM bridge that
# raises at once, so subprocess.run SIGKILLs the child and orphans the grandchild before the
# bridge hands the signal back (geosgm refresh's flow).
PARENT = r"""
import os, signal, subprocess, sys, time
from pathlib import Path

from pipeline.process_group import interrupt_exit_code, start_service, stop_service, supervise

out, grace, how, behaviour = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
tree = [sys.executable, str(out / "tree.py"), str(out), "child", behaviour]


class Bridge(BaseException):
    pass


def bridge(signum, frame):
    raise Bridge


try:
    with supervise(grace=grace) as sup:
        server = start_service([sys.executable, str(out / "server.py"), str(out)])
        try:
            if how == "session":
                sup.run(tree)
            else:
                ours = signal.signal(signal.SIGTERM, bridge)
                try:
                    subprocess.run(tree)
                except Bridge:
                    signal.signal(signal.SIGTERM, ours)
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(60)
        finally:
            stop_service(server)
except BaseException as exc:
    code = interrupt_exit_code(exc)
    if code is None:
        raise
    print(f"interrupted: killed={getattr(exc, 'killed', '?')}", file=sys.stderr, flush=True)
    sys.exit(code)
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_for(path: Path, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return int(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.02)
    raise AssertionError(f"{path.name} did not appear within {timeout:.0f} s")


def _gone_within(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.02)
    return [p for p in pids if _alive(p)]


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    (tmp_path / "tree.py").write_text(TREE)
    (tmp_path / "server.py").write_text(SERVER)
    (tmp_path / "parent.py").write_text(PARENT)
    return tmp_path


@pytest.fixture
def parent_procs(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:  # a failed test must not leave its tree behind
        if proc.poll() is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.wait()
    for pid_file in tmp_path.rglob("*.pid"):
        pid = int(pid_file.read_text() or 0)
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _start(
    out: Path, procs: list[subprocess.Popen[str]], how: str, behaviour: str, grace: float = 20.0
) -> tuple[subprocess.Popen[str], dict[str, int]]:
    cmd = [sys.executable, str(out / "parent.py"), str(out), str(grace), how, behaviour]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    procs.append(proc)
    pids = {role: _wait_for(out / f"{role}.pid") for role in ("server", "child", "grandchild")}
    return proc, pids


def _finish(proc: subprocess.Popen[str], signum: int, timeout: float) -> tuple[int, float, str]:
    start = time.monotonic()
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the parent did not exit within {timeout:.0f} s") from None
    return proc.returncode, time.monotonic() - start, err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_the_child_tree_then_the_server(
    scripts: Path, parent_procs: list[subprocess.Popen[str]], signum: int, code: int
) -> None:
    proc, pids = _start(scripts, parent_procs, "session", "checkpoint")
    rc, took, err = _finish(proc, signum, timeout=15)

    assert rc == code, err
    assert took < 8, f"took {took:.1f} s"
    assert _gone_within(list(pids.values()), 2) == []
    # Both stage stand-ins got the signal (once: they exit on the first) and stopped cleanly.
    for role in ("child", "grandchild"):
        assert (scripts / f"{role}.stopped").read_text() == str(int(signum))
    # The server was not sent the forwarded signal and was stopped after the stages were gone.
    assert (scripts / "server.stopped").read_text() == "none"
    assert not (scripts / "server.got_sigint").exists()
    assert "interrupted: killed=0" in err


def test_a_child_that_ignores_the_signal_is_killed_after_the_grace_period(
    scripts: Path, parent_procs: list[subprocess.Popen[str]]
) -> None:
    proc, pids = _start(scripts, parent_procs, "session", "ignore", grace=1.0)
    rc, took, err = _finish(proc, signal.SIGINT, timeout=15)

    assert rc == 130, err
    assert 1.0 <= took < 8, f"took {took:.1f} s"
    assert _gone_within(list(pids.values()), 2) == []
    assert "interrupted: killed=2" in err
    assert (scripts / "server.stopped").read_text() == "none"


def test_a_second_signal_kills_at_once(
    scripts: Path, parent_procs: list[subprocess.Popen[str]]
) -> None:
    proc, pids = _start(scripts, parent_procs, "session", "ignore", grace=30.0)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    rc, took, err = _finish(proc, signal.SIGINT, timeout=15)

    assert rc == 130, err
    assert took < 8, f"took {took:.1f} s"
    assert _gone_within(list(pids.values()), 2) == []
    assert "interrupted: killed=2" in err


def test_orphans_of_an_in_process_subprocess_run_are_stopped(
    scripts: Path, parent_procs: list[subprocess.Popen[str]]
) -> None:
    """refresh's path: dvc in the CLI's group, killed early, its children orphaned."""
    proc, pids = _start(scripts, parent_procs, "inprocess", "checkpoint")
    rc, took, err = _finish(proc, signal.SIGTERM, timeout=15)

    assert rc == 143, err
    assert took < 8, f"took {took:.1f} s"
    assert _gone_within(list(pids.values()), 2) == []
    # The child was SIGKILLed by subprocess.run; the orphaned grandchild got the SIGTERM.
    assert not (scripts / "child.stopped").exists()
    assert (scripts / "grandchild.stopped").read_text() == str(int(signal.SIGTERM))
    assert (scripts / "server.stopped").read_text() == "none"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_the_server_dies_with_a_killed_parent(
    scripts: Path, parent_procs: list[subprocess.Popen[str]]
) -> None:
    proc, pids = _start(scripts, parent_procs, "session", "checkpoint")
    proc.kill()  # no clean-up can run in the parent
    proc.wait()
    try:
        assert _gone_within([pids["server"]], 10) == []
        assert (scripts / "server.stopped").exists()
    finally:
        for pid in (pids["child"], pids["grandchild"]):  # nothing could stop these
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_leaving_the_block_stops_leftovers_and_services_not_older_processes(
    tmp_path: Path,
) -> None:
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    older = subprocess.Popen(sleep)
    before = signal.getsignal(signal.SIGINT)
    try:
        with supervise(grace=5.0) as sup:
            leftover = subprocess.Popen(sleep)
            service = start_service(sleep)
            assert leftover.pid in {p.pid for p in sup.children()}
            assert service.pid not in {p.pid for p in sup.children()}
        assert leftover.wait(timeout=5) == -signal.SIGTERM
        assert service.poll() is not None
        assert older.poll() is None
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        older.kill()
        older.wait()


def test_stop_service_kills_a_service_that_ignores_sigterm() -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    service = start_service([sys.executable, "-c", code])
    time.sleep(0.5)  # let it install the handler
    start = time.monotonic()
    stop_service(service, timeout=0.5)
    assert service.returncode == -signal.SIGKILL
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_geosgm_run_stops_dvc_and_its_stage_tree(
    scripts: Path, parent_procs: list[subprocess.Popen[str]], signum: int, code: int
) -> None:
    """The real command on a one-stage DVC project (PREFECT_API_URL set: no server started)."""
    project = scripts / "project"
    project.mkdir()
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=project, check=True)
    stage = f"python {scripts / 'tree.py'} {scripts} child checkpoint"
    (project / "dvc.yaml").write_text(f"stages:\n  hold:\n    cmd: {stage}\n")
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    cmd = [sys.executable, "-m", "pipeline.cli", "--repo", str(project), "run"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    parent_procs.append(proc)
    pids = [_wait_for(scripts / f"{role}.pid") for role in ("child", "grandchild")]
    # dvc runs the stage through `sh -c`, which may or may not exec it (dash vs bash):
    # walk up from the stage to the process that `geosgm run` started.
    between = [p for p in psutil.Process(pids[0]).parents() if p.pid != proc.pid]
    between = between[: next(i for i, p in enumerate(between) if p.ppid() == proc.pid) + 1]
    dvc = between[-1]
    # dvc and the stage run in their own session, away from the terminal's Ctrl-C.
    assert os.getsid(pids[0]) == dvc.pid != os.getsid(proc.pid)

    rc, took, err = _finish(proc, signum, timeout=30)

    assert rc == code, err
    assert took < 10, f"took {took:.1f} s"
    assert _gone_within([*(p.pid for p in between), *pids], 2) == []
    assert (scripts / "grandchild.stopped").read_text() == str(int(signum))
    name = signal.Signals(signum).name
    assert err.strip().splitlines()[-1] == (
        f"geosgm run: interrupted by {name}: stopped dvc repro and the Prefect server"
    )


def test_exit_codes_and_the_interrupted_line() -> None:
    assert interrupt_exit_code(Interrupted(signal.SIGINT)) == 130
    assert interrupt_exit_code(Interrupted(signal.SIGTERM)) == 143
    assert interrupt_exit_code(KeyboardInterrupt()) == 130
    assert interrupt_exit_code(RuntimeError("x")) is None
    args = cli.build_parser().parse_args(["run"])
    line = commands._interrupted_line(args, Interrupted(signal.SIGTERM, killed=2), 143)
    assert line.startswith("geosgm run: interrupted by SIGTERM: stopped dvc repro and the")
    assert "2 process(es) outlived the grace period" in line
