"""Run a DVC stage's work as one Prefect flow run.

Every ``stages/<name>.py`` command wraps its work with :func:`run_stage`, so each stage
appears in Prefect as a flow run named after the stage (``ingest-volcano``,
``maps-fire-rsgm``); the train and evaluate stages are flows of their own through
:func:`pipeline.flows.fanout.run_seeds`.

Bad input is not a crash: an ``expected`` error (a malformed catalogue, a missing input)
ends the flow run ``Failed`` with its message, without the traceback Prefect logs for
unexpected errors, and is raised again; :func:`stage_main` prints it and returns exit code 1.

Ctrl-C and SIGTERM stop a stage cooperatively (:mod:`pipeline.stopping`): the trainer
checkpoints, the ODE solvers return, the seeds' workers end, and :func:`stage_main` prints one
line and returns 130.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from pipeline.flows.settings import apply_prefect_defaults
from pipeline.stopping import (
    StopRequested,
    install_stop_handlers,
    stop_handlers,
    stop_handlers_installed,
    stop_requested,
    stop_signal,
)

__all__ = ["EXIT_INTERRUPTED", "run_stage", "stage_main"]

EXIT_INTERRUPTED = 130
"""Exit code of a stage stopped by SIGINT (128 + SIGINT, as a shell reports it); SIGTERM gives
143 (128 + SIGTERM)."""

R = TypeVar("R")


def run_stage(
    fn: Callable[[], R],
    flow_name: str,
    expected: tuple[type[Exception], ...] = (),
) -> R:
    """Run ``fn()`` as the body of a Prefect flow run named ``flow_name`` when a Prefect API is
    there (:func:`pipeline.flows.fanout.use_prefect`), else directly.

    Fills in the offline/quiet Prefect environment first (see
    :func:`pipeline.flows.settings.apply_prefect_defaults`), so a stage needs no set-up of
    its own. ``geosgm run`` and ``geosgm refresh`` start one server for the whole
    ``dvc repro``; a plain ``dvc repro`` runs the stages without Prefect (``GEOSGM_PREFECT=1``
    asks for Prefect's temporary per-process server instead).

    Args:
        fn: The stage's work.
        flow_name: Flow name, e.g. ``"ingest-volcano"``.
        expected: Exception types that mean bad input or params: the flow run fails with
            ``"<Type>: <message>"`` and no traceback is logged.

    Returns:
        What ``fn`` returns.

    Raises:
        Exception: Whatever ``fn`` raises, with its own type (the flow run is marked failed).
    """
    from pipeline.flows.fanout import use_prefect

    if not use_prefect():  # a plain `dvc repro`: no per-process Prefect server
        return fn()
    apply_prefect_defaults()
    from prefect.states import Failed

    from pipeline.flows.fanout import run_in_flow

    def guarded() -> Any:
        if stop_handlers_installed():
            install_stop_handlers(force=True)  # over Prefect's SIGTERM handler for this run
        try:
            return fn()
        except expected as exc:
            # A returned Failed state fails the run quietly; the flow call re-raises ``data``.
            return Failed(message=f"{type(exc).__name__}: {exc}", data=exc)

    result: R = run_in_flow(guarded, flow_name)
    return result


def stage_main(
    fn: Callable[[], object],
    flow_name: str,
    expected: tuple[type[Exception], ...],
    prog: str,
    in_flow: bool = True,
) -> int:
    """A stage command's body: :func:`run_stage`, then an exit code.

    Args:
        fn: The stage's work.
        flow_name: Flow name, e.g. ``"maps-fire-rsgm"``.
        expected: Exception types that mean bad input or params.
        prog: Name printed before the message, e.g. ``"maps"``.
        in_flow: Run ``fn`` as the body of a flow run named ``flow_name``; False for a stage
            whose ``fn`` starts its own flow (train and evaluate: :func:`run_seeds`), so that
            each stage is still one flow run and bad params fail before any flow starts.

    Returns:
        0 on success; 1 after printing ``"<prog>: error: <message>"`` to stderr for an
        ``expected`` error; 130 after one line when SIGINT or SIGTERM stopped the stage
        (whatever error the stop surfaced as: a stopped seed, a broken worker pool).

    Raises:
        Exception: Any other error, unchanged.
    """
    from pipeline.process_group import stop_with_parent

    with stop_handlers():
        stop_with_parent()  # dvc killed: stop as on SIGTERM, do not train on orphaned
        return _run_stage_main(fn, flow_name, expected, prog, in_flow)


def _run_stage_main(
    fn: Callable[[], object],
    flow_name: str,
    expected: tuple[type[Exception], ...],
    prog: str,
    in_flow: bool,
) -> int:
    try:
        if in_flow:
            run_stage(fn, flow_name, expected)
        else:
            apply_prefect_defaults()
            fn()
    except (StopRequested, KeyboardInterrupt) as exc:
        return _interrupted(prog, exc)
    except expected as exc:
        if stop_requested():
            return _interrupted(prog, exc)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if stop_requested():
            return _interrupted(prog, exc)
        raise
    if stop_requested():
        return _interrupted(prog, None)
    return 0


def _interrupted(prog: str, exc: BaseException | None) -> int:
    import signal

    sig = signal.Signals(stop_signal() or signal.SIGINT)
    detail = f" ({exc})" if isinstance(exc, StopRequested) else ""
    print(
        f"{prog}: interrupted by {sig.name}{detail}; checkpoints are kept, run again to resume",
        file=sys.stderr,
    )
    return 128 + int(sig)
