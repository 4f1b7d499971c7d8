"""Cost of one training step against the network's own forward + backward + Adam step.

Issue 13's first target: the whole trainer step within 1.25x of the bare network's step at the
same size. Both are measured side by side in one process, interleaved round by round, so a
busy machine slows both alike (the ratio is what to read; quote medians). Parts of the step are
timed on their own so the overhead can be attributed:

* ``bare``: the model's forward on (x, t) of the batch, a squared-output loss, backward, fused
  Adam (what any trainer of this network pays);
* ``step``: the trainer's whole step for the variant (index draw, the variant's loss with its
  time draw, noise sampler and target, backward, Adam, LR schedule, EMA, loss window);
* ``noise``: the time draw, heat time and exact noise sampler of the loss alone;
* ``target``: the exact heat-kernel score target alone;
* ``ema``: the EMA update alone.

Run::

    python benchmarks/step_cost.py --threads 1 2 --rounds 7 --steps 100 \\
        --out reports/benchmarks/step_cost.txt

The variant's config is params.yaml's ``train.common`` <- ``train.<model>`` (default rsgm).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _timed(fn: Callable[[], object], steps: int) -> float:
    """Milliseconds per call of ``fn`` over ``steps`` calls (after 5 warm-up calls)."""
    for _ in range(5):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return 1e3 * (time.perf_counter() - start) / steps


def measure(model: str, threads: int, rounds: int, steps: int) -> dict[str, list[float]]:
    """Per-round ms per call of each part (see the module docstring)."""
    import torch

    from pipeline.config import read_yaml_mapping
    from pipeline.config.train import TrainConfig, lr_factor
    from pipeline.losses import TimeSampler
    from pipeline.models.ema import EMA
    from pipeline.transition import make_noise_sampler, make_score_target
    from pipeline.variants import build_manifold, build_schedule, get_variant
    from stages.train_config import model_config

    torch.set_num_threads(threads)
    params = read_yaml_mapping(ROOT / "params.yaml")
    config = model_config(params["train"], "earthquake", model)
    manifold = build_manifold(config.get("manifold"))
    schedule = build_schedule(config["schedule"])
    process = get_variant(model).build_process(config, manifold, schedule)
    cfg = TrainConfig.from_dict({**config["optim"], "seed": 0, "device": "cpu"})
    gen = torch.Generator().manual_seed(0)
    data = manifold.random_uniform(4096, dtype=torch.float32)
    batch = cfg.batch_size

    def make_trainee() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        net = get_variant(model).network(config, manifold, seed=0)
        return net, torch.optim.Adam(list(net.parameters()), lr=cfg.lr, fused=True)

    bare_net, bare_opt = make_trainee()
    xb = data[:batch]
    tb = torch.rand(batch, generator=gen) * (schedule.T - 1e-3) + 1e-3

    def bare() -> None:
        out = bare_net(xb, tb)
        loss = out.pow(2).sum(-1).mean()
        bare_opt.zero_grad(set_to_none=True)
        loss.backward()
        bare_opt.step()

    net, opt = make_trainee()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: lr_factor(k, cfg))
    ema = EMA(net, cfg.ema_decay)
    loss_fn = get_variant(model).build_loss(config, manifold, schedule)
    window = torch.zeros((), dtype=torch.float64)

    def step() -> None:
        idx = torch.randint(data.shape[0], (batch,), generator=gen)
        loss = loss_fn(net, data[idx], gen)
        float(loss.detach())  # the trainer's per-step finiteness check on CPU
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        ema.update()
        window.add_(loss.detach().to(torch.float64))

    loss_cfg = dict(config.get("loss", {}))
    t_sampler = TimeSampler(
        loss_cfg.get("t_sampler", "log_uniform"), float(loss_cfg.get("eps", 1e-3)), schedule.T
    )
    sampler = make_noise_sampler(process, "exact")
    x0 = data[:batch]
    t0 = t_sampler.sample(batch, gen, device=x0.device, dtype=x0.dtype)
    s0 = schedule.heat_time(t0)
    xt0 = sampler(x0, s0, gen)
    # The variant's own DSM target (params: loss.target), as its step computes it.
    score_target = make_score_target(
        process, loss_cfg.get("target", "exact"), eps=float(loss_cfg.get("eps", 1e-3))
    )
    score_target(xt0, x0, s0)  # builds a table target's table outside the timing

    def noise() -> None:
        t = t_sampler.sample(batch, gen, device=x0.device, dtype=x0.dtype)
        sampler(x0, schedule.heat_time(t), gen)

    def target() -> None:
        score_target(xt0, x0, s0)

    parts: dict[str, Callable[[], None]] = {
        "bare": bare,
        "step": step,
        "noise": noise,
        "target": target,
        "ema": ema.update,
    }
    out: dict[str, list[float]] = {k: [] for k in parts}
    for _ in range(rounds):
        for name, fn in parts.items():
            out[name].append(_timed(fn, steps))
    return out


def main(argv: list[str] | None = None) -> int:
    """Print (and optionally write) the table; return 0."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="rsgm")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    lines = [
        f"benchmarks/step_cost.py --model {args.model} --rounds {args.rounds} "
        f"--steps {args.steps}: ms per call, median over rounds (min-max); ratio = step / bare "
        "per round, median"
    ]
    for threads in args.threads:
        res = measure(args.model, threads, args.rounds, args.steps)
        ratios = [s / b for s, b in zip(res["step"], res["bare"], strict=True)]
        lines.append(f"threads {threads}:")
        for name, values in res.items():
            lines.append(
                f"  {name:<7} {statistics.median(values):7.2f} ms "
                f"({min(values):.2f}-{max(values):.2f})"
            )
        lines.append(
            f"  step/bare ratio {statistics.median(ratios):.2f} "
            f"({min(ratios):.2f}-{max(ratios):.2f}); target <= 1.25"
        )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out is not None:
        from pipeline.atomic import atomic_write

        atomic_write(args.out, lambda tmp: tmp.write_text(text), suffix=".txt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
