"""local_process_cluster reads the scheduler file only once dask has finished writing it.

``dask scheduler`` creates ``--scheduler-file`` and then writes its JSON into it, so the file
can exist while still empty or cut off. These tests replace the processes and the client with
fakes: the fake scheduler leaves a partial file, and a thread completes it only after the
reader has seen the partial one and polled the process (an Event, not a timed guess).
"""

from __future__ import annotations

import json
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from pipeline.flows import dask_processes
from pipeline.flows.dask_processes import local_process_cluster
from tests.errors import raises_naming

pytestmark = pytest.mark.process  # a Dask scheduler process

ADDRESS = "tcp://127.0.0.1:40123"
COMPLETE = json.dumps({"type": "Scheduler", "id": "Scheduler-1", "address": ADDRESS})
PARTIAL = COMPLETE[: COMPLETE.index("address") + 4]  # what a reader sees mid-write


class _Fakes:
    """Stand-ins for subprocess.Popen (scheduler, workers) and distributed.Client."""

    def __init__(self, scheduler_alive: bool) -> None:
        self.scheduler_alive = scheduler_alive
        self.polled = threading.Event()  # the reader saw the partial file and polled
        self.polls = 0
        self.procs: list[Any] = []
        self.client_addresses: list[str] = []
        self.stopped: list[Any] = []

    def popen(self, argv: list[str], **kwargs: Any) -> Any:
        fakes = self

        class Proc:
            pid = -1  # never signalled: _stop is replaced too

            def __init__(self) -> None:
                self.args = argv

            def poll(self) -> int | None:
                if argv[1] == "scheduler":
                    fakes.polls += 1
                    fakes.polled.set()
                    return None if fakes.scheduler_alive else 1
                return None

        if argv[1] == "scheduler":
            info = Path(argv[argv.index("--scheduler-file") + 1])
            info.write_text(PARTIAL, encoding="utf-8")
        proc = Proc()
        self.procs.append(proc)
        return proc

    def client_module(self) -> types.ModuleType:
        fakes = self

        class Client:
            def __init__(self, address: str, timeout: float) -> None:
                fakes.client_addresses.append(address)

            def __enter__(self) -> Client:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def wait_for_workers(self, n: int, timeout: float) -> None:
                return None

        module = types.ModuleType("distributed")
        module.Client = Client  # type: ignore[attr-defined]
        return module


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> _Fakes:
    made = _Fakes(scheduler_alive=True)
    monkeypatch.setattr(dask_processes.subprocess, "Popen", made.popen)
    monkeypatch.setitem(sys.modules, "distributed", made.client_module())
    monkeypatch.setattr(dask_processes, "_stop", lambda procs, grace: made.stopped.extend(procs))
    return made


def test_a_partially_written_scheduler_file_is_waited_for(fakes: _Fakes, tmp_path: Path) -> None:
    info = tmp_path / "cluster" / "scheduler.json"

    def finish_writing() -> None:
        assert fakes.polled.wait(timeout=30), "the reader never polled the scheduler"
        info.write_text(COMPLETE, encoding="utf-8")

    writer = threading.Thread(target=finish_writing, daemon=True)
    writer.start()
    try:
        with local_process_cluster(1, tmp_path / "cluster", env={}, timeout=30) as cluster:
            assert cluster.address == ADDRESS
            assert ADDRESS in list(cluster.workers[0].args)  # type: ignore[arg-type]
    finally:
        fakes.polled.set()  # release the writer if the reader failed before polling
        writer.join(timeout=30)
    assert fakes.polls >= 1  # the partial file was seen and waited on
    assert fakes.client_addresses == [ADDRESS]
    assert fakes.stopped == fakes.procs  # scheduler and worker stopped on exit


def test_a_scheduler_that_dies_mid_write_is_a_timeout_error(fakes: _Fakes, tmp_path: Path) -> None:
    fakes.scheduler_alive = False
    with raises_naming(TimeoutError, str(tmp_path / "cluster" / "scheduler.log")):
        with local_process_cluster(1, tmp_path / "cluster", env={}, timeout=30):
            pass  # pragma: no cover - never reached
    assert len(fakes.procs) == 1 and fakes.stopped == fakes.procs  # no worker was started


@pytest.mark.parametrize(
    "text", ["", PARTIAL, "[]", "{}", '{"address": 5}', '{"address": ""}', "\xff"]
)
def test_incomplete_or_unusable_files_have_no_address(tmp_path: Path, text: str) -> None:
    _scheduler_address = dask_processes._scheduler_address
    info = tmp_path / "scheduler.json"
    info.write_text(text, encoding="latin-1")
    assert _scheduler_address(info) is None
    assert _scheduler_address(tmp_path / "missing.json") is None
    info.write_text(COMPLETE, encoding="utf-8")
    assert _scheduler_address(info) == ADDRESS
