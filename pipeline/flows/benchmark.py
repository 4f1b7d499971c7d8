"""Measure Prefect's start-up overhead per stage and the seed fan-out on each runner.

Run from the project root::

    python -m pipeline.flows.benchmark --repeats 3 --seeds 5

Overhead: each repeat starts a fresh Python process that applies the project's Prefect
settings and runs a trivial flow end to end in ephemeral mode (the API server is started in
a subprocess, as in a DVC stage), against a bare ``python -c pass``. The extra wall time is
what one stage pays for running as a flow. Fan-out: :func:`pipeline.flows.fanout.run_seeds`
on a pure-Python CPU function (GIL-bound, so threads cannot overlap it) per runner.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["busy_work", "measure_fanout", "measure_overhead", "main"]

_CHILD = """
import json, time
t0 = time.perf_counter()
from pipeline.flows.settings import apply_prefect_defaults
apply_prefect_defaults()
from prefect import flow
t1 = time.perf_counter()
@flow(name="overhead-probe")
def probe() -> int:
    return 1
probe()
t2 = time.perf_counter()
probe()
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_flow_s": t2 - t1, "next_flow_s": t3 - t2}))
"""


def busy_work(seed: int, n: int = 3_000_000) -> int:
    """A pure-Python CPU-bound function of the seed (holds the GIL).

    Args:
        seed: The seed.
        n: Loop length.

    Returns:
        A checksum depending on the seed.
    """
    acc = seed
    for i in range(n):
        acc = (acc * 1_103_515_245 + i) % 2_147_483_648
    return acc


def _wall(cmd: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, proc.stdout


def measure_overhead(project_dir: Path, repeats: int = 3) -> dict[str, Any]:
    """Median wall times of a trivial flow in a fresh process, and of a bare process.

    Args:
        project_dir: Project root (``PREFECT_HOME`` goes to its ``.prefect``).
        repeats: Fresh processes per measurement.

    Returns:
        Medians in seconds: ``bare_python_s``, ``trivial_flow_process_s``,
        ``overhead_per_stage_s`` (their difference), and the child's ``import_s``,
        ``first_flow_s`` (includes the ephemeral server start) and ``next_flow_s``.
    """
    _wall([sys.executable, "-c", _CHILD], project_dir)  # warm-up: database migrations
    bare = [_wall([sys.executable, "-c", "pass"], project_dir)[0] for _ in range(repeats)]
    runs = [_wall([sys.executable, "-c", _CHILD], project_dir) for _ in range(repeats)]
    inner = [json.loads(out.strip().splitlines()[-1]) for _, out in runs]
    med = statistics.median
    total = med(t for t, _ in runs)
    return {
        "repeats": repeats,
        "bare_python_s": med(bare),
        "trivial_flow_process_s": total,
        "overhead_per_stage_s": total - med(bare),
        **{k: med(d[k] for d in inner) for k in ("import_s", "first_flow_s", "next_flow_s")},
    }


def measure_fanout(seeds: list[int], workers: int = 2) -> dict[str, float]:
    """Wall time of :func:`run_seeds` over ``busy_work`` on each runner (and serially).

    Must run inside a Prefect-enabled process; the first flow run (server start) is done
    before timing.

    Args:
        seeds: Seeds to fan out.
        workers: Workers per runner.

    Returns:
        Runner name -> seconds.
    """
    from pipeline.flows.fanout import run_seeds

    run_seeds(lambda s: s, [0], {"kind": "thread"}, flow_name="warm-up")
    start = time.perf_counter()
    expected = [busy_work(s) for s in seeds]
    times = {"serial (no Prefect)": time.perf_counter() - start}
    specs: dict[str, dict[str, Any]] = {
        "thread": {"kind": "thread", "max_workers": workers},
        "process": {"kind": "process", "max_workers": workers},
        "dask LocalCluster (processes)": {"kind": "dask", "max_workers": workers},
        "dask LocalCluster (threads)": {
            "kind": "dask",
            "max_workers": workers,
            "processes": False,
        },
    }
    for name, spec in specs.items():
        start = time.perf_counter()
        got = run_seeds(busy_work, seeds, spec, flow_name=f"bench-{spec['kind']}")
        times[name] = time.perf_counter() - start
        if got != expected:
            raise RuntimeError(f"{name}: results differ from the serial run")
    return times


def main(argv: list[str] | None = None) -> int:
    """Print the overhead and fan-out measurements as JSON.

    Args:
        argv: Command-line arguments (``--repeats``, ``--seeds``, ``--workers``).

    Returns:
        Exit code 0.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    project = Path.cwd()
    from pipeline.flows.settings import apply_prefect_defaults

    apply_prefect_defaults(project)
    out = {
        "cpu_count": os.cpu_count(),
        "overhead": measure_overhead(project, args.repeats),
        "fanout_s": measure_fanout(list(range(args.seeds)), args.workers),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
