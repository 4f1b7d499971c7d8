"""Prototype: the exact DSM target of S² from a table, against the exact closed form.

``benchmarks/step_cost.py`` attributes most of the trainer step's overhead over the bare
network to the exact heat-kernel target (``heat_kernel_score``: the integral or series form
per row, float64). The target is ∂_c log p_s(θ) · P_x(x0 − x); its scalar factor depends on
(θ, s) only, so it can be tabulated once. Tabulated here:
h(θ, s) = s · ∂_c log p_s(θ) · sin θ / θ (→ 1 as s → 0, Varadhan), on a grid uniform in θ
and in log s, bilinear. This script measures the table's relative error of the target vector
on the training distribution's draws (t log-uniform on [eps, T], x_t exact) and the ms per
batch of both. Not in the pipeline: a candidate for the next retrain (issue 13).

Run::

    python benchmarks/tabulated_target.py --out reports/benchmarks/tabulated_target.txt
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    """Print (and optionally write) the error and timing lines; return 0."""
    import torch

    from pipeline.config import read_yaml_mapping
    from pipeline.losses import TimeSampler
    from pipeline.sde.heat_kernel import _logp_dlogp_theta, heat_kernel_score
    from pipeline.transition import make_noise_sampler
    from pipeline.variants import build_manifold, build_schedule, get_variant

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-theta", type=int, default=1025)
    parser.add_argument("--n-s", type=int, default=257)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--draws", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    params = read_yaml_mapping(ROOT / "params.yaml")
    from stages.train_config import model_config

    config = model_config(params["train"], "earthquake", "rsgm")
    manifold = build_manifold(config["manifold"])
    schedule = build_schedule(config["schedule"])
    process = get_variant("rsgm").build_process(config, manifold, schedule)
    eps = float(config["loss"].get("eps", 1e-3))
    t_sampler = TimeSampler("log_uniform", eps, schedule.T)
    s_lo = float(schedule.heat_time(torch.tensor(eps, dtype=torch.float64))) * 0.999
    s_hi = float(schedule.heat_time(torch.tensor(schedule.T, dtype=torch.float64))) * 1.001

    # The table (float64): rows log s, columns θ in [0, π].
    t0 = time.perf_counter()
    ls = torch.linspace(math.log(s_lo), math.log(s_hi), args.n_s, dtype=torch.float64)
    th = torch.linspace(0.0, math.pi, args.n_theta, dtype=torch.float64)
    th_in = th.clamp(1e-9, math.pi - 1e-9)
    S, TH = torch.meshgrid(ls.exp(), th_in, indexing="ij")
    _, dl = _logp_dlogp_theta(TH.reshape(-1), S.reshape(-1))
    table = (S.reshape(-1) * dl * torch.sin(TH.reshape(-1)) / TH.reshape(-1)).reshape(S.shape)
    build_s = time.perf_counter() - t0

    def tabulated_score(x: torch.Tensor, x0: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        xd, x0d = x.to(torch.float64), x0.to(torch.float64)
        diff = x0d - xd
        tangent = diff - (xd * diff).sum(-1, keepdim=True) * xd
        theta = 2 * torch.atan2(diff.norm(dim=-1), (xd + x0d).norm(dim=-1))
        fs = (s.to(torch.float64).log() - ls[0]) / (ls[1] - ls[0])
        ft = theta / (th[1] - th[0])
        i = fs.floor().clamp(0, args.n_s - 2).long()
        j = ft.floor().clamp(0, args.n_theta - 2).long()
        a, b = (fs - i).clamp(0, 1), (ft - j).clamp(0, 1)
        h = (
            (1 - a) * (1 - b) * table[i, j]
            + (1 - a) * b * table[i, j + 1]
            + a * (1 - b) * table[i + 1, j]
            + a * b * table[i + 1, j + 1]
        )
        sinc = torch.where(theta > 1e-12, theta / torch.sin(theta).clamp_min(1e-300), 1.0)
        dl_tab = h * sinc / s.to(torch.float64)
        return (dl_tab.unsqueeze(-1) * tangent).to(x.dtype)

    sampler = make_noise_sampler(process, "exact")
    gen = torch.Generator().manual_seed(0)
    x0 = manifold.random_uniform(args.draws, dtype=torch.float64)
    t = t_sampler.sample(args.draws, gen, dtype=torch.float64)
    s = schedule.heat_time(t)
    xt = sampler(x0, s, gen)
    exact = heat_kernel_score(xt, x0, s)
    approx = tabulated_score(xt, x0, s)
    # Relative error of the target vector, weighted as the variance-weighted loss sees it
    # (λ = s: the error of sqrt(s)·target against its typical size 1).
    rel = (approx - exact).norm(dim=-1) / exact.norm(dim=-1).clamp_min(1e-12)
    weighted = ((approx - exact).norm(dim=-1) * s.sqrt()).pow(2).mean().sqrt()

    xb, x0b, sb = xt[: args.batch].float(), x0[: args.batch].float(), s[: args.batch].float()
    timings: dict[str, list[float]] = {"exact": [], "table": []}
    for _ in range(7):
        for name, fn in (("exact", heat_kernel_score), ("table", tabulated_score)):
            for _ in range(3):
                fn(xb, x0b, sb)
            start = time.perf_counter()
            for _ in range(50):
                fn(xb, x0b, sb)
            timings[name].append(1e3 * (time.perf_counter() - start) / 50)
    ex, tb = statistics.median(timings["exact"]), statistics.median(timings["table"])
    lines = [
        f"benchmarks/tabulated_target.py: table {args.n_s} (log s) x {args.n_theta} (θ), "
        f"s in [{s_lo:.3g}, {s_hi:.3g}], built in {build_s:.1f} s",
        f"relative error of the target vector over {args.draws} training draws: median "
        f"{rel.median():.2e}, 99th pct {rel.quantile(0.99):.2e}, max {rel.max():.2e}",
        f"RMS of sqrt(s)·error (the variance-weighted loss's scale, target ~1): {weighted:.2e}",
        f"ms per batch of {args.batch} (float32 in, {args.threads} thread(s), median of 7): "
        f"exact {ex:.3f}, table {tb:.3f} ({ex / tb:.1f}x)",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out is not None:
        from pipeline.atomic import atomic_write

        atomic_write(args.out, lambda tmp: tmp.write_text(text), suffix=".txt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
