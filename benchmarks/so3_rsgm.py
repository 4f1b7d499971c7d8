"""RSGM on SO(3) with the unchanged engine: the seed's wrapped-normal mixture benchmark.

Data: :func:`pipeline.so3.wrapped.reference_mixture` (M Haar means, σ = 1/√Gamma(100), equal
weights), ``--n-train`` training and ``--n-test`` test draws. Model: the same tangent MLP as on
S² (input R⁹, output projected onto T_R SO(3)), trained by :func:`pipeline.training.train`
with :func:`pipeline.losses.make_rsgm_loss` (DSM with the Varadhan target or ISM with the
exact divergence; X_s | x0 by the geodesic random walk: the engine's exact heat-kernel target
and sampler are S²-only today). NLL by the same probability-flow ODE (uniform Haar base).

Prints the test log-likelihood per point of the model and of the true density on the same
points, in the Frobenius measure of :class:`pipeline.so3.manifold.SO3` (vol 16√2π²) and in the
angle measure (vol 8π²: add log 2√2), beside the published RSGM rows (0.89 / 0.20 / −0.49 for
M = 16 / 32 / 64).

Usage::

    .venv/bin/python benchmarks/so3_rsgm.py --m 16 --steps 4000 --seeds 0
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from pipeline.config.train import TrainConfig  # noqa: E402
from pipeline.likelihood import pf_ode_logp  # noqa: E402
from pipeline.losses import make_rsgm_loss  # noqa: E402
from pipeline.models import build_score_model  # noqa: E402
from pipeline.sde.brownian import BrownianMotion  # noqa: E402
from pipeline.sde.schedules import LinearBeta  # noqa: E402
from pipeline.so3.manifold import SO3  # noqa: E402
from pipeline.so3.wrapped import reference_mixture  # noqa: E402
from pipeline.training import train  # noqa: E402

PUBLISHED = {16: 0.89, 32: 0.20, 64: -0.49}
LOG_ANGLE_SHIFT = math.log(2.0 * math.sqrt(2.0))  # log of vol_F / vol_angle


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, float]:
    manifold = SO3()
    law = reference_mixture(args.m, seed=1000 + seed)
    gen = torch.Generator().manual_seed(seed)
    x_train, _ = law.sample(args.n_train, gen)
    x_test, _ = law.sample(args.n_test, gen)
    schedule = LinearBeta(beta_0=1e-3, beta_1=args.beta_1, T=1.0)
    torch.manual_seed(seed)
    net = build_score_model(
        manifold, {"hidden": args.hidden, "depth": args.depth, "activation": "sine"}, schedule
    )
    loss = make_rsgm_loss(
        {"kind": args.loss, "t_sampler": "log_uniform", "eps": 1e-3, "grw_steps": 10},
        BrownianMotion(manifold, schedule),
    )
    cfg = TrainConfig(
        steps=args.steps,
        batch_size=512,
        lr=5e-4,
        warmup_steps=100,
        lr_schedule="wsd",
        checkpoint_every=10**9,
        log_every=100,
        seed=seed,
        device="cpu",
    )
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = train(net, loss, x_train.float(), cfg, Path(tmp), progress=False)
    train_s = time.perf_counter() - t0
    net.load_state_dict(result.ema_state)
    net.eval()
    t0 = time.perf_counter()
    logp, nfe = pf_ode_logp(
        lambda x, t: net(x, t),
        BrownianMotion(manifold, schedule),
        x_test.float(),
        rtol=1e-4,
        atol=1e-4,
    )
    eval_s = time.perf_counter() - t0
    model_ll = float(logp.double().mean())
    true_ll = float(law.log_prob(x_test).mean())
    return {
        "seed": seed,
        "model_ll": model_ll,
        "true_ll": true_ll,
        "train_s": train_s,
        "eval_s": eval_s,
        "nfe": float(nfe),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--beta-1", type=float, default=30.0, help="heat time s(1) ≈ β₁/2")
    parser.add_argument("--loss", choices=("dsm", "ism"), default="dsm")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"SO(3) RSGM, M = {args.m}, {args.steps} steps, loss {args.loss}, s(1) ≈ "
        f"{args.beta_1 / 2:.1f}; log-likelihood per test point (Frobenius measure; angle "
        f"measure = + {LOG_ANGLE_SHIFT:.3f})"
    )
    rows = [run_seed(args, seed) for seed in args.seeds]
    for r in rows:
        print(
            f"seed {r['seed']}: model {r['model_ll']:+.3f}  true density {r['true_ll']:+.3f}  "
            f"gap {r['true_ll'] - r['model_ll']:.3f}  (train {r['train_s']:.0f} s, NLL "
            f"{r['eval_s']:.0f} s, NFE {r['nfe']:.0f})"
        )
    mean = sum(r["model_ll"] for r in rows) / len(rows)
    true = sum(r["true_ll"] for r in rows) / len(rows)
    print(
        f"mean: model {mean:+.3f} (angle measure {mean + LOG_ANGLE_SHIFT:+.3f}), true "
        f"{true:+.3f} (angle {true + LOG_ANGLE_SHIFT:+.3f}); published RSGM "
        f"{PUBLISHED.get(args.m, float('nan')):+.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
