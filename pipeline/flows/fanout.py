"""Fan-out of independent per-seed work on a chosen runner, reported to Prefect when a server
is there.

A train or evaluate stage calls :func:`run_seeds` with a function of the seed. The runner
comes from params (threads, processes or Dask; see :mod:`pipeline.flows.runners`). Results
come back in seed order and do not depend on the runner, provided ``fn`` seeds all its
randomness from the seed.

Two modes (:func:`use_prefect`): with a Prefect API (``PREFECT_API_URL``: ``geosgm run``,
``geosgm refresh`` or the user's server) every seed is one Prefect task run in a flow run
named after the stage; without one (a plain ``dvc repro``) the same runner runs the seeds
directly, with the same retries, errors and order, and no per-process Prefect server (about
20 s of start-up a stage on this machine).

Retries are for transient failures only: :class:`TransientError` and I/O-type ``OSError``
(lost connections, timeouts, a busy or temporarily failing device). A bad input
(``ValueError``, a missing file) or a diverged training run is never retried.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pipeline.flows.runners import RunnerSpec, make_task_runner, parse_runner_spec
from pipeline.stopping import install_stop_handlers, stop_handlers_installed

if TYPE_CHECKING:
    from prefect import Task
    from prefect.client.schemas.objects import TaskRun
    from prefect.states import State

__all__ = [
    "PREFECT_MODE_ENV",
    "TransientError",
    "is_transient",
    "retry_on_transient",
    "run_in_flow",
    "run_seeds",
    "use_prefect",
]

PREFECT_MODE_ENV = "GEOSGM_PREFECT"
"""``1``: report to Prefect even without a server (Prefect starts a temporary one per
process); ``0``: never; unset: report when ``PREFECT_API_URL`` names a server."""


def use_prefect(environ: Mapping[str, str] | None = None) -> bool:
    """Whether stages run their work as Prefect flow and task runs.

    Yes when an API server is configured (``PREFECT_API_URL``) or ``GEOSGM_PREFECT=1``; no
    with ``GEOSGM_PREFECT=0`` or neither: a stage process of a plain ``dvc repro`` would
    otherwise start Prefect's temporary server for itself (about 20 s each), and a terminal
    Ctrl-C would reach that server before the stage had stopped.
    """
    env = os.environ if environ is None else environ
    flag = env.get(PREFECT_MODE_ENV, "").strip().lower()
    if flag in ("0", "false", "no", "off"):
        return False
    if env.get("PREFECT_API_URL") or flag in ("1", "true", "yes", "on"):
        return True
    if environ is None and "prefect" in sys.modules:  # a server set in Prefect's own settings
        from prefect.settings import PREFECT_API_URL

        return bool(PREFECT_API_URL.value())
    return False


R = TypeVar("R")

_PERMANENT_OSERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)
_TRANSIENT_ERRNOS = frozenset(
    {errno.EIO, errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE}
)


class TransientError(RuntimeError):
    """A failure worth retrying: the same call may succeed a moment later.

    Raise it (or ``raise TransientError(...) from exc``) from per-seed work for lost
    connections, an unavailable scheduler or a temporarily full or busy device.
    """


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is transient and so worth retrying.

    Transient: :class:`TransientError`, ``ConnectionError``, ``TimeoutError``, and any other
    ``OSError`` whose errno is an I/O-type one (EIO, EAGAIN, EBUSY, EINTR, ETIMEDOUT, ESTALE)
    or unset. Never transient: ``ValueError`` (bad input), missing files or permissions, a
    diverged training run (``TrainingDivergedError``), or anything else.

    Args:
        exc: The exception a task raised.

    Returns:
        True when a retry may succeed.
    """
    if isinstance(exc, TransientError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OSError) and not isinstance(exc, _PERMANENT_OSERRORS):
        return exc.errno is None or exc.errno in _TRANSIENT_ERRNOS
    return False


def retry_on_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task run only for a transient error.

    Args:
        task: The task (unused).
        task_run: The failed task run (unused).
        state: Its ``Failed`` state, holding the exception.

    Returns:
        :func:`is_transient` of the exception; False if the state holds none.
    """
    del task, task_run
    exc: Any = state.data
    if not isinstance(exc, BaseException):
        exc = state.result(raise_on_failure=False)
    return isinstance(exc, BaseException) and is_transient(exc)


class _QuietStops(logging.Filter):
    """Drops Prefect's "Finished in state Failed('StopRequested: ...')" records.

    Prefect logs every run that does not complete at ERROR; on a stop request that is one
    line per seed and one per flow beside the stage's own one line (issue 33's "one line").
    """

    STOPS = ("StopRequested", "KeyboardInterrupt")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("Finished in state" in message and any(s in message for s in self.STOPS))


def _quiet_prefect_stop_lines() -> None:
    """Attach :class:`_QuietStops` to Prefect's run loggers, once per process."""
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _QuietStops) for f in logger.filters):
            logger.addFilter(_QuietStops())


def run_seeds(
    fn: Callable[[int], R],
    seeds: Sequence[int],
    runner_spec: Mapping[str, Any] | RunnerSpec | None = None,
    flow_name: str = "seeds",
    retries: int = 2,
    retry_delay_seconds: float = 2.0,
    task_name: str | None = None,
    expected: tuple[type[Exception], ...] = (),
) -> list[R]:
    """Run ``fn(seed)`` for every seed on the chosen runner (as Prefect tasks in a flow when
    :func:`use_prefect`).

    With Prefect, called outside a flow it starts a flow run named ``flow_name``; called inside
    one it runs as a subflow. With a process or Dask runner, ``fn`` and its results must be
    picklable (a module-level function, or ``functools.partial`` of one).

    Args:
        fn: Work for one seed; must take its randomness from the seed only, so results do
            not depend on the runner.
        seeds: Distinct integer seeds, e.g. ``[0, 1, 2, 3, 4]``.
        runner_spec: ``runner`` params mapping or parsed spec (see
            :func:`pipeline.flows.runners.make_task_runner`); ``None`` = 2 threads.
        flow_name: Name of the flow run (e.g. ``"train-volcano-rsgm"``).
        retries: Retries per seed, used only for transient failures (:func:`is_transient`).
        retry_delay_seconds: Wait before each retry.
        task_name: Task name; defaults to ``f"{flow_name}-seed"``. Task runs are named
            ``seed-<k>``.
        expected: Exception types that mean bad input or a stop request: the seed's task run
            fails with ``"<Type>: <message>"`` and no traceback is logged (the exception is
            still raised here).

    Returns:
        ``[fn(s) for s in seeds]``, in the order of ``seeds``.

    Raises:
        ValueError: If ``seeds`` is empty, holds non-integers or duplicates, or
            ``retries < 0``.
        Exception: The first failed seed's own exception (in seed order), after every seed
            has finished; a note names the failed seeds.
    """
    seed_list = list(seeds)
    if not seed_list:
        raise ValueError("run_seeds: no seeds given")
    bad = [s for s in seed_list if isinstance(s, bool) or not isinstance(s, int)]
    if bad:
        raise ValueError(f"run_seeds: seeds must be integers, got {bad!r}")
    if len(set(seed_list)) != len(seed_list):
        raise ValueError(f"run_seeds: duplicate seeds in {seed_list}")
    if retries < 0:
        raise ValueError(f"run_seeds: retries must be >= 0, got {retries}")
    if not use_prefect():
        spec = runner_spec if isinstance(runner_spec, RunnerSpec) else None
        spec = spec or parse_runner_spec(cast("Mapping[str, Any] | None", runner_spec))
        call = functools.partial(_call_with_retries, fn, retries=retries, delay=retry_delay_seconds)
        return _run_seeds_directly(call, seed_list, spec, flow_name, expected)

    from prefect import Flow, Task
    from prefect.cache_policies import NO_CACHE
    from prefect.futures import wait
    from prefect.states import Failed

    _quiet_prefect_stop_lines()

    def seed_run(seed: int) -> Any:
        try:
            return fn(seed)
        except expected as exc:
            # A returned Failed state fails the task run quietly; .result() re-raises ``data``.
            return Failed(message=f"{type(exc).__name__}: {exc}", data=exc)

    seed_task: Task[[int], Any] = Task(
        fn=seed_run,
        name=task_name or f"{flow_name}-seed",
        task_run_name="seed-{seed}",
        retries=retries,
        retry_delay_seconds=retry_delay_seconds,
        retry_condition_fn=retry_on_transient,
        cache_policy=NO_CACHE,
    )

    def fan_out(seeds: list[int]) -> Any:
        if stop_handlers_installed():
            install_stop_handlers(force=True)  # over Prefect's SIGTERM handler for this run
        futures = [seed_task.submit(s) for s in seeds]
        wait(futures)
        failed = [s for s, f in zip(seeds, futures, strict=True) if f.state.is_failed()]
        results: list[R] = []
        for s, future in zip(seeds, futures, strict=True):
            try:
                results.append(future.result())
            except expected as exc:
                # Fails the flow run quietly (no traceback logged); the call re-raises ``exc``.
                return Failed(message=f"seed {s}: {type(exc).__name__}: {exc}", data=exc)
            except Exception as exc:
                exc.add_note(f"{flow_name}: seed {s} failed; failed seeds: {failed}")
                raise
        return results

    fan_out_flow: Flow[[list[int]], Any] = Flow(
        fan_out,
        name=flow_name,
        task_runner=make_task_runner(runner_spec),
        validate_parameters=False,
    )
    out: list[R] = cast("list[R]", fan_out_flow(seed_list))
    return out


def _call_with_retries(fn: Callable[[int], R], seed: int, *, retries: int, delay: float) -> R:
    """``fn(seed)``, tried again up to ``retries`` times after a transient failure only."""
    attempt = 0
    while True:
        try:
            return fn(seed)
        except Exception as exc:
            if attempt >= retries or not is_transient(exc):
                raise
            attempt += 1
            time.sleep(delay)


def _run_seeds_directly(
    call: Callable[[int], R],
    seeds: list[int],
    spec: RunnerSpec,
    flow_name: str,
    expected: tuple[type[Exception], ...],
) -> list[R]:
    """The seeds on the runner itself (no Prefect): a thread or process pool, or Dask."""
    import concurrent.futures as cf

    if spec.kind == "dask":
        return _run_seeds_on_dask(call, seeds, spec, flow_name, expected)
    workers = max(1, min(spec.max_workers, len(seeds)))
    pool: cf.Executor
    if spec.kind == "process":
        import multiprocessing

        # spawn, as Prefect's process runner: no fork of a process holding torch's threads.
        pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    else:
        pool = cf.ThreadPoolExecutor(workers, thread_name_prefix=flow_name)
    with pool:
        futures = [pool.submit(call, s) for s in seeds]
        cf.wait(futures)
        errors = [f.exception() for f in futures]
    values = [f.result() if e is None else None for f, e in zip(futures, errors, strict=True)]
    return _collect(seeds, values, errors, flow_name, expected)


def _run_seeds_on_dask(
    call: Callable[[int], R],
    seeds: list[int],
    spec: RunnerSpec,
    flow_name: str,
    expected: tuple[type[Exception], ...],
) -> list[R]:
    """The seeds on a Dask cluster: the scheduler at ``spec.address``, or a LocalCluster."""
    from distributed import Client, LocalCluster, wait

    from pipeline.flows.runners import check_scheduler_reachable

    cluster = None
    if spec.address:
        check_scheduler_reachable(spec.address)
        client = Client(spec.address)
    else:
        kwargs: dict[str, Any] = {
            "n_workers": spec.max_workers,
            "threads_per_worker": 1,
            "processes": spec.processes,
            "dashboard_address": None,
        }
        if spec.processes:  # TCP between processes: keep it on the loopback interface
            kwargs["host"] = "127.0.0.1"
        cluster = LocalCluster(**kwargs)
        client = Client(cluster)
    try:
        futures = client.map(call, seeds, pure=False, key=[f"{flow_name}-seed-{s}" for s in seeds])
        wait(futures)
        errors = [f.exception() if f.status == "error" else None for f in futures]
        values = [f.result() if e is None else None for f, e in zip(futures, errors, strict=True)]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return _collect(seeds, values, errors, flow_name, expected)


def _collect(
    seeds: list[int],
    values: list[Any],
    errors: list[BaseException | None],
    flow_name: str,
    expected: tuple[type[Exception], ...],
) -> list[Any]:
    """The values in seed order, or the first failed seed's own exception."""
    failed = [s for s, e in zip(seeds, errors, strict=True) if e is not None]
    for s, exc in zip(seeds, errors, strict=True):
        if exc is None:
            continue
        if not isinstance(exc, expected):
            exc.add_note(f"{flow_name}: seed {s} failed; failed seeds: {failed}")
        raise exc
    return values


def run_in_flow(fn: Callable[[], R], flow_name: str) -> R:
    """Run ``fn()`` as the body of a Prefect flow run named ``flow_name``.

    A stage's ``main`` wraps its work with it, so every stage is one flow run (logged in
    Prefect, with the stage's :func:`run_seeds` fan-out as a subflow).

    Args:
        fn: The stage's work.
        flow_name: Flow name, e.g. ``"ingest-volcano"``.

    Returns:
        What ``fn`` returns.

    Raises:
        Exception: Whatever ``fn`` raises (the flow run is marked failed).
    """
    from prefect import Flow

    def body() -> R:
        return fn()

    stage_flow: Flow[[], R] = Flow(body, name=flow_name, validate_parameters=False)
    return stage_flow()
