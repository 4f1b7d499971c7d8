"""Prefect's overhead per DVC stage: a process that runs its work as a flow vs. one that doesn't.

Every stage is a process that runs one Prefect flow. Two kinds are timed, ``--repeats`` times
each, first against an ephemeral Prefect server (what a bare ``dvc repro`` gets: every stage
process starts its own), then against one local server (what ``geosgm run`` starts for the
whole ``dvc repro``):

- a train/evaluate-like process running a flow of 5 trivial seed tasks, against one that only
  imports the same modules (prefect included);
- the real ``ingest`` stage on the volcano catalogue (``python -m stages.ingest``, outputs to a
  temporary folder), against the same work called without Prefect (prefect not imported).

The difference is Prefect's cost per stage.

Usage::

    .venv/bin/python benchmarks/prefect_overhead.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
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


def _ingest_args(out: str) -> list[str]:
    return ["--catalogue", "volcano"] + [
        f"--{kind}-dir={out}/{kind}" for kind in ("processed", "rejects", "metrics")
    ]


def _pair(out: str) -> tuple[float, float, float, float]:
    """Walls: 5-seed flow, its imports only; ingest as a flow, the same without Prefect."""
    args = _ingest_args(out)
    plain = f"from stages.ingest import parse_args, run; run(parse_args({args!r}))"
    return (
        _python(_FLOW),
        _python(_BASELINE),
        _python(f"import sys; from stages.ingest import main; sys.exit(main({args!r}))"),
        _python(plain),
    )


def main(argv: list[str] | None = None) -> int:
    """Print the median walls per mode and their difference."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.pop("PREFECT_API_URL", None)
    with tempfile.TemporaryDirectory() as out:
        results = {"ephemeral": [_pair(out) for _ in range(args.repeats)]}
        t0 = time.perf_counter()
        with local_prefect_server(ROOT):
            start = time.perf_counter() - t0
            results["local server"] = [_pair(out) for _ in range(args.repeats)]
    print(f"{args.repeats} runs per mode; medians; process wall times")
    print(f"local server start-up (once per `geosgm run`): {start:.1f} s")
    labels = (
        ("5 seed tasks", "imports only"),
        ("ingest volcano as a flow", "without Prefect"),
    )
    for mode, runs in results.items():
        for k, (flow_label, base_label) in enumerate(labels):
            wall = statistics.median(r[2 * k] for r in runs)
            work = statistics.median(r[2 * k + 1] for r in runs)
            walls = ", ".join(f"{r[2 * k]:.1f}" for r in runs)
            print(f"{mode:>13}: {flow_label} {wall:5.1f} s, {base_label} {work:4.1f} s, "
                  f"Prefect overhead {wall - work:5.1f} s  (flow walls: {walls})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
