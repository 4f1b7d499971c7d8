"""A second ``geosgm refresh`` fails at once, in one line, before any server starts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline.refresh.command import EXIT_LOCKED, refresh_command
from pipeline.refresh.lock import LOCK_NAME, lock_holder, refresh_lock

pytestmark = pytest.mark.process  # geosgm refresh processes

HOLD = """
import sys
from pathlib import Path
from pipeline.refresh.lock import refresh_lock
with refresh_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.readline()
"""


@contextmanager
def _held_by_another_process(repo: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(repo)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.communicate("\n", timeout=30)


def test_second_refresh_exits_3_at_once_naming_lock_and_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_server(repo: Path) -> object:
        raise AssertionError("the server must not start while the lock is held")

    with _held_by_another_process(tmp_path) as holder:
        assert lock_holder(tmp_path / LOCK_NAME) == holder.pid
        start = time.perf_counter()
        rc = refresh_command(tmp_path, server=no_server)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
    assert rc == EXIT_LOCKED
    assert elapsed < 2.0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert str(tmp_path / LOCK_NAME) in err[0] and f"pid {holder.pid}" in err[0]
    with refresh_lock(tmp_path):  # free again once the holder is gone
        pass


def test_shared_lock_lets_the_flow_in_but_not_another_thread(tmp_path: Path) -> None:
    import threading

    from pipeline.refresh.errors import RefreshLockedError

    with refresh_lock(tmp_path, share=True):
        with refresh_lock(tmp_path):  # the flow, in the command's process
            pass
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with refresh_lock(tmp_path):
                pass
        except RefreshLockedError as exc:
            errors.append(exc)

    with refresh_lock(tmp_path):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert len(errors) == 1
