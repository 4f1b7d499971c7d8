"""RSGM on a synthetic von Mises–Fisher mixture on S², where the true density is known.

Makes (seeded) and stores a vMF mixture dataset with sharp and broad components (κ from 1 to
200), trains the plain RSGM (sine MLP 256×4, exact heat-kernel DSM targets: closed form or its
table, ``--target``; log-uniform t, batch 512, EMA 0.999, constant Adam 5e-4) for a wall-clock
budget, and at each checkpoint
minute prints the test NLL of the EMA model (float32 PF-ODE, dopri5, rtol = atol = 1e-5, exact
divergence, uniform base) minus the NLL of the true density on the same points, with the cost
of training (ms per step) and of the NLL (seconds per 1000 points, NFE).

Known bars on a quiet 2-core CPU (DESIGN.md): gap 0.014 nats after 2 minutes, 0.006 after 5;
~8 ms per step. Run: ``.venv/bin/python benchmarks/synthetic_vmf.py --minutes 1 2 5 10``;
``--lr-schedule wsd`` trains a fresh run per budget that anneals at its end.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import torch
from torch import Tensor

from pipeline.atomic import atomic_write
from pipeline.config.train import TrainConfig
from pipeline.geometry import Sphere
from pipeline.geometry.vmf import sample_vmf_rows, vmf_logp_s2_torch
from pipeline.likelihood import pf_ode_logp
from pipeline.losses import make_rsgm_loss
from pipeline.models import build_score_model
from pipeline.sde.brownian import BrownianMotion  # noqa: E402
from pipeline.sde.heat_kernel import heat_kernel_mixture_logp, prior_kl_uniform
from pipeline.sde.schedules import LinearBeta
from pipeline.training import train

#: Mixture components: concentrations (sharp to broad) and weights.
KAPPAS = (1.0, 5.0, 20.0, 50.0, 100.0, 200.0)
WEIGHTS = (0.25, 0.2, 0.2, 0.15, 0.1, 0.1)
DEFAULT_OUT = Path("data/synthetic/vmf_mixture.csv")


def vmf_mixture_logpdf(x: Tensor, mu: Tensor, kappa: Tensor, weights: Tensor) -> Tensor:
    """Log-density of the mixture, shape (N,)."""
    return torch.logsumexp(vmf_logp_s2_torch(x, mu, kappa) + torch.log(weights), dim=-1)


def sample_vmf_mixture(
    n: int, mu: Tensor, kappa: Tensor, weights: Tensor, generator: torch.Generator
) -> Tensor:
    """Exact draws from a vMF mixture on S² (a component per point, then its exact draw).

    Args:
        n: Number of points.
        mu: Tensor, shape (K, 3) (sets dtype and device).
        kappa: Tensor, shape (K,).
        weights: Tensor, shape (K,), summing to 1.
        generator: Random generator.

    Returns:
        Tensor, shape (n, 3), points on S² (float64 for :func:`make_dataset`).
    """
    comp = torch.multinomial(weights, n, replacement=True, generator=generator)
    return sample_vmf_rows(mu[comp], kappa[comp], generator)


class FlooredHeatTime:
    """A schedule whose heat time is floored at ``std_floor``², for the score's scaling only."""

    def __init__(self, schedule: LinearBeta, std_floor: float) -> None:
        self.schedule, self.floor = schedule, float(std_floor) ** 2

    def heat_time(self, t: Tensor) -> Tensor:
        """max(s(t), std_floor²), shape of t."""
        return self.schedule.heat_time(t).clamp_min(self.floor)


def make_dataset(seed: int, n_train: int, n_test: int) -> dict[str, Tensor]:
    """Seeded vMF-mixture dataset with its exact log-density.

    Returns:
        Dict with ``train`` (n_train, 3), ``test`` (n_test, 3), ``test_logp`` (n_test,),
        ``mu`` (K, 3), ``kappa`` (K,), ``weights`` (K,); float64.
    """
    gen = torch.Generator().manual_seed(seed)
    mu = torch.randn(len(KAPPAS), 3, dtype=torch.float64, generator=gen)
    mu = mu / mu.norm(dim=-1, keepdim=True)
    kappa = torch.tensor(KAPPAS, dtype=torch.float64)
    weights = torch.tensor(WEIGHTS, dtype=torch.float64)
    weights = weights / weights.sum()
    train_x = sample_vmf_mixture(n_train, mu, kappa, weights, gen)
    test_x = sample_vmf_mixture(n_test, mu, kappa, weights, gen)
    return {
        "train": train_x,
        "test": test_x,
        "test_logp": vmf_mixture_logpdf(test_x, mu, kappa, weights),
        "mu": mu,
        "kappa": kappa,
        "weights": weights,
    }


def store_dataset(data: dict[str, Tensor], path: Path) -> None:
    """Write the points and their true log-density as CSV (split,x,y,z,true_logp)."""
    rows = []
    for split in ("train", "test"):
        x = data[split]
        lp = vmf_mixture_logpdf(x, data["mu"], data["kappa"], data["weights"])
        for p, v in zip(x.tolist(), lp.tolist(), strict=True):
            rows.append(f"{split},{p[0]:.12f},{p[1]:.12f},{p[2]:.12f},{v:.10f}")
    header = "# vMF mixture on S2; kappas=" + ";".join(f"{k:g}" for k in KAPPAS)
    text = header + "\nsplit,x,y,z,true_logp\n" + "\n".join(rows) + "\n"
    # A unique temporary file: two runs started together write the same dataset.
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 2.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=10000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--n-eval", type=int, default=1000, help="test points in the NLL")
    ap.add_argument("--beta1", type=float, default=5.0, help="β(1); s(1) = (β0 + β1)/2")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--activation", default="sine")
    ap.add_argument("--omega", type=float, default=10.0)
    ap.add_argument("--time-embedding", default="log")
    ap.add_argument(
        "--score-scaling",
        choices=["none", "inv_std"],
        default="inv_std",
        help="inv_std: network output divided by sqrt(s(t)) (the pipeline default)",
    )
    ap.add_argument(
        "--std-floor",
        type=float,
        default=0.0,
        help="inv_std: divide by max(sqrt(s(t)), this) instead (radians; 0: no floor), so "
        "the smallest times cannot take the large outputs that memorise training points",
    )
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument(
        "--target",
        choices=["exact", "tabulated"],
        default="tabulated",
        help="DSM target: the closed-form heat-kernel score or its table (the pipeline default)",
    )
    ap.add_argument(
        "--base",
        choices=["uniform", "heat"],
        default="uniform",
        help="PF-ODE base: uniform, or the heat kernel at s(1) of the training points",
    )
    ap.add_argument(
        "--lr-schedule",
        choices=["constant", "wsd", "cosine"],
        default="constant",
        help="constant: one run continued to each budget; wsd/cosine: a fresh run per budget "
        "whose step count fills it (steps/s measured on a 300-step warm-up run), so the "
        "learning rate anneals to 0 at the end of each budget",
    )
    ap.add_argument(
        "--steps-per-s",
        type=float,
        default=None,
        help="wsd/cosine: the step rate that sets each budget's steps, instead of the probe "
        "(the quiet machine's rate, when the benchmark shares the cores with other work)",
    )
    ap.add_argument(
        "--by-time",
        action="store_true",
        help="wsd/cosine: bound each fresh run by max_seconds (the budget) instead of a step "
        "count; the schedule anneals over the end of the time budget (no step-rate probe)",
    )
    ap.add_argument(
        "--kde",
        action="store_true",
        help="also the incumbent kde (centres: the first 90%% of train, chosen on the last "
        "10%%) and, at each budget, the ensemble w·kde + (1 − w)·rsgm with w on those 10%%",
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the dataset is stored")
    ap.add_argument("--workdir", type=Path, default=None, help="checkpoints (default: temp)")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    data = make_dataset(args.seed, args.n_train, args.n_test)
    store_dataset(data, args.out)
    sphere = Sphere(2)
    sched = LinearBeta(beta_0=1e-3, beta_1=args.beta1, T=1.0)
    s_T = sched.heat_time(1.0)
    print(
        f"dataset: {args.n_train} train / {args.n_test} test, kappas {KAPPAS}, stored in {args.out}"
        f"\nschedule: linear beta 1e-3..{args.beta1}, s(1) = {s_T:.3f}, prior KL bound "
        f"{prior_kl_uniform(s_T):.4f} nats; threads {torch.get_num_threads()}",
        flush=True,
    )
    torch.manual_seed(args.seed)
    model_cfg = {
        "hidden": args.hidden,
        "depth": args.depth,
        "activation": args.activation,
        "omega": args.omega,
        "time_embedding": args.time_embedding,
    }
    # The scaled model reads only ``heat_time`` from its schedule.
    scale_sched = cast(
        LinearBeta, FlooredHeatTime(sched, args.std_floor) if args.std_floor > 0 else sched
    )
    model = build_score_model(
        sphere, model_cfg, scale_sched if args.score_scaling == "inv_std" else None
    )
    loss_fn = make_rsgm_loss(
        {"t_sampler": "log_uniform", "target": args.target}, BrownianMotion(sphere, sched)
    )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vmf_bench_"))
    test_x = data["test"][: args.n_eval]
    true_nll = float(-data["test_logp"][: args.n_eval].mean())
    print(f"true test NLL {true_nll:.4f} on {test_x.shape[0]} points", flush=True)
    # The same on training points: a train gap far below the test gap is memorisation.
    train_x = data["train"][: args.n_eval]
    true_train_nll = float(
        -vmf_mixture_logpdf(train_x, data["mu"], data["kappa"], data["weights"]).mean()
    )
    train_pts = data["train"]

    def heat_base(y: Tensor) -> Tensor:
        return heat_kernel_mixture_logp(y.double(), train_pts.to(y.device), s_T).to(y.dtype)

    # None: the process's reference law (uniform for Brownian motion).
    base: Callable[[Tensor], Tensor] | None = heat_base if args.base == "heat" else None
    print(f"base density: {args.base}")
    print("minutes  steps  ms/step   loss     NLL     gap   s/1000pts  NFE  train gap", flush=True)
    initial = copy.deepcopy(model.state_dict())
    kde_val: Tensor | None = None
    kde_test_logp: Tensor | None = None
    kde_val_logp: Tensor | None = None
    if args.kde:
        from pipeline.variants.kde.density import fit_kde

        n_fit = int(0.9 * data["train"].shape[0])
        kde_val = data["train"][n_fit:]
        t0 = time.perf_counter()
        kde = fit_kde(data["train"][:n_fit], kde_val)
        kde_test_logp = kde.density.log_prob(test_x)
        kde_val_logp = kde.density.log_prob(kde_val)
        kde_nll = float(-kde_test_logp.mean())
        print(
            f"kde: test NLL {kde_nll:.4f}, gap {kde_nll - true_nll:.4f} "
            f"(fit {time.perf_counter() - t0:.1f} s; chosen {kde.chosen})",
            flush=True,
        )
    steps_per_s = 0.0
    if args.lr_schedule != "constant" and args.by_time:
        print(f"{args.lr_schedule}: each budget bounded by max_seconds, annealed over its end")
    elif args.lr_schedule != "constant" and args.steps_per_s is not None:
        steps_per_s = args.steps_per_s
        print(f"{args.lr_schedule}: {steps_per_s:.0f} steps/s given (--steps-per-s)")
    elif args.lr_schedule != "constant":
        # One loss call first: it builds the target's table (about 1.4 s), which the step rate
        # must not include (it did until 2026-12-06: budgets came out 0.4x too short).
        loss_fn(model, data["train"][:512].float(), torch.Generator().manual_seed(0))
        probe = TrainConfig(
            steps=300, batch_size=512, lr=args.lr, warmup_steps=100,
            checkpoint_every=10**9, log_every=100, seed=args.seed, device="auto",
        )  # fmt: skip
        warm = train(model, loss_fn, data["train"].float(), probe, workdir / "probe",
                     progress=False)  # fmt: skip
        steps_per_s = warm.steps / warm.wall_seconds
        print(f"{args.lr_schedule}: {steps_per_s:.0f} steps/s measured on {warm.steps} steps")
    try:
        for minutes in sorted(args.minutes):
            if args.lr_schedule == "constant":  # one run, continued to each budget
                cfg = TrainConfig(
                    steps=10**9, max_seconds=60.0 * minutes, batch_size=512, lr=args.lr,
                    warmup_steps=100, lr_schedule="constant", ema_decay=0.999,
                    checkpoint_every=5000, log_every=200, seed=args.seed, device="auto",
                )  # fmt: skip
                run_dir = workdir
            elif args.by_time:  # a fresh run per budget, bounded and annealed by its seconds
                model.load_state_dict(initial)
                cfg = TrainConfig(
                    steps=10**9, max_seconds=60.0 * minutes, batch_size=512, lr=args.lr,
                    warmup_steps=100, lr_schedule=args.lr_schedule, ema_decay=0.999,
                    checkpoint_every=10**9, log_every=200, seed=args.seed, device="auto",
                )  # fmt: skip
                run_dir = workdir / f"budget{minutes:g}"
            else:  # a fresh run per budget, annealed to 0 at its end
                model.load_state_dict(initial)
                cfg = TrainConfig(
                    steps=round(steps_per_s * 60.0 * minutes), batch_size=512, lr=args.lr,
                    warmup_steps=100, lr_schedule=args.lr_schedule, ema_decay=0.999,
                    checkpoint_every=10**9, log_every=200, seed=args.seed, device="auto",
                )  # fmt: skip
                run_dir = workdir / f"budget{minutes:g}"
            res = train(model, loss_fn, data["train"].float(), cfg, run_dir, progress=False)
            ema_model = copy.deepcopy(model)
            ema_model.load_state_dict(res.ema_state)
            ema_model.eval()
            x_eval = test_x.float().to(next(ema_model.parameters()).device)
            t0 = time.perf_counter()
            logp, nfe = pf_ode_logp(
                ema_model, BrownianMotion(sphere, sched), x_eval, rtol=1e-5, atol=1e-5, base=base
            )
            dt = time.perf_counter() - t0
            nll = float(-logp.double().mean())
            train_logp, _ = pf_ode_logp(
                ema_model, BrownianMotion(sphere, sched), train_x.float().to(x_eval.device),
                rtol=1e-5, atol=1e-5, base=base,
            )  # fmt: skip
            train_gap = float(-train_logp.double().mean()) - true_train_nll
            last_loss = res.loss_history[-1][1] if res.loss_history else float("nan")
            ms_step = 1000 * res.wall_seconds / max(res.steps, 1)
            print(
                f"{res.wall_seconds / 60:7.2f} {res.steps:6d} {ms_step:8.2f} "
                f"{last_loss:7.4f} {nll:7.4f} {nll - true_nll:7.4f} "
                f"{1000 * dt / x_eval.shape[0]:9.2f} {nfe:4d} {train_gap:10.4f}",
                flush=True,
            )
            if kde_val is not None and kde_test_logp is not None and kde_val_logp is not None:
                from pipeline.variants.kde_rsgm.mixture import choose_weight, mixture_logp

                val_logp, _ = pf_ode_logp(
                    ema_model, BrownianMotion(sphere, sched), kde_val.float().to(x_eval.device),
                    rtol=1e-5, atol=1e-5, base=base,
                )  # fmt: skip
                w, _ = choose_weight(kde_val_logp.numpy(), val_logp.double().cpu().numpy())
                mix = mixture_logp(kde_test_logp.numpy(), logp.double().cpu().numpy(), w)
                print(
                    f"        kde_rsgm (w = {w:.2f} on kde): NLL {float(-mix.mean()):7.4f} "
                    f"gap {float(-mix.mean()) - true_nll:7.4f}",
                    flush=True,
                )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
