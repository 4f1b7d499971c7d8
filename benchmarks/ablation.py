"""Paired ablation of training-recipe choices over seeds and catalogues (test NLL).

Each variant is the pipeline's config (``train.common`` <- ``train.<model>`` <-
``train.overrides.<catalogue>`` from params.yaml) with ``KEY=VALUE`` overrides. Every
(catalogue, variant, seed) trains for the same number of steps (deterministic, so a rerun
gives the same numbers) on the published split of that seed and is scored by the test NLL of
its final EMA weights (PF-ODE, dopri5 1e-5, exact divergence, uniform base). Variants are
compared with the first one *paired by seed*: the mean difference and its standard error
(sd of the per-seed differences / √n), so split-to-split variation cancels.

Jobs run in parallel processes (one torch thread each); each job's result is stored in the
work folder, so an interrupted ablation continues where it stopped. Run::

    python benchmarks/ablation.py --catalogues earthquake fire --seeds 0 1 2 --steps 4000 \\
        --variant base --variant cosine:optim.lr_schedule=cosine \\
        --variant wide:network.hidden=512,optim.lr=3e-4 --out reports/benchmarks/ablation.json

Needs ``data/processed/<catalogue>.nc`` and ``data/splits/<catalogue>.csv`` (``dvc repro
split@<catalogue>``) under ``--data-root`` (default: this project).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._overrides import apply_overrides, parse_variant  # noqa: E402


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train and score one (catalogue, variant, seed); module-level for the process pool."""
    import torch

    from pipeline.checkpoints import load_checkpoint_weights
    from pipeline.config.train import TrainConfig
    from pipeline.data.splits import load_split
    from pipeline.likelihood import pf_ode_logp
    from pipeline.training import train
    from pipeline.variants import build_manifold, build_schedule, get_variant

    torch.set_num_threads(1)
    config, seed, model = job["config"], int(job["seed"]), job["model"]
    root = Path(job["data_root"])
    parts = load_split(
        root / f"data/processed/{job['catalogue']}.nc",
        root / f"data/splits/{job['catalogue']}.csv",
        seed,
    )
    data = torch.as_tensor(parts["train"], dtype=torch.float32)
    test = torch.as_tensor(parts["test"], dtype=torch.float32)
    manifold = build_manifold(config.get("manifold"))
    schedule = build_schedule(config["schedule"])
    net = get_variant(model).network(config, manifold, seed=seed)
    loss_fn = get_variant(model).build_loss(config, manifold, schedule)
    out_dir = Path(job["out_dir"])
    shutil.rmtree(out_dir, ignore_errors=True)
    optim = {**config.get("optim", {}), "steps": int(job["steps"]), "seed": seed, "device": "cpu"}
    result = train(net, loss_fn, data, TrainConfig.from_dict(optim), out_dir, progress=False)
    eval_net = get_variant(model).network(config, manifold)
    eval_net.load_state_dict(load_checkpoint_weights(out_dir, "ema"))
    eval_net.eval()
    score_fn = get_variant(model).score_field(eval_net, manifold, schedule)
    start = time.perf_counter()
    logp, nfe = pf_ode_logp(
        score_fn,
        get_variant(model).build_process(config, manifold, schedule),
        test,
        rtol=1e-5,
        atol=1e-5,
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    return {
        "catalogue": job["catalogue"],
        "variant": job["variant"],
        "seed": seed,
        "steps": result.steps,
        "train_seconds": result.wall_seconds,
        "ms_per_step": 1000.0 * result.wall_seconds / max(result.steps, 1),
        "test_nll": float(-logp.double().mean()),
        "nfe": int(nfe),
        "eval_seconds": time.perf_counter() - start,
        "final_loss": result.loss_history[-1][1] if result.loss_history else None,
    }


def paired(base: list[float], other: list[float]) -> tuple[float, float | None]:
    """Mean of the per-seed differences ``other - base`` and its standard error (None for n=1).

    Args:
        base: Baseline values, one per seed.
        other: The variant's values for the same seeds, in the same order.

    Returns:
        ``(mean difference, standard error)``.
    """
    diffs = [b - a for a, b in zip(base, other, strict=True)]
    mean = sum(diffs) / len(diffs)
    if len(diffs) < 2:
        return mean, None
    var = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
    return mean, math.sqrt(var / len(diffs))


def format_table(results: list[dict[str, Any]], variants: list[str], seeds: list[int]) -> str:
    """One block per catalogue: mean NLL over seeds, paired Δ vs the first variant ± SE."""
    lines = []
    for catalogue in dict.fromkeys(r["catalogue"] for r in results):
        by = {(r["variant"], r["seed"]): r for r in results if r["catalogue"] == catalogue}
        lines.append(f"{catalogue} (seeds {seeds}; Δ = variant - {variants[0]}, paired by seed)")
        lines.append(
            f"  {'variant':<24} {'test NLL':>9} {'Δ':>8} {'SE(Δ)':>7} {'ms/step':>8} {'train s':>8}"
        )
        base = [by[(variants[0], s)]["test_nll"] for s in seeds if (variants[0], s) in by]
        for variant in variants:
            rows = [by[(variant, s)] for s in seeds if (variant, s) in by]
            if len(rows) != len(seeds) or len(base) != len(seeds):
                lines.append(f"  {variant:<24} incomplete ({len(rows)} of {len(seeds)} seeds)")
                continue
            nll = [r["test_nll"] for r in rows]
            delta, se = paired(base, nll)
            se_text = f"{se:7.3f}" if se is not None else f"{'—':>7}"
            ms = sum(r["ms_per_step"] for r in rows) / len(rows)
            secs = sum(r["train_seconds"] for r in rows) / len(rows)
            lines.append(
                f"  {variant:<24} {sum(nll) / len(nll):>+9.3f} {delta:>+8.3f} {se_text} "
                f"{ms:>8.2f} {secs:>8.0f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the ablation (resuming finished jobs), print the table, write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogues", nargs="+", default=["earthquake", "fire"])
    parser.add_argument("--model", default="rsgm")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument(
        "--variant",
        action="append",
        default=None,
        metavar="NAME[:KEY=VALUE,...]",
        help="a variant (the first is the baseline); values are YAML, e.g. optim.lr=3e-4",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data-root", type=Path, default=ROOT)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geosgm_ablation"))
    parser.add_argument("--out", type=Path, default=None, help="JSON record (optional)")
    args = parser.parse_args(argv)

    from stages.common import load_params
    from stages.train_config import model_config

    train_params = load_params(ROOT / "params.yaml")["train"]
    variants = [parse_variant(v) for v in (args.variant or ["base"])]
    names = [name for name, _ in variants]
    if len(set(names)) != len(names):
        parser.error(f"variant names must differ: {names}")
    jobs = []
    for catalogue in args.catalogues:
        base = model_config(train_params, catalogue, args.model)
        for name, overrides in variants:
            config = apply_overrides(base, overrides)
            for seed in args.seeds:
                key = f"{catalogue}-{name}-seed{seed}"
                jobs.append(
                    {
                        "key": key,
                        "catalogue": catalogue,
                        "variant": name,
                        "seed": seed,
                        "model": args.model,
                        "config": config,
                        "steps": args.steps,
                        "data_root": str(args.data_root),
                        "out_dir": str(args.workdir / "models" / key),
                    }
                )
    done_dir = args.workdir / "results"
    done_dir.mkdir(parents=True, exist_ok=True)
    results, todo = [], []
    for job in jobs:
        record = done_dir / f"{job['key']}.json"
        if record.is_file():
            saved = json.loads(record.read_text())
            if saved.get("job_config") == job["config"] and saved.get("steps") == job["steps"]:
                results.append(saved)
                continue
        todo.append(job)
    print(f"{len(jobs)} jobs, {len(jobs) - len(todo)} already done", flush=True)
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        futures = {pool.submit(run_job, job): job for job in todo}
        for future in as_completed(futures):
            job = futures[future]
            res = {**future.result(), "job_config": job["config"]}
            tmp = done_dir / f".{job['key']}.json.tmp"
            tmp.write_text(json.dumps(res, indent=1) + "\n")
            tmp.replace(done_dir / f"{job['key']}.json")
            results.append(res)
            print(
                f"  {job['key']}: test NLL {res['test_nll']:+.3f} "
                f"({res['ms_per_step']:.2f} ms/step)",
                flush=True,
            )
    results.sort(key=lambda r: (r["catalogue"], names.index(r["variant"]), r["seed"]))
    table = format_table(results, names, args.seeds)
    header = f"{args.model}, {args.steps} steps per seed, {args.workers} worker process(es)"
    print(header + "\n" + table)
    if args.out is not None:
        record = {
            "model": args.model,
            "steps": args.steps,
            "seeds": args.seeds,
            "variants": {name: overrides for name, overrides in variants},
            "results": results,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        args.out.with_suffix(".txt").write_text(header + "\n" + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
