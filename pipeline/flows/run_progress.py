"""Whole-run progress for ``geosgm run``: one line per stage with an ETA for the stage and the run.

``dvc repro`` prints ``Running stage 'NAME':`` as each stage starts. :class:`RunProgress` reads
those lines, knows the stages the run will execute (:func:`planned_stages`, from ``dvc dag
--dot`` and ``dvc status --json``: ``dvc repro --dry`` cannot plan past a missing output) and
what each took
last time (``reports/run_timings.json``, written at the end of every run), and prints

    geosgm run: [12/71] train@volcano-rsgm (stage ~6.2 min; run 14.0 min in, ~58 min left)

with a reminder line when a stage has printed nothing for ``quiet_s`` seconds. A stage never
timed before is expected to take the median of the timed stages of its kind (the name before
``@``), else :data:`DEFAULT_STAGE_S`.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from pipeline.atomic import atomic_write

__all__ = [
    "DEFAULT_STAGE_S",
    "RunProgress",
    "expected_seconds",
    "parse_dag_dot",
    "parse_skip_line",
    "parse_stage_line",
    "planned_stages",
    "read_timings",
    "write_timings",
]

DEFAULT_STAGE_S = 30.0
"""Seconds expected of a stage with no timing of its own or its kind's."""

_STAGE_LINE = re.compile(r"^Running stage '([^']+)'")
# dvc's lines for a planned stage it does not run: its deps came out unchanged after all
# (an upstream stage rewrote the same bytes), or the run cache restores its outputs.
_SKIP_LINE = re.compile(r"^Stage '([^']+)' (?:didn't change, skipping|is cached - skipping run)")
_DOT_NODE = re.compile(r'^"([^"]+)";$')
_DOT_EDGE = re.compile(r'^"([^"]+)" -> "([^"]+)";$')


def parse_dag_dot(dot: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Nodes and ``(upstream, downstream)`` edges of ``dvc dag --dot``'s output."""
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    for line in dot.splitlines():
        line = line.strip()
        if edge := _DOT_EDGE.match(line):
            edges.append((edge.group(1), edge.group(2)))
        elif node := _DOT_NODE.match(line):
            nodes.append(node.group(1))
    return nodes, edges


def planned_stages(
    nodes: Sequence[str],
    edges: Iterable[tuple[str, str]],
    changed: Iterable[str],
    targets: Sequence[str] = (),
    force: bool = False,
) -> list[str]:
    """The stages ``dvc repro [--force] TARGETS`` will run, in a topological order.

    Those the targets need (all stages when there are no targets, or when a target is not a
    stage name, e.g. a glob) that are changed or downstream of a changed one; with ``force``,
    all of them.
    """
    upstream: dict[str, set[str]] = {n: set() for n in nodes}
    downstream: dict[str, set[str]] = {n: set() for n in nodes}
    for a, b in edges:
        upstream.setdefault(b, set()).add(a)
        downstream.setdefault(a, set()).add(b)
        upstream.setdefault(a, set())
        downstream.setdefault(b, set())
    scope = set(upstream)
    if targets and all(t in upstream for t in targets):
        scope, todo = set(), list(targets)
        while todo:
            stage = todo.pop()
            if stage not in scope:
                scope.add(stage)
                todo.extend(upstream[stage])
    run = set(scope) if force else set()
    todo = [s for s in changed if s in scope]
    while todo:
        stage = todo.pop()
        if stage not in run:
            run.add(stage)
            todo.extend(d for d in downstream[stage] if d in scope)
    order: list[str] = []  # Kahn's algorithm, ties in the order dvc listed the nodes
    indegree = {s: len(upstream[s] & run) for s in run}
    rank = {n: i for i, n in enumerate(upstream)}
    ready = sorted((s for s in run if indegree[s] == 0), key=rank.__getitem__)
    while ready:
        stage = ready.pop(0)
        order.append(stage)
        for d in sorted(downstream[stage] & run, key=rank.__getitem__):
            indegree[d] -= 1
            if indegree[d] == 0:
                ready.append(d)
    return order


def parse_stage_line(line: str) -> str | None:
    """The stage name in a ``dvc repro`` line ``Running stage 'NAME':``, else ``None``."""
    match = _STAGE_LINE.match(line.strip())
    return match.group(1) if match else None


def parse_skip_line(line: str) -> str | None:
    """The stage in a ``dvc repro`` line saying it will not run (unchanged or restored from the
    run cache), else ``None``."""
    match = _SKIP_LINE.match(line.strip())
    return match.group(1) if match else None


def read_timings(path: Path) -> dict[str, float]:
    """Seconds per stage name from a timings file; ``{}`` when it is missing or unreadable
    (an ETA is a guess: a bad file must not stop a run)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in stages.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
    }


def write_timings(path: Path, measured: Mapping[str, float]) -> None:
    """Merge ``measured`` into the timings file (atomically; other stages keep their times)."""
    stages = read_timings(path)
    stages.update({k: round(float(v), 1) for k, v in measured.items()})
    text = json.dumps({"stages": dict(sorted(stages.items()))}, indent=1) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def expected_seconds(stage: str, timings: Mapping[str, float]) -> float:
    """What ``stage`` is expected to take: its own last time, else its kind's median, else
    :data:`DEFAULT_STAGE_S`."""
    if stage in timings:
        return timings[stage]
    kind = stage.split("@", 1)[0]
    same_kind = [s for name, s in timings.items() if name.split("@", 1)[0] == kind]
    return statistics.median(same_kind) if same_kind else DEFAULT_STAGE_S


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


class RunProgress:
    """Tracks the stages of one ``dvc repro`` and prints progress lines.

    Args:
        planned: The stages the run may execute, in order (:func:`planned_stages`). An upper
            bound: a stage downstream of a changed one runs only if the changed stage's
            outputs change, so one dvc then reports skipped leaves the count and the ETA.
        timings: Seconds per stage from earlier runs.
        out: Where the lines go.
        quiet_s: Print a reminder when nothing was printed for this long.
        clock: Seconds (monotonic); injectable for tests.
        started_at: When the run began on ``clock`` (default: now), e.g. before a first pass.
    """

    def __init__(
        self,
        planned: Iterable[str],
        timings: Mapping[str, float],
        out: TextIO | None = None,
        quiet_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        started_at: float | None = None,
    ) -> None:
        self.planned = list(planned)
        self.timings = dict(timings)
        self.out = out if out is not None else sys.stdout
        self.quiet_s = quiet_s
        self.clock = clock
        now = clock()
        self.started_at = now if started_at is None else started_at
        self.measured: dict[str, float] = {}
        self.skipped: set[str] = set()  # planned, but dvc found them unchanged after all
        self.current: str | None = None
        self._current_since = now
        self._last_output = now
        self._lock = threading.Lock()

    def _remaining_s(self, now: float) -> float:
        """Seconds left: what the current stage has left (at least 0) and every later stage."""
        done = set(self.measured) | self.skipped
        left = 0.0
        if self.current is not None:
            done.add(self.current)
            spent = now - self._current_since
            left += max(expected_seconds(self.current, self.timings) - spent, 0.0)
        left += sum(expected_seconds(s, self.timings) for s in self.planned if s not in done)
        return left

    def _position(self) -> str:
        ran = len(self.measured) + (self.current is not None)
        planned = len([s for s in self.planned if s not in self.skipped])
        return f"{ran}/{max(planned, ran)}"

    def _emit(self, text: str, now: float) -> None:
        print(f"geosgm run: {text}", file=self.out, flush=True)
        self._last_output = now

    def _finish_current(self, now: float) -> None:
        if self.current is not None:
            self.measured[self.current] = now - self._current_since
            self.current = None

    def line(self, text: str) -> None:
        """Echo one line of ``dvc repro``'s output; a stage start gets a progress line."""
        with self._lock:
            now = self.clock()
            print(text, end="" if text.endswith("\n") else "\n", file=self.out, flush=True)
            self._last_output = now
            skipped = parse_skip_line(text)
            if skipped is not None:  # dvc has moved on: the stage before it has finished
                self._finish_current(now)
                self.skipped.add(skipped)
                return
            stage = parse_stage_line(text)
            if stage is None:
                return
            self._finish_current(now)
            self.current = stage
            self._current_since = now
            self._emit(
                f"[{self._position()}] {stage} (stage ~"
                f"{_minutes(expected_seconds(stage, self.timings))}; run "
                f"{_minutes(now - self.started_at)} in, ~{_minutes(self._remaining_s(now))} left)",
                now,
            )

    def tick(self) -> None:
        """Print a reminder if nothing was printed for ``quiet_s`` seconds."""
        with self._lock:
            now = self.clock()
            if self.current is None or now - self._last_output < self.quiet_s:
                return
            self._emit(
                f"[{self._position()}] {self.current} still running "
                f"({_minutes(now - self._current_since)} of ~"
                f"{_minutes(expected_seconds(self.current, self.timings))}; run "
                f"~{_minutes(self._remaining_s(now))} left)",
                now,
            )

    def finish(self) -> dict[str, float]:
        """Close the last stage; return the seconds measured for each stage of this run."""
        with self._lock:
            self._finish_current(self.clock())
            return dict(self.measured)
