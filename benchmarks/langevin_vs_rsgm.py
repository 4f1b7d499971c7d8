"""rsgm_langevin against rsgm at equal training steps: 4 catalogues x 5 seeds, paired by seed.

Both models take the default profile's config from params.yaml (``train.common`` <-
``train.<model>``) with ``optim.steps`` set to ``--steps`` (equal for both); each seed trains on
its own split and is scored by the PF-ODE test NLL (nats per point, area measure of the unit
sphere). Also printed, per catalogue (seed 0): the Langevin reference's fitted centre and scale,
the test NLL of the reference law alone, and the prior mismatch of both forward processes:
the exact heat-kernel bound for Brownian motion and the radial Monte Carlo lower bound
(:mod:`pipeline.sde.prior_mismatch`) for Langevin, from the training points.

Usage::

    .venv/bin/python benchmarks/langevin_vs_rsgm.py --steps 1500 --workers 2 \
        > reports/benchmarks/langevin_vs_rsgm.txt
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CATALOGUES = ("volcano", "earthquake", "flood", "fire")
MODELS = ("rsgm", "rsgm_langevin")


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train and score one (catalogue, model, seed); module-level for the process pool."""
    import torch

    from pipeline.checkpoints import load_checkpoint_weights
    from pipeline.config.train import TrainConfig
    from pipeline.data.splits import load_split
    from pipeline.likelihood import pf_ode_logp
    from pipeline.training import train
    from pipeline.variants import build_manifold, build_schedule, get_variant

    torch.set_num_threads(1)
    seed, model = int(job["seed"]), job["model"]
    if model == "rsgm_ism":  # the control: Brownian motion, trained by the same ISM loss
        model = "rsgm"
    parts = load_split(
        ROOT / f"data/processed/{job['catalogue']}.nc",
        ROOT / f"data/splits/{job['catalogue']}.csv",
        seed,
    )
    data = torch.as_tensor(parts["train"], dtype=torch.float32)
    test = torch.as_tensor(parts["test"], dtype=torch.float32)
    config = get_variant(model).resolve(job["config"], data)
    manifold = build_manifold(config.get("manifold"))
    schedule = build_schedule(config["schedule"])
    process = get_variant(model).build_process(config, manifold, schedule)
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
    logp, nfe = pf_ode_logp(score_fn, process, test, rtol=1e-5, atol=1e-5)
    shutil.rmtree(out_dir, ignore_errors=True)
    row: dict[str, Any] = {
        "catalogue": job["catalogue"],
        "model": job["model"],
        "seed": seed,
        "nll": float(-logp.double().mean()),
        "nfe": nfe,
        "train_s": result.wall_seconds,
        "eval_s": time.perf_counter() - start,
    }
    if model == "rsgm_langevin":
        row["reference_nll"] = float(-process.reference_logp(test.double()).mean())
        row["mu"] = config["process"]["mu"]
        row["gamma"] = config["process"]["gamma"]
        if seed == 0:
            from pipeline.sde.prior_mismatch import radial_prior_kl

            gen = torch.Generator().manual_seed(0)
            x0 = data.double().repeat(max(1, 40000 // data.shape[0]), 1)
            row["prior_kl"] = radial_prior_kl(
                process, x0, process.potential.invariant, n_steps=200, generator=gen
            )
    return row


def _paired(a: list[float], b: list[float]) -> tuple[float, float]:
    d = np.asarray(b) - np.asarray(a)
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.nan
    return float(d.mean()), se


def main() -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--catalogues", nargs="+", default=list(CATALOGUES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--ism-control",
        action="store_true",
        help="instead: rsgm trained by rsgm_langevin's ISM loss (Brownian motion, random-walk "
        "draws) against rsgm, to separate the loss from the reference",
    )
    args = parser.parse_args()
    models = ("rsgm", "rsgm_ism") if args.ism_control else MODELS

    from pipeline.config import read_yaml_mapping
    from pipeline.sde.heat_kernel import prior_kl_uniform
    from pipeline.sde.schedules import make_schedule
    from stages.train_config import model_config

    params = read_yaml_mapping(ROOT / "params.yaml")["train"]
    tmp = Path(tempfile.mkdtemp(prefix="langevin_bench_"))
    lang_loss = params["rsgm_langevin"]["loss"]

    def config_of(cat: str, model: str) -> dict[str, Any]:
        if model != "rsgm_ism":
            return model_config(params, cat, model)
        cfg = model_config(params, cat, "rsgm")
        return {**cfg, "loss": {**lang_loss}}

    jobs = [
        {
            "catalogue": cat,
            "model": model,
            "seed": seed,
            "steps": args.steps,
            "config": config_of(cat, model),
            "out_dir": str(tmp / f"{cat}-{model}-{seed}"),
        }
        for cat in args.catalogues
        for seed in args.seeds
        for model in models
    ]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = list(pool.map(run_job, jobs))
    wall = time.perf_counter() - start
    print(json.dumps(rows), file=sys.stderr)  # the per-seed rows, should the table fail
    schedule = make_schedule(dict(params["common"]["schedule"]))
    import torch

    s_end = float(schedule.heat_time(torch.tensor(schedule.T, dtype=torch.float64)))
    other = models[1]
    print(
        f"rsgm vs {other}, {args.steps} steps each, seeds {args.seeds}, "
        f"{args.workers} workers, 1 torch thread per job; wall {wall / 60:.1f} min"
    )
    lang = params["rsgm_langevin"]
    if args.ism_control:
        print(f"rsgm_ism: rsgm (Brownian motion to uniform) with loss {lang['loss']}")
    else:
        print(f"rsgm_langevin: process {lang['process']}, loss {lang['loss']}")
    print(
        "prior mismatch, Brownian motion to uniform (exact, point mass): "
        f"{prior_kl_uniform(s_end):.4f} nats"
    )
    print()
    print(
        f"{'catalogue':<11}{'rsgm NLL':>18}{other + ' NLL':>20}{'diff (other - R)':>18}"
        f"{'ref. NLL':>10}{'gamma':>8}{'KL(pT|ref)':>12}{'ms/step R':>11}{'ms/step O':>11}"
    )
    for cat in args.catalogues:
        by = {m: sorted((r for r in rows if r["catalogue"] == cat and r["model"] == m),
                        key=lambda r: r["seed"]) for m in models}  # fmt: skip
        r_nll = [r["nll"] for r in by["rsgm"]]
        l_nll = [r["nll"] for r in by[other]]
        diff, se = _paired(r_nll, l_nll)
        ref = float(np.mean([r.get("reference_nll", math.nan) for r in by[other]]))
        gamma = float(np.mean([r.get("gamma", math.nan) for r in by[other]]))
        kl = next((r["prior_kl"] for r in by[other] if "prior_kl" in r), math.nan)
        ms = {
            m: 1000 * float(np.median([r["train_s"] for r in by[m]])) / args.steps for m in models
        }

        def fmt(v: list[float]) -> str:
            sd = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
            return f"{np.mean(v):+.3f} ± {sd:.3f}"

        print(
            f"{cat:<11}{fmt(r_nll):>18}{fmt(l_nll):>20}{f'{diff:+.3f} ± {se:.3f}':>18}"
            f"{ref:>10.3f}{gamma:>8.3f}{kl:>12.4f}{ms['rsgm']:>11.1f}{ms[other]:>11.1f}"
        )
    print()
    print(f"NLL: mean ± sd over seeds; diff: paired mean ± SE (negative: {other} better).")
    print(
        "ref. NLL: the Riemannian-normal reference alone; gamma: its fitted scale "
        "(mean over seeds)."
    )


if __name__ == "__main__":
    main()
