"""``geosgm refresh`` from the lock to the exit code: the lock first, then the server.

A second refresh must fail at once, in one line. The lock is therefore taken (and shared
with the flow, :func:`pipeline.refresh.lock.refresh_lock`) before Prefect is even
imported, and long before the local Prefect server starts (~30 s) and the flow runs (whose
failure Prefect would log with a full traceback).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from pipeline.refresh.errors import RefreshError, RefreshLockedError
from pipeline.refresh.lock import refresh_lock

__all__ = ["EXIT_FAILED", "EXIT_LOCKED", "EXIT_OK", "refresh_command"]

# The exit codes of ``geosgm`` (:mod:`pipeline.cli`), repeated to keep this module light.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_LOCKED = 3


def refresh_command(
    repo: Path,
    run_repro: bool = True,
    lock_timeout: float = 0.0,
    server: Callable[[Path], AbstractContextManager[str]] | None = None,
) -> int:
    """Run ``geosgm refresh``: take the lock, start the server, run the flow, report.

    Args:
        repo: Project root.
        run_repro: Run ``dvc repro`` and record the version after merging.
        lock_timeout: Seconds to wait for a running refresh (0: fail at once).
        server: Context manager factory for the Prefect API (default:
            :func:`pipeline.flows.server.local_prefect_server`).

    Returns:
        0 on success, 1 on a failed refresh, 3 when another refresh holds the lock (one line
        on stderr naming the lock file and its holder's pid; nothing was started).
    """
    import logging

    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(refresh_lock(repo, lock_timeout, share=True))
        except RefreshLockedError as exc:
            print(f"geosgm refresh: {exc}", file=sys.stderr)
            return EXIT_LOCKED
        from pipeline.process_group import supervise

        if server is None:
            from pipeline.flows.server import local_prefect_server

            server = local_prefect_server
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        logging.getLogger("pipeline.refresh.flow").setLevel(logging.INFO)
        # The flow's `dvc repro` runs in its own session; the supervisor finds it (and any
        # stage it orphans) in the process tree.
        with supervise(), server(repo):
            from pipeline.refresh.flow import refresh

            try:
                result = refresh(repo, run_repro=run_repro, lock_timeout=lock_timeout)
            except RefreshError as exc:  # a split protocol that cannot take the rows, ...
                print(f"geosgm refresh: error: {str(exc).splitlines()[0]}", file=sys.stderr)
                return EXIT_FAILED
    print(result.summary())
    return EXIT_OK if result.ok else EXIT_FAILED
