"""Where a cheap stage's seconds go under a plain ``dvc repro``: the stage's own process, and
DVC's work around it, with the committed ``dvc.lock`` and with a lock holding only that stage.

DVC rewrites ``dvc.lock`` after every stage it runs (a comment-preserving YAML round trip of
the whole file), so its cost grows with the lock: about 100 stages of about 50 code deps each.
Each timing runs in a throwaway clone of the committed tree (the DVC cache is shared through
``cache.dir``):

- ``stage alone``: the stage's command, ``python -m stages.<name> ...``, without DVC;
- ``dvc repro, full lock``: ``dvc repro -f -s <stage>`` with the committed ``dvc.lock``;
- ``dvc repro, small lock``: the same with ``dvc.lock`` cut to that one stage's entry.

Medians of ``--repeats`` runs, all in one run of this script (run it on a quiet machine).

Usage::

    .venv/bin/python benchmarks/stage_overhead.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest@volcano", "summarize")


def _clone(dest: Path, env: dict[str, str]) -> None:
    """A clone of the committed tree, sharing this repository's DVC cache."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], env=env, check=True)
    cache = str(ROOT / ".dvc" / "cache")
    subprocess.run(["dvc", "config", "--local", "cache.dir", cache], cwd=dest, env=env, check=True)


def _stage_command(stage: str) -> list[str]:
    """The stage's ``cmd`` as DVC resolves it (``foreach`` expanded)."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        (found,) = [s for s in repo.index.stages if s.addressing == stage]
        return shlex.split(str(found.cmd))


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall


def _cut_lock(path: Path, stage: str) -> int:
    lock = yaml.safe_load(path.read_text(encoding="utf-8"))
    lock["stages"] = {k: v for k, v in lock["stages"].items() if k == stage}
    path.write_text(yaml.safe_dump(lock, sort_keys=False), encoding="utf-8")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    full_size = (ROOT / "dvc.lock").stat().st_size
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "repo"
        _clone(work, env)
        env["PREFECT_HOME"] = str(Path(tmp) / "prefect")
        print(f"{args.repeats} runs each; medians; wall seconds; dvc.lock {full_size} bytes")
        for stage in STAGES:
            repro = ["dvc", "repro", "-f", "-s", stage]
            # Once untimed: the first run fills DVC's state database (file hashes).
            _timed(repro, work, env)
            alone = [_timed(_stage_command(stage), work, env) for _ in range(args.repeats)]
            full = [_timed(repro, work, env) for _ in range(args.repeats)]
            kept = (work / "dvc.lock").read_text(encoding="utf-8")
            small_size = _cut_lock(work / "dvc.lock", stage)
            small = [_timed(repro, work, env) for _ in range(args.repeats)]
            (work / "dvc.lock").write_text(kept, encoding="utf-8")
            a, f, s = (statistics.median(v) for v in (alone, full, small))
            print(
                f"{stage:>16}: stage alone {a:5.1f} s | dvc repro, full lock {f:5.1f} s "
                f"(DVC {f - a:4.1f} s) | dvc repro, {small_size}-byte lock {s:5.1f} s "
                f"(DVC {s - a:4.1f} s) | lock size's share {f - s:4.1f} s"
            )


if __name__ == "__main__":
    main()
