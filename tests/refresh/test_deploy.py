"""The refresh deployment builds with its cron schedule, with no server running."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.refresh.deploy import (
    DEFAULT_CRON,
    ServeError,
    build_refresh_deployment,
    check_server,
    deployment_cron,
)
from tests.errors import raises_naming

REPO = Path(__file__).resolve().parents[2]
DEAD_API = "http://127.0.0.1:9/api"  # the discard port: nothing answers there


def test_prefect_yaml_declares_the_refresh_deployment() -> None:
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (deployment,) = [d for d in config["deployments"] if d["name"] == "refresh"]
    module_path, func = deployment["entrypoint"].split(":")
    assert (REPO / module_path).is_file()
    import pipeline.refresh.flow as refresh_module

    assert getattr(refresh_module, func).name == "refresh"
    assert deployment_cron(REPO) == deployment["schedules"][0]["cron"] == DEFAULT_CRON


def test_deployment_builds_with_its_cron_schedule_without_a_server(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: DEAD_API}):
        deployment = build_refresh_deployment(tmp_path, cron="*/15 * * * *", timezone="UTC")
        default = build_refresh_deployment(REPO)
    (schedule,) = deployment.schedules
    assert schedule.schedule.cron == "*/15 * * * *"
    assert schedule.schedule.timezone == "UTC"
    assert schedule.active
    assert deployment.name == "refresh"
    assert deployment.entrypoint == "pipeline.refresh.flow.refresh_flow"
    assert deployment.parameters == {
        "repo_dir": str(tmp_path.resolve()),
        "run_repro": True,
        "lock_timeout": 0.0,
    }
    assert default.schedules[0].schedule.cron == DEFAULT_CRON


def test_invalid_cron_is_rejected(tmp_path: Path) -> None:
    with raises_naming(ValueError, "every tuesday"):
        build_refresh_deployment(tmp_path, cron="every tuesday")


def test_prefect_yaml_without_refresh_schedule_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "prefect.yaml").write_text("deployments:\n  - name: other\n")
    with raises_naming(ServeError, "prefect.yaml", "'refresh'"):
        deployment_cron(tmp_path)
    assert deployment_cron(tmp_path / "absent") == DEFAULT_CRON


def test_serve_needs_a_running_server() -> None:
    with raises_naming(ServeError, DEAD_API, "prefect server start --host 127.0.0.1"):
        check_server(DEAD_API, timeout=2.0)
