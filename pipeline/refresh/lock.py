"""The refresh lock ``data/.refresh.lock``: one refresh at a time in a project (no prefect).

The lock is an ``flock`` on the file, so it goes with the holder's process, ``kill -9``
included. The holder writes its pid into the file (the file is never truncated by a waiter,
unlike :mod:`filelock`'s), so a refresh that finds the lock held can say who holds it.
``geosgm refresh`` takes the lock before it starts a Prefect server
(:func:`pipeline.refresh.command.refresh_command`) and *shares* it with the refresh
flow it then runs in the same process; any other holder, another thread included, waits.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline.refresh.errors import RefreshLockedError

__all__ = ["LOCK_NAME", "lock_holder", "refresh_lock"]

#: The lock file, relative to the project root (git-ignored).
LOCK_NAME = "data/.refresh.lock"
#: Seconds between tries while waiting for the lock.
_POLL_S = 0.05

#: Lock files held with ``share=True`` by this process: refresh_lock re-enters them at once.
_SHARED: set[Path] = set()
_SHARED_GUARD = threading.Lock()


def lock_holder(path: Path) -> int | None:
    """The pid written in a lock file, or None when it holds none (or cannot be read)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def refresh_lock(repo_dir: Path, timeout: float = 0.0, share: bool = False) -> Iterator[Path]:
    """Hold the project's refresh lock ``data/.refresh.lock``.

    Args:
        repo_dir: Project root.
        timeout: Seconds to wait for the lock; 0 fails at once, a negative value waits
            forever.
        share: Let later ``refresh_lock`` calls of this process (the refresh flow run by the
            command that took the lock) enter at once while this one holds it.

    Yields:
        The lock file path.

    Raises:
        RefreshLockedError: If another refresh holds the lock after ``timeout`` seconds; one
            line naming the lock file and the pid written in it.
    """
    path = repo_dir / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    key = path.resolve()
    with _SHARED_GUARD:
        shared = key in _SHARED
    if shared:
        yield path
        return
    # No O_TRUNC: a waiter must not erase the holder's pid.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while not _try_flock(fd):
            if timeout >= 0 and time.monotonic() >= deadline:
                pid = lock_holder(path)
                who = f"pid {pid}" if pid is not None else "another process"
                raise RefreshLockedError(
                    f"another refresh is running in {repo_dir} (lock {path} is held by {who}; "
                    f"waited {max(timeout, 0.0):g} s). Try again when it has finished."
                )
            time.sleep(_POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        if share:
            with _SHARED_GUARD:
                _SHARED.add(key)
        try:
            yield path
        finally:
            if share:
                with _SHARED_GUARD:
                    _SHARED.discard(key)
            os.ftruncate(fd, 0)  # still locked: nobody reads a stale pid
    finally:
        os.close(fd)  # releases the flock
