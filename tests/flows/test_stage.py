"""A stage's work as one Prefect flow run: result, quiet failure on bad input, loud on a bug."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from pipeline.data.errors import CatalogueError
from pipeline.flows.stage import run_stage, stage_main
from tests.errors import raises_naming

pytestmark = pytest.mark.usefixtures("prefect_harness")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def flow_run_log() -> Iterator[list[logging.LogRecord]]:
    """Records of Prefect's flow-run logger (it does not propagate to pytest's caplog)."""
    handler = _Records()
    logger = logging.getLogger("prefect.flow_runs")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def _last_run_state(flow_name: str) -> tuple[str, str | None]:
    """Type and message of the latest run of the flow named ``flow_name``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
    assert runs, f"no flow run of {flow_name!r} recorded"
    state = runs[0].state
    assert state is not None
    return state.type.value, state.message


def test_run_stage_returns_the_result_in_a_named_completed_flow_run() -> None:
    from prefect.context import FlowRunContext

    def work() -> str:
        ctx = FlowRunContext.get()
        assert ctx is not None
        return ctx.flow.name

    assert run_stage(work, "ingest-tiny-ok") == "ingest-tiny-ok"
    assert _last_run_state("ingest-tiny-ok")[0] == "COMPLETED"


def test_expected_error_fails_the_run_with_its_message_and_no_traceback(
    flow_run_log: list[logging.LogRecord],
) -> None:
    def work() -> None:
        raise CatalogueError("tiny.csv: line 63: latitude 91.0 outside [-90, 90]")

    with raises_naming(CatalogueError, "tiny.csv", "line 63", "91.0"):
        run_stage(work, "ingest-tiny-bad", expected=(CatalogueError,))
    kind, message = _last_run_state("ingest-tiny-bad")
    assert kind == "FAILED"
    assert message == "CatalogueError: tiny.csv: line 63: latitude 91.0 outside [-90, 90]"
    assert not [r for r in flow_run_log if r.exc_info], "a traceback was logged for bad input"


def test_unexpected_error_keeps_its_type_and_logs_the_traceback(
    flow_run_log: list[logging.LogRecord],
) -> None:
    def work() -> None:
        raise ZeroDivisionError("a bug, not bad input")

    with raises_naming(ZeroDivisionError, "a bug"):
        run_stage(work, "maps-tiny-bug", expected=(CatalogueError,))
    assert _last_run_state("maps-tiny-bug")[0] == "FAILED"
    assert any(r.exc_info for r in flow_run_log), "a bug's traceback should be logged"


def test_stage_main_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    def bad() -> None:
        raise CatalogueError("tiny.csv: line 5: latitude 95.0 outside [-90, 90]")

    assert stage_main(lambda: None, "split-tiny-ok", (CatalogueError,), "split") == 0
    assert stage_main(bad, "split-tiny-bad", (CatalogueError,), "split") == 1
    err = capsys.readouterr().err
    assert "split: error: tiny.csv: line 5: latitude 95.0 outside [-90, 90]" in err
    with pytest.raises(ZeroDivisionError):
        stage_main(lambda: 1 / 0, "split-tiny-bug", (CatalogueError,), "split")
