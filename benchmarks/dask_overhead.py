"""Per-task overhead of the Dask runners against the thread runner (Prefect flow, local server).

A flow of ``--tasks`` seed tasks, each doing ``--work-ms`` of busy work, runs through
``run_seeds`` on: threads; a ``distributed.LocalCluster`` of worker processes (what
``runner: {kind: dask}`` starts); and a cluster of separate ``dask scheduler``/``dask worker``
processes (:func:`pipeline.flows.dask_processes.local_process_cluster`, what an existing
cluster looks like, reached through ``GEOSGM_DASK_ADDRESS``). The runners use the same number
of workers. Each runner is timed ``--repeats`` times after one warm-up; the overhead per task
is (median flow wall − the thread runner's) / tasks × workers, i.e. the extra worker-seconds
each task costs. Cluster start-up is reported apart (once per stage for the LocalCluster).

Usage::

    .venv/bin/python benchmarks/dask_overhead.py --tasks 20 --workers 2 --repeats 3
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cloudpickle

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.flows.dask_processes import local_process_cluster  # noqa: E402
from pipeline.flows.fanout import run_seeds  # noqa: E402
from pipeline.flows.runners import DASK_ADDRESS_ENV  # noqa: E402
from pipeline.flows.server import local_prefect_server  # noqa: E402

# Dask workers cannot import this script: its functions travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def busy(seed: int, work_ms: float) -> int:
    """``work_ms`` of CPU work (sent to the workers by value: see the cloudpickle line)."""
    end = time.perf_counter() + work_ms / 1000.0
    x = seed
    while time.perf_counter() < end:
        x = (x * 1103515245 + 12345) % 2**31
    return seed


def _time_flow(tasks: int, spec: dict[str, object], work_ms: float) -> float:
    start = time.perf_counter()
    out = run_seeds(functools.partial(busy, work_ms=work_ms), list(range(tasks)), spec,
                    flow_name="dask-overhead", retries=0)  # fmt: skip
    assert out == list(range(tasks))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Print median flow walls and the overhead per task of each runner."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work-ms", type=float, default=200.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.pop(DASK_ADDRESS_ENV, None)
    walls: dict[str, list[float]] = {}
    startup: dict[str, float] = {}
    with local_prefect_server(ROOT), tempfile.TemporaryDirectory() as tmp:
        thread = {"kind": "thread", "max_workers": args.workers}
        local = {"kind": "dask", "max_workers": args.workers}
        for name, spec in (("thread", thread), ("dask LocalCluster", local)):
            _time_flow(args.tasks, spec, args.work_ms)  # warm-up
            walls[name] = [_time_flow(args.tasks, spec, args.work_ms) for _ in range(args.repeats)]
        start = time.perf_counter()
        with local_process_cluster(args.workers, Path(tmp) / "cluster") as cluster:
            startup["dask scheduler + workers"] = time.perf_counter() - start
            os.environ[DASK_ADDRESS_ENV] = cluster.address
            try:
                _time_flow(args.tasks, thread, args.work_ms)
                walls["dask scheduler + workers"] = [
                    _time_flow(args.tasks, thread, args.work_ms) for _ in range(args.repeats)
                ]
            finally:
                os.environ.pop(DASK_ADDRESS_ENV, None)
        start = time.perf_counter()
        _time_flow(1, local, 0.0)
        startup["dask LocalCluster (1 trivial task, start + stop)"] = time.perf_counter() - start
    base = statistics.median(walls["thread"])
    print(
        f"{args.tasks} tasks x {args.work_ms:.0f} ms of work, {args.workers} workers, "
        f"{args.repeats} timed runs after a warm-up; medians; local Prefect server"
    )
    for name, runs in walls.items():
        med = statistics.median(runs)
        per_task = (med - base) / args.tasks * args.workers
        runs_text = ", ".join(f"{w:.2f}" for w in runs)
        print(
            f"{name:>26}: flow {med:6.2f} s ({med / base:4.2f}x thread), overhead per task "
            f"{1000 * per_task:+7.1f} ms  (walls: {runs_text})"
        )
    for name, secs in startup.items():
        print(f"start-up, {name}: {secs:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
