"""A local Prefect API server for the length of a pipeline run.

Without ``PREFECT_API_URL`` every stage process would start Prefect's ephemeral server on
its own (about 20–30 s each on 2 cores). ``geosgm run`` starts one server on 127.0.0.1 for the
whole ``dvc repro`` instead and passes its URL to the stages through the environment.

The server cannot outlive the command that started it: it is a service of
:mod:`pipeline.process_group` (its own session, so a terminal Ctrl-C does not stop it while the
stages still report to it; stopped as a whole group, SIGTERM then SIGKILL, on every way out of
:func:`local_prefect_server`, after the supervised stage processes; and on Linux sent SIGTERM
by the kernel if the command dies without cleaning up, e.g. ``kill -9``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["free_port", "local_prefect_server"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def local_prefect_server(
    project_dir: Path,
    startup_timeout: float = 90.0,
    port: int | None = None,
    home: Path | None = None,
) -> Iterator[str]:
    """Start ``prefect server start`` on 127.0.0.1 unless ``PREFECT_API_URL`` is already set.

    Sets ``PREFECT_API_URL`` in ``os.environ`` while the block runs (child processes inherit
    it) and stops the server afterwards, on every path (normal exit, exception, SIGINT or
    SIGTERM turned into an exception by :func:`pipeline.process_group.supervise`): first the
    processes of the active supervisor, then the server's whole process group.

    Args:
        project_dir: Project root (``PREFECT_HOME`` defaults to ``<project_dir>/.prefect``).
        startup_timeout: Seconds to wait for the server's health check.
        port: Port to use (default: a free one).
        home: The server's own ``PREFECT_HOME`` (its database and log), for a server that
            must not share a database with another one running at the same time (tests on
            parallel workers); default: this process's ``PREFECT_HOME``.

    Yields:
        The API URL, e.g. ``http://127.0.0.1:4242/api``.

    Raises:
        RuntimeError: If the server does not answer within ``startup_timeout``.
    """
    from pipeline.flows.settings import apply_prefect_defaults
    from pipeline.process_group import start_service, stop_service

    apply_prefect_defaults(project_dir)
    existing = os.environ.get("PREFECT_API_URL")
    if existing:
        yield existing
        return
    port = free_port() if port is None else port
    api_url = f"http://127.0.0.1:{port}/api"
    log_path = (Path(home) if home else Path(project_dir) / ".prefect") / "server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(Path(home).resolve())} if home else None
    prefect_exe = Path(sys.executable).with_name("prefect")
    cmd = [str(prefect_exe), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("ab") as log:
        proc = start_service(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=project_dir, env=env)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _healthy(api_url):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"prefect server exited with code {proc.returncode}; see {log_path}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"prefect server did not answer on {api_url} within {startup_timeout:.0f} s; "
                    f"see {log_path}"
                )
            time.sleep(0.5)
        os.environ["PREFECT_API_URL"] = api_url
        yield api_url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        stop_service(proc)
