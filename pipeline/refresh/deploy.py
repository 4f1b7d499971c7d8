"""The scheduled ``refresh`` deployment: build it, or serve it against a local server.

Scheduling needs a real Prefect server (the ephemeral mode cannot run schedules)::

    prefect server start --host 127.0.0.1          # terminal 1 (UI on http://127.0.0.1:4200)
    geosgm serve --cron "0 3 * * *"                # terminal 2: runs refresh on the schedule

The cron schedule defaults to the one of the ``refresh`` deployment in the project's
``prefect.yaml``, so ``geosgm serve`` and ``prefect deploy --name refresh`` (with a worker
of the ``geosgm-local`` process work pool) run on the same schedule.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pipeline.config.yaml_file import ParamsFileError, read_yaml_mapping

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_CRON",
    "DEPLOYMENT_NAME",
    "ServeError",
    "build_refresh_deployment",
    "check_server",
    "deployment_cron",
    "serve",
]

DEPLOYMENT_NAME = "refresh"
DEFAULT_CRON = "0 3 * * *"
DEFAULT_API_URL = "http://127.0.0.1:4200/api"


class ServeError(RuntimeError):
    """The deployment cannot be served (no server, or a bad ``prefect.yaml``)."""


def deployment_cron(repo_dir: Path, name: str = DEPLOYMENT_NAME) -> str:
    """The cron schedule of deployment ``name`` in the project's ``prefect.yaml``.

    Args:
        repo_dir: Project root.
        name: Deployment name.

    Returns:
        Its first cron schedule; :data:`DEFAULT_CRON` when the file is absent.

    Raises:
        ServeError: If ``prefect.yaml`` exists but has no such deployment with a cron
            schedule.
    """
    path = Path(repo_dir) / "prefect.yaml"
    if not path.is_file():
        return DEFAULT_CRON
    try:
        config = read_yaml_mapping(path)
    except ParamsFileError as exc:
        raise ServeError(str(exc)) from exc
    for deployment in config.get("deployments") or []:
        if isinstance(deployment, Mapping) and deployment.get("name") == name:
            for schedule in deployment.get("schedules") or []:
                if isinstance(schedule, Mapping) and schedule.get("cron"):
                    return str(schedule["cron"])
    raise ServeError(f"{path}: no deployment {name!r} with a cron schedule")


def build_refresh_deployment(
    repo_dir: Path, cron: str | None = None, timezone: str = "UTC"
) -> RunnerDeployment:
    """Build the ``refresh`` deployment object (no server needed).

    Args:
        repo_dir: Project root; passed (absolute) as the flow's ``repo_dir`` parameter.
        cron: Cron schedule, e.g. ``"0 3 * * *"`` (03:00 every day); defaults to the one in
            ``prefect.yaml``.
        timezone: IANA time zone of the schedule.

    Returns:
        A ``RunnerDeployment`` of ``pipeline.refresh.flow.refresh_flow`` (module entrypoint,
        so it runs from any working directory) with one cron schedule.

    Raises:
        ValueError: If the cron string is invalid.
    """
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from pipeline.refresh.flow import refresh_flow

    root = Path(repo_dir).resolve()
    cron = cron or deployment_cron(root)
    deployment = refresh_flow.to_deployment(
        name=DEPLOYMENT_NAME,
        schedules=[Cron(cron, timezone=timezone)],
        parameters={"repo_dir": str(root), "run_repro": True, "lock_timeout": 0.0},
        description="Merge new catalogue files, rerun the changed DVC stages, record the version.",
        tags=["geosgm", "refresh"],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    # ``to_deployment`` returns a coroutine only when called from async code.
    return cast("RunnerDeployment", deployment)


def check_server(api_url: str = DEFAULT_API_URL, timeout: float = 5.0) -> None:
    """Fail clearly when no Prefect server answers at ``api_url``.

    Args:
        api_url: The server's API URL, e.g. ``http://127.0.0.1:4200/api``.
        timeout: Seconds to wait for the health check.

    Raises:
        ServeError: If ``GET <api_url>/health`` does not succeed.
    """
    import httpx

    try:
        response = httpx.get(api_url.rstrip("/") + "/health", timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise ServeError(
            f"no Prefect server at {api_url} ({exc}). Start one with "
            "`prefect server start --host 127.0.0.1` (scheduling needs a real server)."
        ) from exc


def serve(
    repo_dir: Path, cron: str | None = None, api_url: str = DEFAULT_API_URL, **kwargs: Any
) -> None:
    """Serve the ``refresh`` deployment on its cron schedule until interrupted.

    Args:
        repo_dir: Project root.
        cron: Cron schedule; defaults to the one in ``prefect.yaml``.
        api_url: API URL of a running local Prefect server.
        **kwargs: Passed to ``prefect.serve`` (e.g. ``limit``).

    Raises:
        ServeError: If no server answers at ``api_url``.
        ValueError: If the cron string is invalid.
    """
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    check_server(api_url)
    deployment = build_refresh_deployment(repo_dir, cron)
    # Flow runs start in subprocesses (and dvc stages in theirs): they read the environment.
    os.environ["PREFECT_API_URL"] = api_url
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        prefect_serve(deployment, **kwargs)
