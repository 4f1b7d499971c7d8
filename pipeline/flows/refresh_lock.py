"""The refresh lock ``data/.refresh.lock``: one refresh at a time in a project (no prefect)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from pipeline.flows.refresh_errors import RefreshLockedError

__all__ = ["LOCK_NAME", "refresh_lock"]

#: The lock file, relative to the project root (git-ignored).
LOCK_NAME = "data/.refresh.lock"


@contextlib.contextmanager
def refresh_lock(repo_dir: Path, timeout: float = 0.0) -> Iterator[Path]:
    """Hold the project's refresh lock ``data/.refresh.lock``.

    Args:
        repo_dir: Project root.
        timeout: Seconds to wait for the lock; 0 fails at once, a negative value waits
            forever.

    Yields:
        The lock file path.

    Raises:
        RefreshLockedError: If another refresh holds the lock after ``timeout`` seconds.
    """
    path = repo_dir / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=timeout)
    try:
        lock.acquire()
    except Timeout as exc:
        raise RefreshLockedError(
            f"another refresh is running in {repo_dir} (lock {path} is held; waited "
            f"{max(timeout, 0.0):g} s). Try again when it has finished."
        ) from exc
    try:
        yield path
    finally:
        lock.release()
