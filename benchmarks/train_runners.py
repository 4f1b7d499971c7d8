"""The train and evaluate stages' seed fan-out on each task runner: wall time, same results.

Train: runs ``python -m stages.train --catalogue earthquake --model rsgm`` (the default
profile's config with ``--steps`` steps per seed) once per runner kind (threads, processes, a
Dask ``LocalCluster``), each into its own temporary models folder, against one local Prefect
server; reports each run's wall time and whether every seed's final EMA weights are
bit-identical to the first runner's. With ``--evaluate``: runs
``python -m stages.evaluate --catalogue earthquake --model rsgm`` on the trained models in
``data/models`` instead, once per runner, and compares the metrics files.

Usage::

    .venv/bin/python benchmarks/train_runners.py --steps 600 --workers 5
    .venv/bin/python benchmarks/train_runners.py --evaluate --kinds thread process
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import read_yaml_mapping  # noqa: E402
from pipeline.flows.server import local_prefect_server  # noqa: E402


def _ema_bytes(models_dir: Path, seeds: list[int]) -> list[bytes]:
    from safetensors.torch import load_file

    out = []
    for s in seeds:
        tensors = load_file(models_dir / "earthquake" / "rsgm" / f"seed{s}" / "ema.safetensors")
        out.append(b"".join(t.numpy().tobytes() for _, t in sorted(tensors.items())))
    return out


def _run(cmd: list[str], kind: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stdout}\n{proc.stderr}")
    return wall


def evaluate_runners(kinds: list[str], workers: int) -> int:
    """Time the evaluate stage per runner on the trained models; compare the metrics."""
    params = read_yaml_mapping(ROOT / "params.yaml")
    walls: dict[str, float] = {}
    metrics: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp, local_prefect_server(ROOT):
        for kind in kinds:
            params["evaluate"]["runner"] = {"kind": kind, "max_workers": workers}
            pfile = Path(tmp) / f"params_{kind}.yaml"
            pfile.write_text(yaml.safe_dump(params, sort_keys=False))
            out = Path(tmp) / kind
            cmd = [sys.executable, "-m", "stages.evaluate", "--catalogue", "earthquake"]
            cmd += ["--model", "rsgm", "--params", str(pfile), "--metrics-dir", str(out)]
            walls[kind] = _run(cmd, kind)
            # Wall-clock fields differ by nature; everything else must not.
            m = json.loads((out / "earthquake" / "rsgm.json").read_text())
            for row in m["per_seed"]:
                row.pop("nll_seconds_per_1000", None)
            metrics[kind] = json.dumps(m, sort_keys=True)
    base = kinds[0]
    print(f"evaluate@earthquake-rsgm, {workers} workers, data/models")
    for kind in kinds:
        same = metrics[kind] == metrics[base]
        print(
            f"{kind:>8}: {walls[kind]:6.1f} s  ({walls[kind] / walls[base]:.2f}x {base}); "
            f"metrics identical to {base}: {same}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Print wall time per runner and whether the results match the first runner's."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--kinds", nargs="+", default=["thread", "process", "dask"])
    parser.add_argument("--evaluate", action="store_true", help="time the evaluate stage")
    args = parser.parse_args(argv)
    if args.evaluate:
        return evaluate_runners(args.kinds, args.workers)
    params = read_yaml_mapping(ROOT / "params.yaml")
    seeds = [int(s) for s in params["train"]["seeds"]]
    walls: dict[str, float] = {}
    weights: dict[str, list[bytes]] = {}
    with tempfile.TemporaryDirectory() as tmp, local_prefect_server(ROOT):
        for kind in args.kinds:
            params["train"]["runner"] = {"kind": kind, "max_workers": args.workers}
            params["train"]["rsgm"]["optim"]["steps"] = args.steps
            pfile = Path(tmp) / f"params_{kind}.yaml"
            pfile.write_text(yaml.safe_dump(params, sort_keys=False))
            models = Path(tmp) / kind
            cmd = [sys.executable, "-m", "stages.train", "--catalogue", "earthquake"]
            cmd += ["--model", "rsgm", "--params", str(pfile), "--models-dir", str(models)]
            cmd += ["--plots-dir", str(Path(tmp) / f"plots_{kind}")]
            walls[kind] = _run(cmd, kind)
            weights[kind] = _ema_bytes(models, seeds)
    base = args.kinds[0]
    print(
        f"train@earthquake-rsgm, {len(seeds)} seeds x {args.steps} steps, "
        f"{args.workers} workers, torch threads per seed {params['train']['torch_threads']}"
    )
    for kind in args.kinds:
        same = weights[kind] == weights[base]
        print(
            f"{kind:>8}: {walls[kind]:6.1f} s  ({walls[kind] / walls[base]:.2f}x {base}); "
            f"EMA weights bit-identical to {base}: {same}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
