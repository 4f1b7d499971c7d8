"""Fan-out of independent per-seed work as Prefect tasks on a chosen task runner.

A train or evaluate stage calls :func:`run_seeds` with a function of the seed; every seed
becomes one Prefect task run inside a flow whose task runner comes from params (threads,
processes or Dask; see :mod:`pipeline.flows.runners`). Results come back in seed order and do
not depend on the runner, provided ``fn`` seeds all its randomness from the seed.

Retries are for transient failures only: :class:`TransientError` and I/O-type ``OSError``
(lost connections, timeouts, a busy or temporarily failing device). A bad input
(``ValueError``, a missing file) or a diverged training run is never retried.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pipeline.flows.runners import RunnerSpec, make_task_runner
from pipeline.stopping import install_stop_handlers, stop_handlers_installed

if TYPE_CHECKING:
    from prefect import Task
    from prefect.client.schemas.objects import TaskRun
    from prefect.states import State

__all__ = ["TransientError", "is_transient", "retry_on_transient", "run_in_flow", "run_seeds"]

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
    """Run ``fn(seed)`` for every seed as Prefect tasks in a flow, on the chosen runner.

    Called outside a flow it starts a flow run named ``flow_name``; called inside one it runs
    as a subflow. With a process or Dask runner, ``fn`` and its results must be picklable
    (a module-level function, or ``functools.partial`` of one).

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

    from prefect import Flow, Task
    from prefect.cache_policies import NO_CACHE
    from prefect.futures import wait
    from prefect.states import Failed

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
