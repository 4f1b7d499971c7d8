"""Task-runner factory and the offline Prefect environment defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.flows.runners import DASK_ADDRESS_ENV, RunnerSpec, make_task_runner, parse_runner_spec
from pipeline.flows.settings import PREFECT_ENV_DEFAULTS, apply_prefect_defaults
from tests.errors import raises_naming


def test_defaults_are_two_threads() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner

    assert parse_runner_spec(None, environ={}) == RunnerSpec("thread", 2, None, True)
    runner = make_task_runner({"kind": "thread", "max_workers": 3})
    assert isinstance(runner, ThreadPoolTaskRunner) and runner._max_workers == 3


def test_process_and_dask_runners() -> None:
    from prefect.task_runners import ProcessPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    assert isinstance(make_task_runner(RunnerSpec("process", 2)), ProcessPoolTaskRunner)
    local = make_task_runner(RunnerSpec("dask", 3, None, False))
    assert isinstance(local, DaskTaskRunner)
    assert local.cluster_kwargs == {
        "n_workers": 3,
        "threads_per_worker": 1,
        "processes": False,
        "dashboard_address": None,
    }
    assert make_task_runner(RunnerSpec("dask", 2)).cluster_kwargs["host"] == "127.0.0.1"
    remote = make_task_runner(RunnerSpec("dask", 2, "tcp://10.0.0.5:8786"))
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://10.0.0.5:8786"


def test_environment_variable_overrides_params_to_dask() -> None:
    env = {DASK_ADDRESS_ENV: " tcp://scheduler:8786 "}
    spec = parse_runner_spec({"kind": "thread", "max_workers": 4}, environ=env)
    assert spec == RunnerSpec("dask", 4, "tcp://scheduler:8786", True)
    assert parse_runner_spec({"kind": "process"}, environ={DASK_ADDRESS_ENV: ""}).kind == "process"


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ({"kind": "mpi"}, ("runner.kind", "'mpi'")),
        ({"max_workers": 0}, ("runner.max_workers", "0")),
        ({"max_workers": True}, ("runner.max_workers", "True")),
        ({"kind": "thread", "address": "tcp://x:1"}, ("runner.address", "'dask'", "'thread'")),
        ({"kind": "dask", "address": ""}, ("runner.address", "''")),
        ({"workers": 2}, ("runner", "['workers']")),
        ({"processes": "yes"}, ("runner.processes", "'yes'")),
    ],
)
def test_invalid_specs_are_rejected(spec: dict, names: tuple[str, ...]) -> None:
    with raises_naming(ValueError, *names):
        parse_runner_spec(spec, environ={})


def test_prefect_defaults_fill_only_unset_variables(tmp_path: Path) -> None:
    env = {"PREFECT_LOGGING_LEVEL": "DEBUG"}
    applied = apply_prefect_defaults(tmp_path, environ=env)
    assert env["PREFECT_HOME"] == str(tmp_path.resolve() / ".prefect")
    assert env["PREFECT_LOGGING_LEVEL"] == "DEBUG"  # the user's choice wins
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and env["DO_NOT_TRACK"] == "1"
    assert env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "60"
    assert set(applied) == {"PREFECT_HOME", *PREFECT_ENV_DEFAULTS} - {"PREFECT_LOGGING_LEVEL"}
    assert apply_prefect_defaults(tmp_path, environ=env) == {}
