"""A Dask cluster of separate processes on this machine: ``dask scheduler`` + ``dask worker``s.

What a lab's cluster looks like, on one machine: the scheduler and every worker are their own
processes (each in its own session, so a Ctrl-C in the terminal reaches them only through
:func:`local_process_cluster`'s clean-up), started with the ``dask`` command of this
environment. Used by the tests and benchmarks of the Dask runner; point the stages at it with
``GEOSGM_DASK_ADDRESS=<address>``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessCluster", "local_process_cluster"]


@dataclass
class ProcessCluster:
    """A running scheduler and its workers.

    Attributes:
        address: The scheduler's address (``tcp://127.0.0.1:PORT``).
        scheduler: The scheduler process.
        workers: The worker processes (no nanny: a killed worker stays dead).
    """

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]


def _stop(procs: list[subprocess.Popen[bytes]], grace: float) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _scheduler_address(info: Path) -> str | None:
    """The address in a complete scheduler file, or ``None`` while it is missing or partial.

    ``dask scheduler`` creates the file and then writes the JSON into it (not atomically), so
    a file that exists may still be empty or cut off: only a whole JSON object with a string
    ``address`` counts.
    """
    try:
        data = json.loads(info.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    address = data.get("address") if isinstance(data, dict) else None
    return address if isinstance(address, str) and address else None


def _wait_for_scheduler_file(
    info: Path,
    alive: Callable[[], bool],
    deadline: float,
    log: Path,
    poll: float = 0.05,
) -> str:
    """Poll until ``info`` holds the scheduler's address (see :func:`_scheduler_address`).

    Args:
        info: The scheduler file.
        alive: Whether the scheduler process is still running (checked between reads).
        deadline: :func:`time.monotonic` time to give up at.
        log: The scheduler's log, named in the error.
        poll: Seconds between reads.

    Raises:
        TimeoutError: The scheduler exited, or the deadline passed, before the file was
            complete.
    """
    while True:
        address = _scheduler_address(info)
        if address is not None:
            return address
        if not alive() or time.monotonic() > deadline:
            raise TimeoutError(f"the Dask scheduler did not start (see {log})")
        time.sleep(poll)


@contextmanager
def local_process_cluster(
    n_workers: int,
    workdir: str | Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    grace: float = 10.0,
    cwd: str | Path | None = None,
) -> Iterator[ProcessCluster]:
    """Start a scheduler and ``n_workers`` single-threaded workers on 127.0.0.1.

    Args:
        n_workers: Number of worker processes (>= 1).
        workdir: Folder for the scheduler file, the workers' local directories and the logs
            (``scheduler.log``, ``worker<i>.log``).
        env: Environment of the processes (default: this one). Workers that run Prefect
            tasks need ``PREFECT_API_URL`` to reach the flow's API.
        timeout: Seconds to wait for the scheduler and every worker.
        grace: Seconds between SIGTERM and SIGKILL when stopping.
        cwd: Working directory of the workers (default: this process's), e.g. to check
            that the stages pass paths a worker started elsewhere can use.

    Yields:
        The :class:`ProcessCluster`; every process is stopped on exit, in every outcome.

    Raises:
        ValueError: ``n_workers < 1``.
        TimeoutError: The cluster did not come up within ``timeout``.
    """
    if n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    info = workdir / "scheduler.json"
    info.unlink(missing_ok=True)
    environ = dict(os.environ if env is None else env)
    procs: list[subprocess.Popen[bytes]] = []
    with ExitStack() as logs:
        try:
            log = logs.enter_context((workdir / "scheduler.log").open("wb"))
            procs.append(
                subprocess.Popen(
                    [dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(info)],
                    env=environ, stderr=log, start_new_session=True,
                )
            )  # fmt: skip
            address = _wait_for_scheduler_file(
                info,
                alive=lambda: procs[0].poll() is None,
                deadline=time.monotonic() + timeout,
                log=workdir / "scheduler.log",
            )
            for i in range(n_workers):
                log = logs.enter_context((workdir / f"worker{i}.log").open("wb"))
                procs.append(
                    subprocess.Popen(
                        [dask, "worker", address, "--nthreads", "1", "--no-nanny",
                         "--no-dashboard", "--name", f"w{i}",
                         "--local-directory", str(workdir / f"worker{i}")],
                        env=environ, stderr=log, start_new_session=True, cwd=cwd,
                    )
                )  # fmt: skip
            with Client(address, timeout=timeout) as client:
                client.wait_for_workers(n_workers, timeout=timeout)
            yield ProcessCluster(address, procs[0], procs[1:])
        finally:
            _stop(procs, grace)
