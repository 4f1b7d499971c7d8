"""Prefect's overhead per DVC stage: a process that runs a seed fan-out flow vs. one that doesn't.

A train/evaluate stage is a process that runs one Prefect flow whose tasks are the seeds. This
times ``--repeats`` processes that run such a flow with 5 trivial seed tasks, against processes
that only import the same modules, first against an ephemeral Prefect server (what a bare
``dvc repro`` gets: every stage process starts its own), then against one local server (what
``geosgm run`` starts for the whole ``dvc repro``). The difference is Prefect's cost per stage.

Usage::

    .venv/bin/python benchmarks/prefect_overhead.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.flows.server import local_prefect_server  # noqa: E402

_BASELINE = "import torch, prefect, pipeline.flows.fanout"
_FLOW = (
    _BASELINE + "; from pipeline.flows.fanout import run_seeds; "
    "run_seeds(abs, [0, 1, 2, 3, 4], {'kind': 'thread', 'max_workers': 2}, flow_name='overhead')"
)


def _python(code: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed:\n{proc.stdout}\n{proc.stderr}")
    return wall


def _pair() -> tuple[float, float]:
    """(wall of a process that runs a 5-seed flow, wall of one that only imports the same)."""
    return _python(_FLOW), _python(_BASELINE)


def main(argv: list[str] | None = None) -> int:
    """Print the median walls per mode and their difference."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.pop("PREFECT_API_URL", None)
    results = {"ephemeral": [_pair() for _ in range(args.repeats)]}
    t0 = time.perf_counter()
    with local_prefect_server(ROOT):
        start = time.perf_counter() - t0
        results["local server"] = [_pair() for _ in range(args.repeats)]
    print(f"flow with 5 seed tasks vs imports only; {args.repeats} runs per mode; medians")
    print(f"local server start-up (once per `geosgm run`): {start:.1f} s")
    for mode, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        work = statistics.median(r[1] for r in runs)
        walls = ", ".join(f"{r[0]:.1f}" for r in runs)
        print(f"{mode:>13}: flow process {wall:5.1f} s, imports only {work:4.1f} s, "
              f"Prefect overhead {wall - work:5.1f} s  (flow walls: {walls})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
