"""Seed fan-out: same results on every runner; retries only for transient failures."""

from __future__ import annotations

import errno
import sys
import threading
import time

import cloudpickle
import pytest
import torch

from pipeline.flows.fanout import (
    TransientError,
    is_transient,
    retry_on_transient,
    run_in_flow,
    run_seeds,
)
from tests.errors import raises_naming

# Process and Dask workers unpickle the test functions by value (this module is not importable
# there).
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SEEDS = [0, 1, 2, 3, 4]


def seeded_torch_work(seed: int) -> tuple[float, float]:
    """A small deterministic float64 computation whose only randomness is the seed."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 8, generator=g, dtype=torch.float64)
    w = torch.randn(8, 3, generator=g, dtype=torch.float64)
    return float(torch.tanh(x @ w).sum()), float(torch.rand((), generator=g, dtype=torch.float64))


EXPECTED = [seeded_torch_work(s) for s in SEEDS]


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "thread", "max_workers": 2},
        {"kind": "dask", "max_workers": 2, "processes": False},
        # Worker processes import torch and prefect: 8-20 s on 2 busy cores.
        pytest.param({"kind": "process", "max_workers": 2}, marks=pytest.mark.slow),
        pytest.param({"kind": "dask", "max_workers": 2}, marks=pytest.mark.slow),
    ],
    ids=["thread", "dask-localcluster-threads", "process", "dask-localcluster-processes"],
)
def test_run_seeds_same_results_on_every_runner(prefect_harness: None, spec: dict) -> None:
    results = run_seeds(seeded_torch_work, SEEDS, spec, flow_name=f"test-{spec['kind']}")
    assert results == EXPECTED
    # Seeds differ, so a runner that mixed up the order would be caught.
    assert len({r[0] for r in results}) == len(SEEDS)


def test_run_seeds_keeps_seed_order(prefect_harness: None) -> None:
    def slow_for_small_seeds(seed: int) -> int:
        time.sleep(0.05 * (3 - seed))
        return seed * 10

    assert run_seeds(slow_for_small_seeds, [2, 0, 1], {"kind": "thread", "max_workers": 3}) == [
        20,
        0,
        10,
    ]


class _Flaky:
    """Fails with ``exc`` on the first ``n_failures`` calls for each seed, then succeeds."""

    def __init__(self, exc: Exception, n_failures: int) -> None:
        self.exc, self.n_failures = exc, n_failures
        self.calls: dict[int, int] = {}
        self.lock = threading.Lock()

    def __call__(self, seed: int) -> int:
        with self.lock:
            self.calls[seed] = self.calls.get(seed, 0) + 1
            n = self.calls[seed]
        if n <= self.n_failures:
            raise self.exc
        return seed + 100


def test_transient_error_is_retried(prefect_harness: None) -> None:
    flaky = _Flaky(TransientError("scheduler went away"), n_failures=2)
    out = run_seeds(flaky, [0, 1], {"kind": "thread"}, retries=2, retry_delay_seconds=0)
    assert out == [100, 101]
    assert flaky.calls == {0: 3, 1: 3}


def test_value_error_is_not_retried(prefect_harness: None) -> None:
    flaky = _Flaky(ValueError("bad input row"), n_failures=1)
    with raises_naming(ValueError, "bad input row") as info:
        run_seeds(flaky, [0, 1], {"kind": "thread"}, retries=3, retry_delay_seconds=0)
    assert flaky.calls == {0: 1, 1: 1}
    assert any("failed seeds: [0, 1]" in note for note in info.value.__notes__)


def test_retries_exhausted_raise_the_transient_error(prefect_harness: None) -> None:
    flaky = _Flaky(TransientError("still down"), n_failures=5)
    with raises_naming(TransientError, "still down"):
        run_seeds(flaky, [3], {"kind": "thread"}, retries=1, retry_delay_seconds=0)
    assert flaky.calls == {3: 2}


class TrainingDivergedError(RuntimeError):
    """Stand-in for pipeline.training.TrainingDivergedError (a NaN loss)."""


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TransientError("x"), True),
        (ConnectionResetError("peer"), True),
        (TimeoutError("slow"), True),
        (OSError(errno.EIO, "I/O error"), True),
        (OSError(errno.EBUSY, "busy"), True),
        (FileNotFoundError(errno.ENOENT, "missing"), False),
        (PermissionError(errno.EACCES, "denied"), False),
        (OSError(errno.ENOSPC, "disk full"), False),
        (ValueError("bad"), False),
        (TrainingDivergedError("NaN loss at step 10"), False),
        (RuntimeError("bug"), False),
    ],
)
def test_is_transient(exc: Exception, expected: bool) -> None:
    assert is_transient(exc) is expected


def test_retry_condition_reads_the_failed_state() -> None:
    from prefect.states import Completed, Failed

    assert retry_on_transient(None, None, Failed(data=TransientError("x"))) is True  # type: ignore[arg-type]
    assert retry_on_transient(None, None, Failed(data=ValueError("x"))) is False  # type: ignore[arg-type]
    assert retry_on_transient(None, None, Completed(data=1)) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("seeds", [[], [0, 0], [1.5]], ids=["empty", "duplicate", "non-integer"])
def test_run_seeds_rejects_bad_seeds(seeds: list) -> None:
    with raises_naming(ValueError, "run_seeds"):
        run_seeds(seeded_torch_work, seeds)


def test_run_in_flow_returns_and_raises(prefect_harness: None) -> None:
    from prefect.context import FlowRunContext

    def body() -> str:
        ctx = FlowRunContext.get()
        assert ctx is not None
        return ctx.flow.name

    assert run_in_flow(body, "ingest-volcano") == "ingest-volcano"

    def boom() -> None:
        raise ValueError("row 3 is bad")

    with raises_naming(ValueError, "row 3 is bad"):
        run_in_flow(boom, "ingest-broken")


def _double(seed: int) -> int:
    return 2 * seed


def test_a_stop_request_leaves_no_prefect_error_line(prefect_harness: None) -> None:
    """On a stop, the stage prints its one line; Prefect's "Finished in state Failed" ERROR
    record for each seed (and the flow) is dropped, and other failures still log."""
    import logging

    from pipeline.stopping import StopRequested

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR:
                self.messages.append(record.getMessage())

    def stopped(seed: int) -> int:
        raise StopRequested(f"train stopped on SIGINT (seed {seed})")

    # A first run sets up Prefect's logging (its dictConfig replaces the loggers' handlers).
    assert run_seeds(_double, [0], {"kind": "thread"}, flow_name="t-warm-up") == [0]
    loggers = [logging.getLogger(n) for n in ("prefect.task_runs", "prefect.flow_runs")]
    keep = Keep()
    for logger in loggers:
        logger.addHandler(keep)
    try:
        with raises_naming(StopRequested, "SIGINT"):
            run_seeds(
                stopped, [0, 1], {"kind": "thread"}, flow_name="t-stop", expected=(StopRequested,)
            )
        assert not [m for m in keep.messages if "StopRequested" in m], keep.messages
        with raises_naming(ValueError, "bad input row"):
            run_seeds(_Flaky(ValueError("bad input row"), 1), [0], {"kind": "thread"}, retries=0)
        assert any("Finished in state Failed" in m for m in keep.messages), keep.messages
    finally:
        for logger in loggers:
            logger.removeHandler(keep)
