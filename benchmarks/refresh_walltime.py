"""Wall time of ``geosgm refresh`` on an appended catalogue file, in a smoke-profile clone.

Clones this repository into ``--workdir``, applies the ``smoke`` profile (with the
``rsgm+hash`` split so appended rows get a part), runs the whole pipeline once
(``geosgm run``), commits, drops ``--rows`` new events plus a few duplicates of existing ones
into ``data/incoming/<catalogue>/``, and times ``geosgm refresh``. Prints which stages reran,
the refresh's own summary, and whether ``dvc status`` is clean afterwards.

Usage::

    .venv/bin/python benchmarks/refresh_walltime.py --catalogue volcano --rows 40
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from pipeline.config import read_yaml_mapping

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(cmd: list[str], cwd: Path) -> tuple[str, float]:
    env = dict(os.environ)
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    env.setdefault("PREFECT_HOME", str(cwd / ".prefect"))
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr, seconds


def _git(cwd: Path, *args: str) -> None:
    ident = ["-c", "user.name=geosgm bench", "-c", "user.email=bench@geosgm.local"]
    _run(["git", *ident, *args], cwd)


def main(argv: list[str] | None = None) -> int:
    """Build the clone, run it once, append a file, time the refresh."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalogue", default="volcano")
    parser.add_argument("--rows", type=int, default=40, help="new events in the appended file")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geosgm_refresh_bench"))
    args = parser.parse_args(argv)

    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    _run(["git", "clone", "-q", str(ROOT), str(args.workdir)], ROOT)
    repo = args.workdir
    cli = [sys.executable, "-m", "pipeline.cli"]
    _run([*cli, "profile", "smoke"], repo)
    params_path = repo / "params.yaml"
    params = read_yaml_mapping(params_path)
    params["split"]["protocol"] = "rsgm+hash"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    # The benchmark's runs must not write to the project's DVC remote.
    _run([str(BIN / "dvc"), "remote", "default", "--unset"], repo)
    out, first = _run([*cli, "run"], repo)
    print(f"first run (smoke profile, all stages): {first:.1f} s")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "smoke baseline")

    spec = params["ingest"]["catalogues"][args.catalogue]
    raw = (repo / "data" / "raw" / spec["file"]).read_text().splitlines()
    header = next(line for line in raw if line and not line.startswith("#"))
    existing = [line for line in raw if line and not line.startswith("#")][1:4]
    rng = np.random.default_rng(0)
    lat = rng.uniform(-60.0, 60.0, args.rows)
    lon = rng.uniform(-180.0, 180.0, args.rows)
    # Only the lat/lon columns are validated; other columns are left empty.
    names = header.split(",")
    lat_i = [n.strip().lower() for n in names].index(str(spec["lat_col"]).lower())
    lon_i = [n.strip().lower() for n in names].index(str(spec["lon_col"]).lower())
    rows = []
    for a, b in zip(lat, lon, strict=True):
        fields = [""] * len(names)
        fields[lat_i], fields[lon_i] = f"{a:.4f}", f"{b:.4f}"
        rows.append(",".join(fields))
    incoming = repo / "data" / "incoming" / args.catalogue
    incoming.mkdir(parents=True)
    (incoming / "appended.csv").write_text("\n".join([header, *rows, *existing]) + "\n")

    out, seconds = _run([*cli, "refresh"], repo)
    versions = json.loads((repo / "reports" / "versions.json").read_text())
    latest = versions[-1] if isinstance(versions, list) else versions
    ran = list(latest.get("stages_run", []))
    status, _ = _run([str(BIN / "dvc"), "status", "--json"], repo)
    stale = {k for k in json.loads(status or "{}") if k != "summarize"}
    print(f"refresh ({args.rows} new + {len(existing)} duplicate rows in {args.catalogue}): "
          f"{seconds:.1f} s wall")  # fmt: skip
    print(f"stages rerun ({len(ran)}): {', '.join(ran)}")
    print("dvc status after refresh: " + ("clean" if not stale else f"stale {sorted(stale)}"))
    print("\n".join(line for line in out.splitlines() if line.startswith("refresh")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
