"""Run a DVC stage's work as one Prefect flow run.

Every ``stages/<name>.py`` command wraps its work with :func:`run_stage`, so each stage
appears in Prefect as a flow run named after the stage (``ingest-volcano``,
``maps-fire-rsgm``); the train and evaluate stages are flows of their own through
:func:`pipeline.flows.fanout.run_seeds`.

Bad input is not a crash: an ``expected`` error (a malformed catalogue, a missing input)
ends the flow run ``Failed`` with its message, without the traceback Prefect logs for
unexpected errors, and is raised again; :func:`stage_main` prints it and returns exit code 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from pipeline.flows.settings import apply_prefect_defaults

__all__ = ["run_stage", "stage_main"]

R = TypeVar("R")


def run_stage(
    fn: Callable[[], R],
    flow_name: str,
    expected: tuple[type[Exception], ...] = (),
) -> R:
    """Run ``fn()`` as the body of a Prefect flow run named ``flow_name``.

    Fills in the offline/quiet Prefect environment first (see
    :func:`pipeline.flows.settings.apply_prefect_defaults`), so a stage needs no set-up of
    its own. Without ``PREFECT_API_URL`` the flow runs against a temporary local server;
    ``geosgm run`` starts one server for the whole ``dvc repro`` instead.

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
    apply_prefect_defaults()
    from prefect.states import Failed

    from pipeline.flows.fanout import run_in_flow

    def guarded() -> Any:
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
) -> int:
    """A stage command's body: :func:`run_stage`, then an exit code.

    Args:
        fn: The stage's work.
        flow_name: Flow name, e.g. ``"maps-fire-rsgm"``.
        expected: Exception types that mean bad input or params.
        prog: Name printed before the message, e.g. ``"maps"``.

    Returns:
        0 on success; 1 after printing ``"<prog>: error: <message>"`` to stderr for an
        ``expected`` error.

    Raises:
        Exception: Any other error, unchanged.
    """
    try:
        run_stage(fn, flow_name, expected)
    except expected as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0
