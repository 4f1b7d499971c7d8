"""Seed fan-out without a Prefect server (a plain ``dvc repro``): same results, order,
retries and errors as the Prefect path, and no Prefect import at all."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import cloudpickle
import pytest

from pipeline.flows.fanout import PREFECT_MODE_ENV, TransientError, run_seeds, use_prefect
from tests.errors import raises_naming

cloudpickle.register_pickle_by_value(sys.modules[__name__])

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PREFECT_MODE_ENV, "0")


def square_plus_seed(seed: int) -> int:
    return seed * seed + seed


class _Flaky:
    """Fails ``n_failures`` times per seed with ``exc``, then returns 100 + seed."""

    def __init__(self, exc: Exception, n_failures: int) -> None:
        self.exc, self.n_failures, self.calls = exc, n_failures, {}

    def __call__(self, seed: int) -> int:
        self.calls[seed] = self.calls.get(seed, 0) + 1
        if self.calls[seed] <= self.n_failures:
            raise self.exc
        return 100 + seed


def test_use_prefect_follows_the_server_and_the_switch() -> None:
    assert use_prefect({}) is False
    assert use_prefect({"PREFECT_API_URL": "http://127.0.0.1:4200/api"}) is True
    assert use_prefect({PREFECT_MODE_ENV: "1"}) is True
    assert use_prefect({PREFECT_MODE_ENV: "0", "PREFECT_API_URL": "http://x/api"}) is False


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "thread", "max_workers": 2},
        {"kind": "dask", "max_workers": 2, "processes": False},
        pytest.param({"kind": "process", "max_workers": 2}, marks=pytest.mark.slow),
    ],
    ids=["thread", "dask-threads", "process"],
)
def test_results_in_seed_order_on_every_runner(spec: dict) -> None:
    seeds = [4, 0, 3, 1]
    assert run_seeds(square_plus_seed, seeds, spec) == [square_plus_seed(s) for s in seeds]


def test_transient_errors_are_retried_and_others_are_not() -> None:
    flaky = _Flaky(TransientError("scheduler went away"), n_failures=2)
    assert run_seeds(flaky, [0, 1], {"kind": "thread"}, retries=2, retry_delay_seconds=0) == [
        100,
        101,
    ]
    assert flaky.calls == {0: 3, 1: 3}
    bad = _Flaky(ValueError("bad input row"), n_failures=1)
    with raises_naming(ValueError, "bad input row") as info:
        run_seeds(bad, [0, 1], {"kind": "thread"}, retries=3, retry_delay_seconds=0)
    assert bad.calls == {0: 1, 1: 1}
    assert any("failed seeds: [0, 1]" in note for note in info.value.__notes__)
    still = _Flaky(TransientError("still down"), n_failures=5)
    with raises_naming(TransientError, "still down"):
        run_seeds(still, [3], {"kind": "thread"}, retries=1, retry_delay_seconds=0)
    assert still.calls == {3: 2}


def test_an_expected_error_is_raised_without_a_note() -> None:
    bad = _Flaky(KeyError("train.seeds"), n_failures=1)
    with pytest.raises(KeyError) as info:
        run_seeds(bad, [2], {"kind": "thread"}, expected=(KeyError,))
    assert not getattr(info.value, "__notes__", [])


def test_a_stage_process_without_a_server_never_imports_prefect(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        from pipeline.flows.fanout import run_seeds
        from pipeline.flows.stage import stage_main
        out = []
        work = lambda: out.append(run_seeds(abs, [0, -1], {"kind": "thread"}))
        rc = stage_main(work, "t", (), "t")
        print(rc, out, "prefect" in sys.modules)
        """
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "0 [[0, 1]] False"
