"""Cooperative stop on Ctrl-C / SIGTERM: a flag that long loops poll, and the handlers that set it.

A stage installs :func:`install_stop_handlers` in its main thread. The first SIGINT or SIGTERM
sets the flag (and is forwarded to this process's child processes, e.g. the workers of a
process pool, which install the same handlers when their first task starts); the trainer
checks :func:`stop_requested` after every step, writes a checkpoint and raises
:class:`StopRequested`; the PF-ODE and the sampler check it on every function evaluation.
The stage then exits 130 (see :func:`pipeline.flows.stage.stage_main`). A second signal
more than 2 s after the first raises ``KeyboardInterrupt`` at once, for a loop that never
polls.

Why a flag and not ``KeyboardInterrupt``: Python raises it in the main thread only, while the
seeds train on worker threads or processes; an exception there leaves them running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

__all__ = [
    "StopRequested",
    "check_stop",
    "clear_stop",
    "install_stop_handlers",
    "request_stop",
    "stop_handlers",
    "stop_handlers_installed",
    "stop_requested",
    "stop_signal",
]

_STOP = threading.Event()
_SIGNAL: list[int] = []
_FIRST_AT: list[float] = []
_REPEAT_WINDOW_S = 2.0
_INSTALLED: list[int] = []  # pid that installed the handlers (a forked child must reinstall)


class StopRequested(Exception):
    """Work stopped early on request (SIGINT/SIGTERM); its last state is on disk."""


def stop_requested() -> bool:
    """Whether a stop was requested in this process."""
    return _STOP.is_set()


def stop_signal() -> int | None:
    """The signal number that requested the stop, or None."""
    return _SIGNAL[0] if _SIGNAL else None


def request_stop(signum: int = signal.SIGINT) -> None:
    """Set the stop flag (what the handlers do; tests call it directly)."""
    if not _SIGNAL:
        _SIGNAL.append(int(signum))
    _STOP.set()


def clear_stop() -> None:
    """Clear the flag (tests, and a process pool worker reused after a stop)."""
    _SIGNAL.clear()
    _FIRST_AT.clear()
    _STOP.clear()


def check_stop(what: str = "work") -> None:
    """Raise :class:`StopRequested` when a stop was requested.

    Args:
        what: Named in the message (``"PF-ODE"``).
    """
    if _STOP.is_set():
        name = signal.Signals(stop_signal() or signal.SIGINT).name
        raise StopRequested(f"{what} stopped on {name}")


def _forward_to_children(signum: int) -> None:
    """Send ``signum`` to this process's live child processes (process-pool workers)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency
        return
    try:
        children = psutil.Process(os.getpid()).children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        try:
            child.send_signal(signum)
        except psutil.Error:
            continue


def _handle(signum: int, frame: FrameType | None) -> None:
    del frame
    now = time.monotonic()
    if _STOP.is_set():
        # A Ctrl-C reaches a worker twice (from the terminal and forwarded by its parent):
        # only a signal well after the first one means "stop now".
        if _FIRST_AT and now - _FIRST_AT[0] > _REPEAT_WINDOW_S:
            raise KeyboardInterrupt
        return
    _FIRST_AT[:] = [now]
    request_stop(signum)
    _forward_to_children(signum)


def stop_handlers_installed() -> bool:
    """Whether :func:`install_stop_handlers` ran in this process (a stage, not a library user)."""
    return bool(_INSTALLED and _INSTALLED[0] == os.getpid())


def install_stop_handlers(force: bool = False) -> bool:
    """Make SIGINT and SIGTERM set the stop flag in this process.

    Only the main thread of a process may install signal handlers; elsewhere (a seed on a
    worker thread) this does nothing, since the main thread's handlers serve the process.

    Args:
        force: Install again even if installed: Prefect's flow engine puts its own SIGTERM
            handler in place for the duration of a flow run (it aborts the run at once), so
            a flow body that must stop cooperatively reinstalls ours.

    Returns:
        True when the handlers are (now) installed in this process.
    """
    if threading.current_thread() is not threading.main_thread():
        return bool(_INSTALLED and _INSTALLED[0] == os.getpid())
    if _INSTALLED and _INSTALLED[0] == os.getpid() and not force:
        return True
    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)
    _INSTALLED[:] = [os.getpid()]
    return True


@contextlib.contextmanager
def stop_handlers() -> Iterator[None]:
    """:func:`install_stop_handlers` for the duration of a block, then the previous handlers.

    A stage command's body runs in it; in-process callers (tests, notebooks) get their own
    Ctrl-C back afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    was_installed = stop_handlers_installed()
    install_stop_handlers(force=True)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not was_installed:
            _INSTALLED.clear()
