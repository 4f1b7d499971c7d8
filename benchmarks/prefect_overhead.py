"""Prefect's start-up overhead per DVC stage: a stage run as a flow vs. its work alone.

Runs ``python -m stages.ingest --catalogue <cat>`` (a flow around ~0.6 s of work) ``--repeats``
times, first against an ephemeral Prefect server (what a bare ``dvc repro`` gets: every stage
process starts its own), then against one local server (what ``geosgm run`` starts for the
whole ``dvc repro``), and prints the wall times beside the work time the stage reports.
Outputs go to a temporary directory; the project's data are not touched.

Usage::

    .venv/bin/python benchmarks/prefect_overhead.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.flows.server import local_prefect_server  # noqa: E402


def _stage(catalogue: str, out: Path) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "stages.ingest", "--catalogue", catalogue,
           "--processed-dir", str(out / "processed"), "--rejects-dir", str(out / "rejects"),
           "--metrics-dir", str(out / "metrics")]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"stage failed:\n{proc.stdout}\n{proc.stderr}")
    work = re.search(r"\(([\d.]+) s\)", proc.stdout)
    return wall, float(work.group(1)) if work else float("nan")


def main(argv: list[str] | None = None) -> int:
    """Print median wall and work seconds per mode."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalogue", default="volcano")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.pop("PREFECT_API_URL", None)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        results = {"ephemeral": [_stage(args.catalogue, out) for _ in range(args.repeats)]}
        t0 = time.perf_counter()
        with local_prefect_server(ROOT):
            start = time.perf_counter() - t0
            results["local server"] = [_stage(args.catalogue, out) for _ in range(args.repeats)]
    print(f"stage: ingest@{args.catalogue}; {args.repeats} runs per mode; medians")
    print(f"local server start-up (once per `geosgm run`): {start:.1f} s")
    for mode, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        work = statistics.median(r[1] for r in runs)
        walls = ", ".join(f"{r[0]:.1f}" for r in runs)
        print(f"{mode:>13}: wall {wall:5.1f} s, stage work {work:4.1f} s, "
              f"overhead {wall - work:5.1f} s  (walls: {walls})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
