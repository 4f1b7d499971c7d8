"""Running ``dvc repro`` as a child in its own session, and stopping it as a group.

The refresh flow (:mod:`pipeline.refresh.flow`) runs ``dvc repro`` through
:func:`run_dvc_repro`. DVC starts the stage commands, which may start workers; all of them
stay in the session that :func:`run_dvc_repro` opens for ``dvc``. On any exception while it
waits (Prefect turns SIGTERM into one while a flow runs; a KeyboardInterrupt) the whole
session is asked to stop (:func:`stop_process_group`: SIGINT, so the stages checkpoint and
exit, then SIGKILL after a grace period) and waited for before the exception goes on to the
caller, which then rolls back: a plain ``subprocess.run`` would SIGKILL ``dvc`` alone and
leave its stage writing outputs. This module holds no flow or task and imports nothing of
:mod:`pipeline.refresh` (a failed ``dvc repro`` is its own :class:`DvcReproError`); it reads
Prefect's settings only, to pass the API URL on to the stages.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from pipeline.process_group import tie_to_parent

__all__ = ["DvcReproError", "run_dvc_repro", "stop_process_group"]

_STAGE_RAN = re.compile(r"^Running stage '([^']+)'")


class DvcReproError(RuntimeError):
    """``dvc repro`` exited non-zero; the message holds the end of its output.

    The refresh transaction (:mod:`pipeline.refresh.journal`) rolls back on it and raises a
    :class:`~pipeline.refresh.errors.RefreshError` naming it as the cause.
    """


def _subprocess_env() -> dict[str, str]:
    """Environment for ``dvc repro``.

    The interpreter's ``bin`` folder goes first on ``PATH`` so that stage commands calling
    ``python`` get this virtual environment; stage flows report to the same Prefect API as
    the refresh flow when one is configured.
    """
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(
        [bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p)]
    )
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    if api and not env.get("PREFECT_API_URL"):
        env["PREFECT_API_URL"] = str(api)
    return env


def stop_process_group(proc: subprocess.Popen[str], grace: float = 20.0) -> None:
    """SIGINT to ``proc``'s session (its stages checkpoint and exit), SIGKILL after ``grace``.

    ``proc`` must lead its own session (``start_new_session=True``), so its pid is the
    process group id of everything it started. Returns once no live member is left (zombies
    do not count), or about 5 s after the SIGKILL.

    Args:
        proc: The session leader (``dvc``).
        grace: Seconds the group gets to exit after SIGINT.
    """

    def group_alive() -> bool:  # zombies do not count: whoever adopted them reaps them later
        for p in psutil.process_iter(["status"]):
            try:
                if os.getpgid(p.pid) == proc.pid and p.info["status"] != psutil.STATUS_ZOMBIE:
                    return True
            except (ProcessLookupError, psutil.Error):
                continue
        return False

    for sig, wait in ((signal.SIGINT, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()  # reap dvc itself, so only live members keep the group
            if not group_alive():
                return
            time.sleep(0.1)


def run_dvc_repro(repo_dir: Path) -> list[str]:
    """Run ``dvc repro`` in the project and return the stages it ran.

    Args:
        repo_dir: Project root.

    Returns:
        Names of the stages DVC ran (``Running stage '<name>'`` lines), in order.

    Raises:
        DvcReproError: If ``dvc repro`` fails; the message holds the end of its output.
    """
    cmd = [sys.executable, "-m", "dvc", "repro"]
    # Its own session, and on any exception (Prefect turns SIGTERM into one while the flow
    # runs) the whole tree is asked to stop and waited for before the caller rolls back:
    # subprocess.run would SIGKILL dvc alone and leave its stage writing outputs.
    # Under the guard (tie_to_parent): a kill -9 of the refresh, or of its process group, must
    # not leave dvc and its stages writing outputs as orphans; they get SIGTERM and stop.
    proc = subprocess.Popen(
        tie_to_parent(cmd),
        cwd=repo_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_subprocess_env(),
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate()
    except BaseException:
        stop_process_group(proc)
        raise
    if proc.returncode != 0:
        tail = "\n".join((stdout + stderr).splitlines()[-30:])
        raise DvcReproError(f"`dvc repro` failed in {repo_dir} (exit {proc.returncode}):\n{tail}")
    return [m.group(1) for line in stdout.splitlines() if (m := _STAGE_RAN.match(line))]
