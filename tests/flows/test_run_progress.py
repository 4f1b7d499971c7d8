"""geosgm run's whole-run progress: stage lines, ETAs from earlier timings, reminders."""

from __future__ import annotations

import io
import json
from pathlib import Path

from pipeline.flows.run_progress import (
    DEFAULT_STAGE_S,
    RunProgress,
    expected_seconds,
    parse_dag_dot,
    parse_skip_line,
    parse_stage_line,
    planned_stages,
    read_timings,
    write_timings,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_parse_stage_line() -> None:
    assert parse_stage_line("Running stage 'train@volcano-rsgm':\n") == "train@volcano-rsgm"
    assert parse_stage_line("Stage 'ingest@fire' didn't change, skipping") is None


def test_parse_skip_line() -> None:
    assert parse_skip_line("Stage 'ingest@fire' didn't change, skipping\n") == "ingest@fire"
    line = "Stage 'maps@a-kde' is cached - skipping run, checking out outputs"
    assert parse_skip_line(line) == "maps@a-kde"
    assert parse_skip_line("Running stage 'train@volcano-rsgm':") is None


def test_a_planned_stage_dvc_skips_leaves_the_count_and_the_eta() -> None:
    """The plan is an upper bound: evaluate is planned after a refit, but a refit that writes
    the same bytes leaves it unchanged, and dvc skips it."""
    clock, out = Clock(), io.StringIO()
    timings = {"fit": 10.0, "evaluate": 600.0, "report": 60.0}
    progress = RunProgress(["fit", "evaluate", "report"], timings, out=out, clock=clock)
    progress.line("Running stage 'fit':\n")
    clock.now = 12.0
    progress.line("Stage 'evaluate' didn't change, skipping\n")
    clock.now = 13.0
    progress.line("Running stage 'report':\n")
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("geosgm run:")]
    assert lines[0] == "geosgm run: [1/3] fit (stage ~0.2 min; run 0.0 min in, ~11.2 min left)"
    assert lines[1] == "geosgm run: [2/2] report (stage ~1.0 min; run 0.2 min in, ~1.0 min left)"
    clock.now = 20.0
    assert progress.finish() == {"fit": 12.0, "report": 7.0}  # fit ended at the skip line


def test_expected_seconds_own_then_kind_median_then_default() -> None:
    timings = {"train@a-rsgm": 100.0, "train@b-rsgm": 300.0, "train@c-kde": 20.0}
    assert expected_seconds("train@a-rsgm", timings) == 100.0
    assert expected_seconds("train@d-rsgm", timings) == 100.0  # median of the 3 train stages
    assert expected_seconds("report", timings) == DEFAULT_STAGE_S


def test_progress_lines_and_eta() -> None:
    clock, out = Clock(), io.StringIO()
    timings = {"a": 60.0, "b": 120.0, "c": 30.0}
    progress = RunProgress(["a", "b", "c"], timings, out=out, quiet_s=30.0, clock=clock)
    progress.line("Running stage 'a':\n")
    clock.now = 50.0
    progress.line("Running stage 'b':\n")
    clock.now = 100.0
    progress.tick()  # 50 s silent: a reminder
    clock.now = 110.0
    progress.tick()  # 10 s after the reminder: nothing
    lines = [ln for ln in out.getvalue().splitlines() if ln.startswith("geosgm run:")]
    assert lines[0] == "geosgm run: [1/3] a (stage ~1.0 min; run 0.0 min in, ~3.5 min left)"
    assert lines[1] == "geosgm run: [2/3] b (stage ~2.0 min; run 0.8 min in, ~2.5 min left)"
    # b has 70 s of its 120 left, c 30 s: 100 s.
    assert lines[2] == "geosgm run: [2/3] b still running (0.8 min of ~2.0 min; run ~1.7 min left)"
    assert len(lines) == 3
    assert "Running stage 'a':" in out.getvalue()  # dvc's own lines are echoed
    clock.now = 150.0
    assert progress.finish() == {"a": 50.0, "b": 100.0}


def test_timings_file_merges_and_survives_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "run_timings.json"
    assert read_timings(path) == {}
    write_timings(path, {"a": 1.04, "b": 2.0})
    write_timings(path, {"b": 3.0})
    assert read_timings(path) == {"a": 1.0, "b": 3.0}
    path.write_text("{not json")
    assert read_timings(path) == {}
    path.write_text(json.dumps({"stages": {"a": "x", "b": -1, "c": 5}}))
    assert read_timings(path) == {"c": 5.0}


def test_no_reminder_before_any_stage() -> None:
    clock, out = Clock(), io.StringIO()
    progress = RunProgress([], {}, out=out, quiet_s=30.0, clock=clock)
    clock.now = 1000.0
    progress.tick()
    assert out.getvalue() == ""


DOT = """strict digraph {
"ingest@a";
"split@a";
"train@a-kde";
"evaluate@a-kde";
"report";
"ingest@a" -> "split@a";
"split@a" -> "train@a-kde";
"train@a-kde" -> "evaluate@a-kde";
"evaluate@a-kde" -> "report";
}
"""


def test_planned_stages_follow_changes_downstream_within_the_targets() -> None:
    nodes, edges = parse_dag_dot(DOT)
    assert nodes == ["ingest@a", "split@a", "train@a-kde", "evaluate@a-kde", "report"]
    assert ("split@a", "train@a-kde") in edges
    # A change to split reruns what follows it, ...
    assert planned_stages(nodes, edges, ["split@a"]) == [
        "split@a",
        "train@a-kde",
        "evaluate@a-kde",
        "report",
    ]
    # ... only up to the targets, ...
    assert planned_stages(nodes, edges, ["split@a"], ["train@a-kde"]) == ["split@a", "train@a-kde"]
    # ... nothing when nothing changed, and the targets' whole closure when forced.
    assert planned_stages(nodes, edges, [], ["train@a-kde"]) == []
    assert planned_stages(nodes, edges, [], ["train@a-kde"], force=True) == [
        "ingest@a",
        "split@a",
        "train@a-kde",
    ]
    # A target that is not a stage name (a glob) plans over the whole graph.
    assert len(planned_stages(nodes, edges, ["ingest@a"], ["train@*"])) == 5


def test_the_run_clock_can_start_before_this_pass() -> None:
    clock, out = Clock(), io.StringIO()
    clock.now = 600.0  # a first pass took 10 minutes
    progress = RunProgress(["a"], {"a": 60.0}, out=out, clock=clock, started_at=0.0)
    progress.line("Running stage 'a':")
    assert "run 10.0 min in, ~1.0 min left" in out.getvalue()


def test_geosgm_run_reads_dvc_output_line_by_line_and_records_timings(tmp_path: Path) -> None:
    import os
    import sys
    import time

    from pipeline.cli.commands import RUN_TIMINGS, _repro_with_progress
    from pipeline.process_group import supervise

    # A stand-in for `dvc repro`: two stages; `dvc dag`/`dvc status` fail on it (no plan).
    script = "print(\"Running stage 'a':\", flush=True); print(\"Running stage 'b':\")"
    cmd = [sys.executable, "-c", script]
    with supervise() as sup:
        rc = _repro_with_progress(sup, cmd, tmp_path, dict(os.environ), time.monotonic())
    assert rc == 0
    assert set(read_timings(tmp_path / RUN_TIMINGS)) == {"a", "b"}
