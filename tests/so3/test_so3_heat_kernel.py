"""SO(3) heat kernel: its two exact forms, mass, score, exact sampler, and the PF-ODE on SO(3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from pipeline.likelihood import pf_ode_logp
from pipeline.sde.brownian import BrownianMotion, geodesic_random_walk
from pipeline.sde.schedules import LinearBeta
from pipeline.so3.heat_kernel import (
    _log_angle_ratio_chi,
    _log_haar_images,
    _log_haar_series,
    sample_so3_angle_exact,
    so3_exact_bm_sample,
    so3_heat_kernel_logp,
    so3_heat_kernel_mixture_logp,
    so3_heat_kernel_mixture_score,
    so3_heat_kernel_sample,
    so3_heat_kernel_score,
    so3_heat_logp_angle,
)
from pipeline.so3.manifold import SO3
from tests.errors import raises_naming

DT = torch.float64
SO = SO3()
THETA = torch.linspace(1e-6, math.pi, 1001, dtype=DT)


@pytest.mark.parametrize(("s", "tol"), [(0.5, 1e-7), (1.0, 1e-12), (2.0, 1e-13), (4.0, 1e-10)])
def test_images_and_character_series_agree(s: float, tol: float) -> None:
    st = torch.full_like(THETA, s)
    # The code uses the series only for s >= 2 (12 terms); below, 40 terms for the comparison.
    series = _log_haar_series(THETA, st, 40)
    diff = (_log_haar_images(THETA, st) - series).abs().max()
    assert float(diff) < tol
    if s >= 2.0:
        assert float((series - _log_haar_series(THETA, st)).abs().max()) < 1e-15


def _angle_density(theta: float, s: float) -> float:
    """Density of the rotation angle: p_s(θ) · vol · (1 − cos θ)/π."""
    lp = so3_heat_logp_angle(torch.tensor(theta, dtype=DT), s) + SO.log_volume
    return float(torch.exp(lp)) * (1.0 - math.cos(theta)) / math.pi


@pytest.mark.parametrize("s", [1e-3, 0.05, 0.5, 2.0, 10.0])
def test_kernel_integrates_to_one(s: float) -> None:
    # Over SO(3): ∫ p dvol = ∫_0^π p_s(θ) vol (1 − cos θ)/π dθ (axis integrated out).
    mass, _ = integrate.quad(
        _angle_density,
        0.0,
        math.pi,
        args=(s,),
        points=[min(math.sqrt(s), 3.0)],
        limit=200,
        epsabs=1e-12,
    )
    assert mass == pytest.approx(1.0, abs=1e-9)


def test_small_time_is_varadhan_and_large_time_is_uniform() -> None:
    s = 1e-3
    theta = torch.tensor([1e-3, 0.02, 0.05], dtype=DT)
    d2 = 2 * theta**2
    euclid = -1.5 * math.log(2 * math.pi * s) - d2 / (2 * s)
    # log p - Varadhan = log((θ/2)/sin(θ/2)) + s/16 for the n = 0 image
    expected = euclid + torch.log((theta / 2) / torch.sin(theta / 2)) + s / 16
    torch.testing.assert_close(so3_heat_logp_angle(theta, s), expected, rtol=0, atol=1e-12)
    far = so3_heat_logp_angle(THETA, 60.0)
    torch.testing.assert_close(far, torch.full_like(far, -SO.log_volume), rtol=0, atol=1e-6)


def test_score_is_the_tangent_gradient_of_the_log_density() -> None:
    gen = torch.Generator().manual_seed(0)
    x0 = SO.random_uniform(20, dtype=DT, generator=gen)
    x = SO.random_uniform(20, dtype=DT, generator=gen)
    for s in (0.05, 0.7, 3.0):
        score = so3_heat_kernel_score(x, x0, s)
        assert SO.check_vector(x, score, atol=1e-10)
        v = SO.random_normal_tangent(x, generator=gen)
        h = 1e-5
        plus = so3_heat_kernel_logp(SO.expmap(x, h * v), x0, s)
        minus = so3_heat_kernel_logp(SO.expmap(x, -h * v), x0, s)
        fd = (plus - minus) / (2 * h)
        torch.testing.assert_close(SO.inner(x, score, v), fd, rtol=1e-5, atol=1e-5)
    # at the centre the score vanishes (finite, no 0/0)
    assert float(so3_heat_kernel_score(x0, x0, 0.1).abs().max()) < 1e-6


@pytest.mark.parametrize("s", [0.01, 0.3, 3.0])
def test_exact_sampler_angle_law_ks(s: float) -> None:
    gen = torch.Generator().manual_seed(1)
    x0 = SO.random_uniform(1, dtype=DT, generator=gen).expand(4000, -1)
    x = so3_heat_kernel_sample(x0, s, generator=gen)
    assert SO.check_point(x, atol=1e-12)
    theta = SO.angle(x0, x).numpy()
    assert stats.kstest(theta, _independent_angle_cdf(s)).pvalue > 1e-3


@pytest.mark.parametrize("s", [0.01, 0.3, 2.0, 3.9, 4.5, 12.0])
def test_rejection_sampler_angle_law_ks(s: float) -> None:
    # The per-draw sampler the losses use, on both sides of its proposal switch (s = 4).
    gen = torch.Generator().manual_seed(3)
    x0 = SO.random_uniform(4000, dtype=DT, generator=gen)
    x = so3_exact_bm_sample(x0, torch.full((4000,), s, dtype=DT), generator=gen)
    assert SO.check_point(x, atol=1e-12)
    assert stats.kstest(SO.angle(x0, x).numpy(), _independent_angle_cdf(s)).pvalue > 1e-3


def test_rejection_sampler_mixed_heat_times_and_its_bound() -> None:
    # One heat time per draw: each half of the batch has its own law.
    gen = torch.Generator().manual_seed(4)
    s = torch.cat((torch.full((3000,), 0.05, dtype=DT), torch.full((3000,), 6.0, dtype=DT)))
    order = torch.randperm(6000, generator=torch.Generator().manual_seed(5))
    s_perm = s[order]
    theta = sample_so3_angle_exact(s_perm, generator=gen)
    for value in (0.05, 6.0):
        got = theta[s_perm == value].numpy()
        assert stats.kstest(got, _independent_angle_cdf(value)).pvalue > 1e-3
    # the proposal ratio never exceeds the bound 4/π used for acceptance (tight at θ = π)
    th = torch.linspace(1e-5, math.pi, 4001, dtype=DT)
    for value in (1e-3, 0.5, 2.0, 4.0):
        log_r = _log_angle_ratio_chi(th, torch.full_like(th, value))
        assert float(log_r.max()) <= math.log(4.0 / math.pi) + 1e-9
    assert float(_log_angle_ratio_chi(th[-1:], torch.full((1,), 0.5, dtype=DT))) == pytest.approx(
        math.log(4.0 / math.pi), abs=1e-6
    )
    with raises_naming(ValueError, "heat time s"):
        so3_exact_bm_sample(SO.random_uniform(2, dtype=DT), torch.tensor([0.1, 0.0], dtype=DT))


def _independent_angle_cdf(s: float):  # type: ignore[no-untyped-def]
    """The angle's CDF by 8-point Gauss-Legendre on 2000 cells (not the sampler's table)."""
    edges = math.pi * np.linspace(0.0, 1.0, 2001) ** 2
    nodes, weights = np.polynomial.legendre.leggauss(8)
    lo, hi = edges[:-1, None], edges[1:, None]
    t = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
    lp = so3_heat_logp_angle(torch.as_tensor(t, dtype=DT), s).numpy() + SO.log_volume
    dens = np.exp(lp) * (1.0 - np.cos(t)) / math.pi
    cells = (0.5 * (hi - lo) * weights * dens).sum(-1)
    cum = np.concatenate(([0.0], np.cumsum(cells)))
    return lambda q: np.interp(q, edges, cum)


def test_exact_sampler_matches_the_geodesic_random_walk() -> None:
    # An independent path to the same law: Brownian motion by many small geodesic steps.
    s = 0.3
    gen = torch.Generator().manual_seed(2)
    x0 = SO.random_uniform(1, dtype=DT, generator=gen).expand(2000, -1).contiguous()
    exact = so3_heat_kernel_sample(x0, s, generator=gen)
    walk = geodesic_random_walk(SO, x0, s, 200, generator=gen)
    assert stats.ks_2samp(SO.angle(x0, exact).numpy(), SO.angle(x0, walk).numpy()).pvalue > 1e-3
    # the rotation axis is uniform: its mean is 0 (in x0's frame)
    rel = SO.matrices(x0).transpose(-1, -2) @ SO.matrices(exact)
    axis = SO.logmap(SO.from_matrices(torch.eye(3, dtype=DT)).expand_as(x0), SO.from_matrices(rel))
    assert float(axis.mean(0).abs().max()) < 0.05


SCHED = LinearBeta(beta_0=1e-3, beta_1=6.0, T=1.0)
S0 = 0.08


def test_pf_ode_on_so3_uniform_and_exact_mixture() -> None:
    gen = torch.Generator().manual_seed(3)
    x = SO.random_uniform(6, dtype=DT, generator=gen)
    logp, _ = pf_ode_logp(lambda y, t: 0.0 * y, BrownianMotion(SO, SCHED), x, t0=0.0)
    torch.testing.assert_close(logp, torch.full((6,), -SO.log_volume, dtype=DT))
    # A heat-kernel mixture driven by its exact score reproduces its exact log-density.
    centers = SO.random_uniform(3, dtype=DT, generator=gen)
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=DT)

    def score(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return so3_heat_kernel_mixture_score(y, centers, S0 + SCHED.heat_time(t), weights)

    def base(y: torch.Tensor) -> torch.Tensor:
        return so3_heat_kernel_mixture_logp(y, centers, S0 + SCHED.heat_time(1.0), weights)

    points = so3_heat_kernel_sample(centers.repeat_interleave(3, 0), S0, generator=gen)
    logp, nfe = pf_ode_logp(score, BrownianMotion(SO, SCHED), points, t0=0.0, base=base)
    expected = so3_heat_kernel_mixture_logp(points, centers, S0, weights)
    assert float((logp - expected).abs().max()) < 1e-3, (logp - expected).abs().max()
    assert float(expected.max() - expected.min()) > 1.0
