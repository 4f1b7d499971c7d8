"""Measure the S² heat-kernel evaluations against a high-precision mpmath reference.

Prints, per heat time s, the max over θ of |Δ log p| (= relative error of p) and of the
relative error of ∂_c log p (hence of the score) for the Legendre series and for the exact
small-time integral, plus timings; the switch ``S_SWITCH`` is where both are at float64
precision and the series is cheap. Run: ``.venv/bin/python benchmarks/heat_kernel_switch.py``.
"""

from __future__ import annotations

import math
import time

import mpmath as mp
import torch

from pipeline.sde import heat_kernel as hk


def reference(theta: float, s: float) -> tuple[float, float]:
    """(log p_s(θ), ∂_c log p_s) from the Legendre series in high precision."""
    lost = theta * theta / (2 * s) / math.log(10)
    mp.mp.dps = int(40 + 1.2 * lost)
    c = mp.cos(mp.mpf(theta))
    sm = mp.mpf(s)
    n_terms = int(math.sqrt(2 * (60 + lost * math.log(10)) / s)) + 10
    p0, p1, d0, d1 = mp.mpf(1), c, mp.mpf(0), mp.mpf(1)
    dens, ddens = mp.mpf(1), mp.mpf(0)
    for l in range(1, n_terms):  # noqa: E741 (Legendre degree)
        co = (2 * l + 1) * mp.exp(-l * (l + 1) * sm / 2)
        dens += co * p1
        ddens += co * d1
        p0, p1 = p1, ((2 * l + 1) * c * p1 - l * p0) / (l + 1)
        d0, d1 = d1, d0 + (2 * l + 1) * p0
    return float(mp.log(dens / (4 * mp.pi))), float(ddens / dens)


def errors(s: float, thetas: list[float]) -> dict[str, float]:
    th = torch.tensor(thetas, dtype=torch.float64)
    st = torch.full_like(th, s)
    refs = [reference(t, s) for t in thetas]
    ref_lp = torch.tensor([r[0] for r in refs], dtype=torch.float64)
    ref_dl = torch.tensor([r[1] for r in refs], dtype=torch.float64)
    lp_i, dl_i = hk._integral_logp_dlogp(th, st)
    lp_s, dl_s = hk._series_logp_dlogp(torch.cos(th), st, hk.series_n_terms(s))
    lp_p, dl_p = hk._logp_dlogp_theta(th, st)

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(((a - b).abs() / b.abs().clamp_min(1e-300)).nan_to_num(math.inf).max())

    return {
        "series_logp": float((lp_s - ref_lp).abs().nan_to_num(math.inf).max()),
        "series_score": rel(dl_s, ref_dl),
        "integral_logp": float((lp_i - ref_lp).abs().max()),
        "integral_score": rel(dl_i, ref_dl),
        "public_logp": float((lp_p - ref_lp).abs().max()),
        "public_score": rel(dl_p, ref_dl),
    }


def main() -> None:
    torch.set_num_threads(1)  # the dev box has 2 shared cores; threads only add contention
    print(f"S_SWITCH = {hk.S_SWITCH}, integral nodes = {hk.N_NODES}")
    print("max over θ of |Δlog p| and rel. error of ∂c log p vs mpmath series")
    hdr = "s        series_logp series_score integral_logp integral_score  public_logp public_score"
    print(hdr)
    for s in [1e-4, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 5.0]:
        # θ range where p_s/p_s(0) > 1e-120 (reference cost), always including θ = π for s ≥ 0.01.
        top = min(math.pi, math.sqrt(2 * s * 276))
        thetas = [top * k / 40 for k in range(41)] + [1e-9, 1e-6, top - 1e-9]
        e = errors(s, thetas)
        print(
            f"{s:<8g} {e['series_logp']:11.2e} {e['series_score']:12.2e} "
            f"{e['integral_logp']:13.2e} {e['integral_score']:14.2e} "
            f"{e['public_logp']:12.2e} {e['public_score']:12.2e}"
        )
    print("\ntimings (batch 512, CPU float64, per call):")
    g = torch.Generator().manual_seed(0)
    th = math.pi * torch.rand(512, generator=g, dtype=torch.float64)
    for s in [1e-3, 0.1, 0.5, 2.0]:
        st = torch.full_like(th, s)
        for name, fn in [
            ("integral", lambda st=st: hk._integral_logp_dlogp(th, st)),
            (
                "series",
                lambda st=st, s=s: hk._series_logp_dlogp(torch.cos(th), st, hk.series_n_terms(s)),
            ),
        ]:
            fn()
            t0 = time.perf_counter()
            for _ in range(50):
                fn()
            dt = (time.perf_counter() - t0) / 50 * 1e3
            print(f"  s={s:<6g} {name:8s} {dt:7.3f} ms  (series terms {hk.series_n_terms(s)})")
    mixed = torch.exp(torch.empty(512, dtype=torch.float64).uniform_(math.log(1e-3), math.log(2.0)))
    x = torch.nn.functional.normalize(torch.randn(512, 3, dtype=torch.float64, generator=g), dim=-1)
    x0 = torch.nn.functional.normalize(
        torch.randn(512, 3, dtype=torch.float64, generator=g), dim=-1
    )
    hk.heat_kernel_score(x, x0, mixed)
    t0 = time.perf_counter()
    for _ in range(50):
        hk.heat_kernel_score(x, x0, mixed)
    print(
        f"  heat_kernel_score, batch 512, s log-uniform [1e-3, 2]: "
        f"{(time.perf_counter() - t0) / 50 * 1e3:.3f} ms"
    )
    print(
        "\nKL(p_s || uniform): "
        + ", ".join(f"s={s}: {hk.prior_kl_uniform(s):.6e}" for s in [1.0, 2.0, 2.0005, 2.0025])
    )


if __name__ == "__main__":
    main()
