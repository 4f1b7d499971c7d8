"""Sample quality against reverse steps: rsgm (long and short horizon) and the Schrödinger bridge.

For each catalogue and split seed, at equal total training steps (``--total-steps``):

- ``rsgm_long``: rsgm with the default schedule (heat time s(T) = 2.5);
- ``rsgm_short``: rsgm with heat time s(T) = ``--short-s``, where the uniform prior is visibly
  wrong; this is also the bridge after 1 IPF iteration (:mod:`pipeline.bridge.ipf`);
- ``bridge_k`` for k in ``--iterations`` (> 1): k IPF iterations on the short horizon, the
  total steps split evenly over its 2k − 1 fields, with the implicit (divergence-form) loss;
  ``bridge_k_mm`` the same with DSB's mean-matching regression (``--mean-matching``).

Every model starts from the default profile's rsgm config (``data/configs/<cat>/rsgm.json``,
written by ``train_config@<cat>-rsgm``). Quality: ``--n-samples`` samples by the reverse
geodesic random walk with N ∈ ``--steps`` steps against the split's held-out test events: the
unbiased MMD² with the S² heat kernel at each ``--mmd-scales`` (:mod:`pipeline.mmd`), a
permutation p-value at the last scale, and the PF-ODE test NLL (nats; uniform base; for the
bridge the ODE of ½(F − B)). The MMD² of the validation events against the test events (two
samples of the data law) gives the floor.

Run where the processed catalogues and splits exist (after ``dvc repro``)::

    .venv/bin/python benchmarks/bridge_steps.py --catalogues earthquake fire --seeds 0 1 2 \
        --out reports/benchmarks/bridge_steps.json > reports/benchmarks/bridge_steps.txt
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _configs(
    data_root: Path, cat: str, total: int, short_s: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    resolved = json.loads((data_root / f"data/configs/{cat}/rsgm.json").read_text())["config"]
    long_cfg = json.loads(json.dumps(resolved))
    long_cfg["optim"] = {**long_cfg.get("optim", {}), "steps": int(total), "device": "cpu"}
    short_cfg = json.loads(json.dumps(long_cfg))
    sched = dict(short_cfg["schedule"])
    beta_0 = float(sched.get("beta_0", 1e-3))
    # s(T) = (β0 + β1) T / 2 for the linear schedule
    sched["beta_1"] = 2.0 * short_s / float(sched.get("T", 1.0)) - beta_0
    short_cfg["schedule"] = sched
    return long_cfg, short_cfg


def _mmd2(kxx: np.ndarray, kyy_sum: float, m: int, kxy: np.ndarray) -> float:
    n = kxx.shape[0]
    sum_xx = kxx.sum() - np.trace(kxx)
    return float(sum_xx / (n * (n - 1)) + kyy_sum / (m * (m - 1)) - 2.0 * kxy.mean())


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Fit one model kind on one (catalogue, seed) and score it at every step count."""
    import torch

    from pipeline.data.splits import load_split
    from pipeline.mmd import heat_kernel_matrix, mmd_test
    from pipeline.variants.dsb.ipf import IPFConfig, run_ipf

    torch.set_num_threads(1)
    cat, seed, name = job["catalogue"], int(job["seed"]), job["model"]
    root = Path(job["data_root"])
    parts = load_split(root / f"data/processed/{cat}.nc", root / f"data/splits/{cat}.csv", seed)
    x_train = torch.as_tensor(parts["train"], dtype=torch.float32)
    test = np.asarray(parts["test"], dtype=np.float64)
    long_cfg, short_cfg = _configs(root, cat, job["total_steps"], job["short_s"])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # rsgm is the bridge's first iteration (bit-identical to fit_seed's rsgm): one path.
        k = int(job["iterations"])
        per_field = max(1, round(job["total_steps"] / (2 * k - 1)))
        cfg = json.loads(json.dumps(long_cfg if name == "rsgm_long" else short_cfg))
        cfg["optim"]["steps"] = per_field
        ipf = IPFConfig(
            n_iterations=k,
            sim_paths=int(job["sim_paths"]),
            sim_steps=int(job["sim_steps"]),
            train={"steps": per_field},
            loss="mean_matching" if name.endswith("_mm") else "implicit",
            seed=seed,
        )
        bridge = run_ipf(cfg, ipf, x_train, Path(tmp) / "b")

        def sample(n: int, steps: int, gen: torch.Generator) -> torch.Tensor:
            return bridge.sample(n, steps, gen)

        def logp(x: torch.Tensor) -> torch.Tensor:
            return bridge.log_density(x, rtol=job["rtol"], atol=job["atol"])

        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        test_nll = float(-logp(torch.as_tensor(test, dtype=torch.float32)).double().mean())
        nll_s = time.perf_counter() - t1
        scales = [float(s) for s in job["mmd_scales"]]
        kyy = {s: heat_kernel_matrix(test, test, s) for s in scales}
        kyy_sum = {s: float(kyy[s].sum() - np.trace(kyy[s])) for s in scales}
        rows = []
        for steps in job["steps"]:
            gen = torch.Generator().manual_seed(10_000 + seed)
            x = sample(int(job["n_samples"]), int(steps), gen).double().numpy()
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
            mmd = {
                str(s): _mmd2(
                    heat_kernel_matrix(x, x, s),
                    kyy_sum[s],
                    len(test),
                    heat_kernel_matrix(x, test, s),
                )
                for s in scales
            }
            p = mmd_test(
                x, test, scales[-1], n_permutations=int(job["n_permutations"]), seed=seed
            ).p_value
            rows.append({"steps": int(steps), "mmd2": mmd, "p_value": p})
    floor = {}
    val = np.asarray(parts["val"], dtype=np.float64)
    for s in job["mmd_scales"]:
        kvv = heat_kernel_matrix(val, val, float(s))
        floor[str(s)] = _mmd2(
            kvv, kyy_sum[float(s)], len(test), heat_kernel_matrix(val, test, float(s))
        )
    return {
        **{k: job[k] for k in ("catalogue", "seed", "model")},
        "test_nll": test_nll,
        "train_seconds": train_s,
        "nll_seconds": nll_s,
        "rows": rows,
        "floor_val_vs_test": floor,
    }


def _table(results: list[dict[str, Any]], models: list[str], steps: list[int], scale: str) -> str:
    lines = []
    for cat in sorted({r["catalogue"] for r in results}):
        lines.append(
            f"\n{cat}: MMD² (scale s = {scale}) ×1e3, mean over seeds [p-value mean]; test NLL"
        )
        lines.append("model".ljust(16) + "".join(f"N={n}".rjust(16) for n in steps) + "   test NLL")
        for model in models:
            rs = [r for r in results if r["catalogue"] == cat and r["model"] == model]
            if not rs:
                continue
            cells = []
            for i, _ in enumerate(steps):
                m = np.mean([r["rows"][i]["mmd2"][scale] for r in rs]) * 1e3
                p = np.mean([r["rows"][i]["p_value"] for r in rs])
                cells.append(f"{m:8.3f} [{p:4.2f}]".rjust(16))
            nll = [r["test_nll"] for r in rs]
            se = np.std(nll, ddof=1) / math.sqrt(len(nll)) if len(nll) > 1 else float("nan")
            lines.append(model.ljust(16) + "".join(cells) + f"   {np.mean(nll):+.3f} ± {se:.3f}")
        fl = [r["floor_val_vs_test"][scale] for r in results if r["catalogue"] == cat]
        lines.append(f"floor (val vs test events): {np.mean(fl) * 1e3:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalogues", nargs="+", default=["earthquake", "fire"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--total-steps", type=int, default=3000)
    parser.add_argument("--short-s", type=float, default=0.3)
    parser.add_argument("--iterations", type=int, nargs="+", default=[2, 4])
    parser.add_argument(
        "--mean-matching",
        type=int,
        nargs="*",
        default=[2],
        help="bridge iterations also trained with the mean-matching loss",
    )
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 50, 100, 300])
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--mmd-scales", type=float, nargs="+", default=[0.01, 0.1])
    parser.add_argument("--n-permutations", type=int, default=100)
    parser.add_argument("--sim-paths", type=int, default=10000)
    parser.add_argument("--sim-steps", type=int, default=50)
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--data-root", type=Path, default=ROOT, help="project holding data/ (processed, splits)"
    )
    args = parser.parse_args(argv)
    models = ["rsgm_long", "rsgm_short"] + [f"bridge_{k}" for k in args.iterations if k > 1]
    models += [f"bridge_{k}_mm" for k in args.mean_matching if k > 1]
    common = {
        "total_steps": args.total_steps,
        "short_s": args.short_s,
        "steps": args.steps,
        "n_samples": args.n_samples,
        "mmd_scales": args.mmd_scales,
        "n_permutations": args.n_permutations,
        "sim_paths": args.sim_paths,
        "sim_steps": args.sim_steps,
        "rtol": args.rtol,
        "atol": args.atol,
        "data_root": str(args.data_root.resolve()),
    }
    jobs = []
    for cat in args.catalogues:
        for seed in args.seeds:
            for model in models:
                its = int(model.split("_")[1]) if model.startswith("bridge") else 1
                jobs.append(
                    {**common, "catalogue": cat, "seed": seed, "model": model, "iterations": its}
                )
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(run_job, jobs))
    wall = time.perf_counter() - t0
    print(
        f"bridge_steps: {len(jobs)} jobs in {wall / 60:.1f} min on {args.workers} workers; "
        f"total training steps per model {args.total_steps}, short horizon s(T) = "
        f"{args.short_s}, {args.n_samples} samples per N"
    )
    for scale in [str(s) for s in args.mmd_scales]:
        print(_table(results, models, args.steps, scale))
    print(
        "\ntraining seconds per model (mean over jobs): "
        + ", ".join(
            f"{m} {np.mean([r['train_seconds'] for r in results if r['model'] == m]):.0f}"
            for m in models
        )
    )
    if args.out is not None:
        payload = {
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "wall_seconds": wall,
            "results": results,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
