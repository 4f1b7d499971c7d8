"""Stop everything a ``geosgm`` command started when it is interrupted (SIGINT, SIGTERM).

**Why one module** (over 400 lines on purpose, issue 18): supervision (:func:`supervise`,
:class:`Supervisor`) and services (:func:`start_service`, :func:`stop_service`) are one
mechanism, the order in which the CLI's children stop, and each half depends on the other: a
supervisor leaves the services out of the forwarded signal, stops the services started in
its block after its own processes and SIGKILLs them on a second signal; :func:`stop_service`
first stops the active supervisor's processes (they still report to the service). Split in
two, the modules would import each other (or need a registry added only to cut the file).
:class:`Interrupted` and :func:`interrupt_exit_code` are what a supervisor raises and how the
CLI turns it into its exit code.

``geosgm run`` starts ``dvc repro`` (which starts the stage commands, which start worker
processes) and a Prefect server; ``geosgm refresh`` runs ``dvc repro`` from inside its flow
(:func:`pipeline.flows.dvc_repro.run_dvc_repro`, in its own session). Killing only the
direct child (what ``subprocess`` does on Ctrl-C) orphans the rest. Design:

* **Supervision by process tree, not by the CLI's own process group.** :func:`supervise` makes
  the CLI a *child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``): a process whose parent dies
  (``dvc`` killed by ``subprocess.run``) is re-parented to the CLI instead of to init, so the
  CLI's process tree holds every process the command started, in whatever process group or
  session. The CLI does **not** move itself into a new process group (``os.setpgid(0, 0)``):
  under ``make run`` or a shell script it shares the caller's foreground group, and leaving it
  would hide it from the terminal's Ctrl-C (make would then wait for an unstoppable child).
* **Forward once, wait, then kill.** The first SIGINT or SIGTERM is sent, once, to every
  process started inside the block (processes that existed before it are left alone); the
  handler then waits up to ``grace`` seconds (default 20 s; stages checkpoint and exit 130
  within a few seconds) for them to exit, SIGKILLs the survivors, and only then raises
  :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so ``with``/``finally``
  blocks run and the CLI exits ``128 + signal`` (130, 143). A second signal SIGKILLs at once.
* **Commands in their own session.** :meth:`Supervisor.run` starts a command (``dvc repro``)
  with ``start_new_session=True``: a terminal Ctrl-C reaches only the CLI, which forwards it,
  and the group is SIGKILLed as a whole at the end. Processes that stay in the CLI's group
  (refresh's ``dvc repro``) get a Ctrl-C twice, from the terminal and forwarded, within
  milliseconds; :mod:`pipeline.stopping` treats that as one request.
* **Services** (the Prefect server, :func:`start_service`) run in their own session, are never
  sent the forwarded signal (stages still report to them while they stop), and are stopped
  after the workers: :func:`stop_service` first waits for the supervised processes, then
  sends SIGTERM to the service's group, SIGKILL after a timeout, and :func:`supervise` stops
  any service still running when it exits, on every path. On Linux a service also gets
  SIGTERM from the kernel when the CLI dies without cleaning up (``PR_SET_PDEATHSIG``, e.g. a
  ``kill -9``).
* **Tied to the CLI** (issue 33): every command started in its own session (:meth:`Supervisor.run`,
  :func:`start_service`, refresh's ``dvc repro``) runs under :func:`tie_to_parent`'s guard,
  which turns the CLI's death (``kill -9`` of its pid or of its process group) into SIGTERM
  for the command's whole group: ``dvc repro`` and its stages (which stop on SIGTERM,
  :mod:`pipeline.stopping`), the server and its ``uvicorn``. Nothing is left at PPID 1.

Prefect's flow engine replaces the SIGTERM handler while a flow runs in the process (the
refresh flow): it raises its own ``TerminationSignal``, unwinds the flow (``subprocess.run``
kills ``dvc``), restores our handler and re-sends the signal to the process. The orphaned stages
are then the CLI's children (subreaper) and are stopped as above.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

import psutil

__all__ = [
    "DEFAULT_GRACE_S",
    "Interrupted",
    "Supervisor",
    "grace_from_env",
    "interrupt_exit_code",
    "start_service",
    "stop_service",
    "stop_with_parent",
    "supervise",
    "tie_to_parent",
]

#: Seconds the supervised processes get to exit after the forwarded signal.
DEFAULT_GRACE_S = 20.0
#: Environment variable that overrides :data:`DEFAULT_GRACE_S` (seconds, a float).
GRACE_ENV = "GEOSGM_STOP_GRACE_S"
#: Seconds a service (the Prefect server) gets to exit after SIGTERM.
SERVICE_STOP_TIMEOUT_S = 20.0

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_HANDLED = (signal.SIGINT, signal.SIGTERM)

#: Running services by pid (= their process group id: each leads its own session).
_SERVICES: dict[int, subprocess.Popen[Any]] = {}
#: The innermost active supervisor (services wait for its processes before they stop).
_ACTIVE: list[Supervisor] = []

# The guard: a tiny interpreter that leads the child's session and runs the command under it
# (no preexec_fn: it is not safe in a process with threads, and Prefect runs some). It asks
# the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG; gives up if the parent is
# already gone), and then sends SIGTERM to its whole process group: `dvc repro`'s stages and
# `prefect server start`'s uvicorn would otherwise outlive a kill -9 of the CLI, as orphans.
# While the parent lives, SIGTERM goes on to the command alone (the supervisor signals the
# others itself) and SIGINT is left to the group's members, which get it directly. The guard
# exits as the command did (the same code, or the same signal).
_GUARD = """\
import ctypes, os, signal, subprocess, sys
parent = int(sys.argv[1])
ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
if os.getppid() != parent:
    sys.exit(1)
state = {"child": None, "orphaned": False}
def on_term(signum, frame):
    if state["orphaned"]:
        return
    if os.getppid() != parent and os.getpgid(0) == os.getpid():
        state["orphaned"] = True
        os.killpg(0, signal.SIGTERM)
    elif state["child"] is not None:
        state["child"].send_signal(signum)
signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, lambda signum, frame: None)
state["child"] = child = subprocess.Popen(sys.argv[2:])
if os.getppid() != parent:
    on_term(signal.SIGTERM, None)
rc = child.wait()
if rc < 0:
    try:
        signal.signal(-rc, signal.SIG_DFL)
    except (OSError, ValueError):
        pass
    os.kill(os.getpid(), -rc)
    sys.exit(128 - rc)
sys.exit(rc)
""".replace("PR_SET_PDEATHSIG", str(_PR_SET_PDEATHSIG))


def tie_to_parent(cmd: Sequence[str]) -> list[str]:
    """``cmd`` run under a guard that stops its process group when this thread dies.

    On Linux the returned command starts a small Python guard (see ``_GUARD``) that asks the
    kernel for SIGTERM when its parent thread dies (``PR_SET_PDEATHSIG``), even by
    ``kill -9``, and then sends SIGTERM to its whole process group, so run it with
    ``start_new_session=True``: the command and everything it starts (``dvc repro``'s stages,
    the Prefect server's uvicorn) get SIGTERM and stop. Elsewhere ``cmd`` is returned as is.
    Start it from a thread that outlives the child (the death signal follows the thread).

    Args:
        cmd: The command (``cmd[0]`` a path or a name on ``PATH``).

    Returns:
        The command to pass to ``subprocess.Popen``; it exits with the command's exit code
        (or the signal that killed it).
    """
    argv = list(cmd)
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-I", "-c", _GUARD, str(os.getpid()), *argv]


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the command (a ``KeyboardInterrupt``, for SIGTERM too).

    Attributes:
        signum: The signal that arrived first.
        killed: How many processes had to be SIGKILLed (they outlived the grace period).
    """

    def __init__(self, signum: int, killed: int = 0) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.killed = killed

    @property
    def exit_code(self) -> int:
        """``128 + signum``: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


def interrupt_exit_code(exc: BaseException) -> int | None:
    """The exit code for an exception that means "interrupted", or None for any other.

    Args:
        exc: An exception that ended a command.

    Returns:
        ``128 + signum`` for :class:`Interrupted` and for Prefect's ``TerminationSignal``, 130
        for a plain ``KeyboardInterrupt``, None otherwise.
    """
    if isinstance(exc, Interrupted):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return 128 + int(signal.SIGINT)
    signum = getattr(exc, "signal", None)
    if type(exc).__name__ == "TerminationSignal" and isinstance(signum, int):
        return 128 + signum
    return None


def grace_from_env(default: float = DEFAULT_GRACE_S) -> float:
    """The grace period: ``$GEOSGM_STOP_GRACE_S`` when set to a number >= 0, else ``default``."""
    raw = os.environ.get(GRACE_ENV, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        return default
    return value if value >= 0 else default


def _prctl(option: int, arg: Any) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, arg, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def stop_with_parent(signum: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent dies (Linux).

    A stage calls it first: under a plain ``dvc repro``, ``kill <dvc pid>`` (or dvc dying any
    other way) would otherwise leave the stage training on, orphaned, with nothing to read
    its output. With the death signal the stage stops as on SIGTERM (checkpoint, exit 143).
    The signal follows the parent *thread* that started this process (``PR_SET_PDEATHSIG``):
    dvc's main thread, a shell, or a test's.

    Args:
        signum: The signal to receive.

    Returns:
        True if the kernel took the request (False elsewhere than on Linux). If the parent
        had already gone, the signal is sent at once.
    """
    parent = os.getppid()
    if not _prctl(_PR_SET_PDEATHSIG, int(signum)):
        return False
    if os.getppid() != parent:  # it died before the request: the kernel will not tell us
        os.kill(os.getpid(), signum)
    return True


def _set_subreaper(on: bool) -> bool | None:
    """Set this process's child-subreaper flag; returns the previous value (None: unsupported)."""
    previous = ctypes.c_int(0)
    if not _prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous)):
        return None
    if not _prctl(_PR_SET_CHILD_SUBREAPER, int(on)):
        return None
    return bool(previous.value)


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _killpg(pgid: int, signum: int) -> bool:
    """``os.killpg``; False when the group is gone or not ours."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class Supervisor:
    """The processes a command started, and how to stop them (see the module docstring).

    Made by :func:`supervise`; the targets are this process's descendants that did not exist
    when it was made, except services and their process groups.

    Args:
        grace: Seconds the processes get to exit after the forwarded signal.
        poll: Seconds between checks while waiting.
    """

    def __init__(self, grace: float = DEFAULT_GRACE_S, poll: float = 0.05) -> None:
        self.grace = float(grace)
        self.poll = float(poll)
        #: The first signal received, or None.
        self.signum: int | None = None
        #: How many processes were SIGKILLed after that signal's grace period.
        self.killed = 0
        self._me = psutil.Process()
        self._exempt: set[psutil.Process] = set(self._me.children(recursive=True))
        self._services_before = set(_SERVICES)
        self._groups: set[int] = set()
        #: Pids of the guards of :meth:`run` (:func:`tie_to_parent`): not counted as killed.
        self._guards: set[int] = set()
        self._seen: set[psutil.Process] = set()
        self._signalled: set[psutil.Process] = set()

    def run(
        self,
        cmd: Sequence[str],
        on_line: Callable[[str], None] | None = None,
        **popen_kwargs: Any,
    ) -> int:
        """Run ``cmd`` in a new session (its own process group) and wait for it.

        Args:
            cmd: The command.
            on_line: If given, the command's stdout is read line by line and each line (text,
                with its newline) is passed to it instead of being inherited.
            **popen_kwargs: Passed to ``subprocess.Popen`` (``cwd``, ``env``, ...).

        Returns:
            Its exit code (negative: killed by that signal).

        Raises:
            Interrupted: On SIGINT/SIGTERM, after its whole process tree has exited.
        """
        # Under the guard: `kill -9` of this process must not leave the command running.
        if on_line is not None:
            popen_kwargs["stdout"] = subprocess.PIPE
        proc = subprocess.Popen(tie_to_parent(cmd), start_new_session=True, **popen_kwargs)
        self._groups.add(proc.pid)
        if sys.platform.startswith("linux"):
            self._guards.add(proc.pid)
        try:
            if on_line is not None and proc.stdout is not None:
                for raw in proc.stdout:
                    on_line(raw.decode("utf-8", errors="replace"))
            return proc.wait()
        finally:
            if proc.poll() is None:  # left by an exception that was not a signal
                self.stop_children(signal.SIGTERM, self.grace)
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILLed just above
                pass

    def children(self) -> list[psutil.Process]:
        """The supervised processes that are alive now (zombies count as gone)."""
        service_groups = set(_SERVICES)
        found: set[psutil.Process] = set(self._seen)
        try:
            direct = self._me.children()
        except psutil.Error:
            direct = []
        for child in direct:
            if child.pid in service_groups or child in self._exempt:
                continue
            found.add(child)
            try:
                found.update(child.children(recursive=True))
            except psutil.Error:
                pass
        live = [p for p in found if _alive(p) and _pgid(p.pid) not in service_groups]
        self._seen = set(live)
        return live

    def stop_children(self, signum: int, timeout: float) -> int:
        """Send ``signum`` once to each supervised process, wait, then SIGKILL survivors.

        Processes that appear while waiting (a worker started late) get ``signum`` too.

        Args:
            signum: The signal to send first.
            timeout: Seconds to wait before SIGKILL.

        Returns:
            How many processes had to be SIGKILLed.
        """
        deadline = time.monotonic() + timeout
        while True:
            live = self.children()
            for proc in live:
                if proc not in self._signalled:
                    self._signalled.add(proc)
                    try:
                        proc.send_signal(signum)
                    except psutil.Error:
                        pass
            if not live:
                return 0
            if time.monotonic() >= deadline:
                return self.kill_children()
            time.sleep(self.poll)

    def kill_children(self, timeout: float = 5.0) -> int:
        """SIGKILL every supervised process and the groups :meth:`run` started.

        Args:
            timeout: Seconds to wait for them to be gone.

        Returns:
            How many processes were alive and got SIGKILL (the commands' guards, which only
            wait for their command, are not counted).
        """
        live = self.children()
        for proc in live:
            try:
                proc.kill()
            except psutil.Error:
                pass
        for pgid in self._groups:
            _killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while self.children() and time.monotonic() < deadline:
            time.sleep(self.poll)
        return sum(1 for p in live if p.pid not in self._guards)

    def _services(self) -> list[subprocess.Popen[Any]]:
        return [p for pid, p in _SERVICES.items() if pid not in self._services_before]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        if self.signum is not None:  # a second signal: stop now
            self.killed += self.kill_children()
            for service in self._services():
                _killpg(service.pid, signal.SIGKILL)
            return
        self.signum = signum
        killed = self.stop_children(signum, self.grace)  # a second signal may add to killed
        self.killed += killed
        raise Interrupted(signum, self.killed)


@contextmanager
def supervise(grace: float | None = None) -> Iterator[Supervisor]:
    """Stop every process started in the block on SIGINT/SIGTERM and when it is left.

    In the main thread: installs SIGINT/SIGTERM handlers (restored on exit) and makes this
    process a child subreaper (Linux; restored on exit). Elsewhere only the exit clean-up
    applies. On exit, on every path: processes started in the block that are still running get
    SIGTERM (SIGKILL after ``grace``), then services started in the block are stopped.

    Args:
        grace: Seconds the processes get to exit (default: :func:`grace_from_env`).

    Yields:
        The :class:`Supervisor`; :meth:`Supervisor.run` starts a command in its own session.

    Raises:
        Interrupted: On the first SIGINT/SIGTERM, once the processes are gone.
    """
    sup = Supervisor(grace_from_env() if grace is None else grace)
    in_main = threading.current_thread() is threading.main_thread()
    previous: dict[int, Any] = {}
    subreaper_before: bool | None = None
    if in_main:
        subreaper_before = _set_subreaper(True)
        for signum in _HANDLED:
            previous[signum] = signal.signal(signum, sup._handle)
    _ACTIVE.append(sup)
    try:
        yield sup
    finally:
        try:
            if sup.children():
                sup.stop_children(signal.SIGTERM, sup.grace)
        finally:
            pending: BaseException | None = None
            for service in sup._services():
                try:
                    stop_service(service)
                except BaseException as exc:  # stop the others, raise the first after
                    pending = pending or exc
            _ACTIVE.remove(sup)
            if in_main:
                for handled, handler in previous.items():
                    signal.signal(handled, signal.SIG_DFL if handler is None else handler)
                if subreaper_before is False:
                    _set_subreaper(False)
            if pending is not None:
                raise pending


def start_service(cmd: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """Start a long-running helper (the Prefect server) that cannot outlive this process.

    It leads its own session (a terminal Ctrl-C does not reach it; :func:`stop_service` stops
    its whole group), is never sent a supervisor's forwarded signal, and on Linux gets SIGTERM
    from the kernel if this thread dies first, and its whole group with it
    (:func:`tie_to_parent`: ``uvicorn`` under ``prefect server start`` too). Start it from the
    main thread: the death signal follows the thread that started it.

    Args:
        cmd: The command (``cmd[0]`` a path or a name on ``PATH``).
        **popen_kwargs: Passed to ``subprocess.Popen`` (``stdout``, ``cwd``, ...).

    Returns:
        The process (its pid is its process group id).
    """
    proc = subprocess.Popen(tie_to_parent(cmd), start_new_session=True, **popen_kwargs)
    _SERVICES[proc.pid] = proc
    return proc


def stop_service(proc: subprocess.Popen[Any], timeout: float = SERVICE_STOP_TIMEOUT_S) -> None:
    """Stop a service from :func:`start_service`: its whole process group, for certain.

    The active supervisor's processes are stopped first (they may still report to it); then
    SIGTERM goes to the service's group, and SIGKILL after ``timeout`` s, or at once when the
    wait is interrupted.

    Args:
        proc: The service.
        timeout: Seconds to wait after SIGTERM.
    """
    try:
        if _ACTIVE and _ACTIVE[-1].children():
            _ACTIVE[-1].stop_children(signal.SIGTERM, _ACTIVE[-1].grace)
        if proc.poll() is None:
            if not _killpg(proc.pid, signal.SIGTERM):
                proc.terminate()
            proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    finally:
        _SERVICES.pop(proc.pid, None)
        _killpg(proc.pid, signal.SIGKILL)  # the leader's children, or all of it after timeout
        if proc.poll() is None:
            proc.kill()
        proc.wait()
