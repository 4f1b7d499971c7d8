"""Exact S² Brownian sampler and the tabulated sampler against the exact CDF."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from pipeline.geometry import Sphere
from pipeline.sde import heat_kernel as hk
from pipeline.sde.brownian import geodesic_random_walk
from pipeline.sde.exact_sampler import HeatKernelSampler, exact_bm_sample, sample_angle_exact
from tests.errors import raises_naming

DT = torch.float64


def exact_angle_cdf(theta: np.ndarray, s: float) -> np.ndarray:
    """P(d(x0, X_s) ≤ θ) by Gauss–Legendre quadrature of 2π sin θ p_s(θ) on [0, θ]."""
    t, w = np.polynomial.legendre.leggauss(80)
    th = torch.as_tensor(theta, dtype=DT)
    out = torch.zeros_like(th)
    for k in range(6):
        a, b = th * k / 6, th * (k + 1) / 6
        nodes = a[:, None] + (b - a)[:, None] * torch.as_tensor((t + 1) / 2)
        lp = hk.heat_kernel_logp_theta(nodes, s)
        q = 2 * math.pi * torch.sin(nodes) * lp.exp()
        out += (q * torch.as_tensor(w)).sum(-1) * (b - a) / 2
    return out.numpy()


def exact_cdf_callable(s: float):
    """Exact CDF tabulated on 3000 angles (error ≪ the KS resolution), for scipy's kstest."""
    grid = np.linspace(0.0, min(math.pi, 12 * math.sqrt(s)), 3001)
    t, w = np.polynomial.legendre.leggauss(8)
    h = grid[1] - grid[0]
    nodes = torch.as_tensor(grid[:-1, None] + h * (t + 1) / 2, dtype=DT)
    q = 2 * math.pi * torch.sin(nodes) * hk.heat_kernel_logp_theta(nodes, s).exp()
    increments = (q * torch.as_tensor(w)).sum(-1).numpy() * h / 2
    values = np.concatenate([[0.0], np.cumsum(increments)])
    return lambda th: np.interp(th, grid, values, right=1.0)


@pytest.mark.parametrize("s", [0.01, 0.1, 1.0])
def test_exact_sampler_ks(s: float) -> None:
    g = torch.Generator().manual_seed(0)
    x0 = torch.nn.functional.normalize(torch.randn(20000, 3, dtype=DT, generator=g), dim=-1)
    x = exact_bm_sample(x0, s, g)
    assert x.shape == x0.shape
    assert (x.norm(dim=-1) - 1).abs().max() < 1e-6
    theta = Sphere(2).dist(x, x0).numpy()
    res = stats.kstest(theta, exact_cdf_callable(s))
    assert res.pvalue > 1e-3


def test_rejection_bounds_hold() -> None:
    """q/Rayleigh is maximal at θ = 0 (s ≤ 1.5) and p_s is maximal at θ = 0 (all s)."""
    theta = torch.linspace(1e-6, math.pi, 2000, dtype=DT)
    for s in [1e-4, 1e-2, 0.3, 1.0, 1.5]:
        lp = hk.heat_kernel_logp_theta(theta, s)
        lp0 = hk.heat_kernel_logp_theta(torch.zeros(1, dtype=DT), s)
        log_ratio = lp - lp0 + torch.log(torch.sinc(theta / math.pi)) + theta**2 / (2 * s)
        assert float(log_ratio.max()) <= 1e-12
    for s in [1.5, 3.0, 10.0]:
        lp = hk.heat_kernel_logp_theta(theta, s)
        assert float((lp[1:] - lp[:-1]).max()) <= 1e-15


def test_matches_geodesic_random_walk() -> None:
    g = torch.Generator().manual_seed(3)
    n, s = 4000, 0.3
    x0 = torch.tensor([[0.0, 0.0, 1.0]], dtype=DT).expand(n, 3)
    walk = geodesic_random_walk(Sphere(2), x0, s, 100, g)
    exact = exact_bm_sample(x0, s, g)
    assert stats.ks_2samp(walk[:, 2].numpy(), exact[:, 2].numpy()).pvalue > 1e-3


def test_per_sample_heat_times_and_errors() -> None:
    g = torch.Generator().manual_seed(1)
    s = torch.tensor([1e-4, 0.5, 3.0, 30.0], dtype=DT).repeat(500)
    th = sample_angle_exact(s, g)
    assert th.shape == s.shape and bool(((th >= 0) & (th <= math.pi)).all())
    assert float(th[s == 1e-4].mean()) < 0.05
    with raises_naming(ValueError, "(3,)", "(4,)"):
        exact_bm_sample(torch.zeros(3, 3, dtype=DT), torch.ones(4, dtype=DT), g)
    with raises_naming(ValueError, "heat time s"):
        exact_bm_sample(torch.ones(2, 3, dtype=DT) / 3**0.5, 0.0, g)


@pytest.fixture(scope="module")
def table_sampler() -> HeatKernelSampler:
    return HeatKernelSampler(device="cpu", dtype=DT)


def test_table_quantiles_match_exact_cdf(table_sampler: HeatKernelSampler) -> None:
    g = torch.Generator().manual_seed(2)
    levels = torch.rand(200, dtype=DT, generator=g)
    for s in [2e-4, 0.013, 0.27, 1.9, 7.0]:
        th = table_sampler.quantile_angle(torch.full((200,), s, dtype=DT), levels)
        err = np.abs(exact_angle_cdf(th.numpy(), s) - levels.numpy())
        assert err.max() < 1e-3, (s, err.max())


@pytest.mark.parametrize("s", [0.01, 0.1, 1.0])
def test_table_sampler_ks(table_sampler: HeatKernelSampler, s: float) -> None:
    g = torch.Generator().manual_seed(5)
    x0 = torch.nn.functional.normalize(torch.randn(20000, 3, dtype=DT, generator=g), dim=-1)
    x = table_sampler.sample(x0, s, g)
    assert (x.norm(dim=-1) - 1).abs().max() < 1e-6
    theta = Sphere(2).dist(x, x0).numpy()
    assert stats.kstest(theta, exact_cdf_callable(s)).pvalue > 1e-3


def test_table_sampler_float32_and_bounds() -> None:
    sampler = HeatKernelSampler(device="cpu")
    g = torch.Generator().manual_seed(0)
    x0 = torch.nn.functional.normalize(torch.randn(512, 3, generator=g), dim=-1)
    s = torch.exp(torch.empty(512).uniform_(math.log(1e-5), math.log(50.0), generator=g))
    x = sampler(x0, s, g)
    assert x.dtype == torch.float32 and torch.isfinite(x).all()
    assert (x.norm(dim=-1) - 1).abs().max() < 1e-6


def test_table_sampler_off_the_cpu_never_reads_the_device() -> None:
    # Meta tensors hold no data, so any host read (a per-step GPU sync) would raise here.
    sampler = HeatKernelSampler(n_s=8, n_v=16, device="meta")
    out = sampler.sample(torch.empty(8, 3, device="meta"), torch.empty(8, device="meta"))
    assert out.shape == (8, 3) and out.device.type == "meta"
