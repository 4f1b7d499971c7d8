"""Tests of the reverse geodesic random walk against closed-form moments of the heat kernel."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pipeline.geometry import Sphere
from pipeline.likelihood import sphere_grid
from pipeline.sampling import reverse_geodesic_random_walk
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.heat_kernel import heat_kernel_mixture_logp, heat_kernel_mixture_score
from pipeline.sde.schedules import LinearBeta
from tests.errors import raises_naming

SPHERE = Sphere(2)
SCHED = LinearBeta(beta_0=1e-3, beta_1=5.0, T=1.0)
S0 = 0.5  # >= 0.5: the heat kernel uses its fast series form
EPS = 1e-3


def _mixture_score(centers: Tensor, weights: Tensor) -> object:
    def score(x: Tensor, t: Tensor) -> Tensor:
        return heat_kernel_mixture_score(x, centers, S0 + SCHED.heat_time(t), weights)

    return score


def test_reverse_walk_reproduces_heat_kernel_moments() -> None:
    # Data = p_{S0}(.|mu). With the exact score, the reverse walk targets p_{S0 + s(eps)}(.|mu)
    # whose Legendre moments are E[P_l(<X, mu>)] = exp(-l(l+1)s/2).
    mu = torch.tensor([[0.6, 0.0, 0.8]], dtype=torch.float64)
    score = _mixture_score(mu, torch.ones(1, dtype=torch.float64))
    gen = torch.Generator().manual_seed(0)
    n = 3000
    y = reverse_geodesic_random_walk(
        score,
        BrownianMotion(SPHERE, SCHED),
        n,
        100,
        gen,
        eps=EPS,
        dtype=torch.float64,  # type: ignore[arg-type]
    )
    assert y.shape == (n, 3)
    assert (y.norm(dim=-1) - 1.0).abs().max() < 1e-6
    s = S0 + SCHED.heat_time(EPS)
    c = y @ mu[0]
    m1, m2 = float(c.mean()), float((1.5 * c**2 - 0.5).mean())
    se = 1.0 / math.sqrt(n)
    assert abs(m1 - math.exp(-s)) < 4 * se * float(c.std()) + 0.01, m1
    assert abs(m2 - math.exp(-3 * s)) < 4 * se + 0.01, m2
    # a visibly wrong target is rejected by the same check (the test can fail)
    assert abs(math.exp(-2 * s) - m1) > 0.1


def test_reverse_walk_mixture_with_corrector_matches_quadrature() -> None:
    # P(sample nearer centre 0) for a weighted two-bump mixture, against the exact value from
    # quadrature of the target density p_{S0 + s(eps)}.
    centers = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    weights = torch.tensor([0.75, 0.25], dtype=torch.float64)
    xg, wg = sphere_grid(64, 128)
    dens = heat_kernel_mixture_logp(xg, centers, S0 + SCHED.heat_time(EPS), weights).exp()
    exact = float((wg * dens * ((xg @ centers[0]) > (xg @ centers[1])).double()).sum())
    score = _mixture_score(centers, weights)
    gen = torch.Generator().manual_seed(1)
    n = 2000
    y = reverse_geodesic_random_walk(
        score,
        BrownianMotion(SPHERE, SCHED),
        n,
        100,
        gen,
        corrector_steps=1,
        dtype=torch.float64,  # type: ignore[arg-type]
    )
    frac = float(((y @ centers[0]) > (y @ centers[1])).double().mean())
    assert abs(frac - exact) < 4 * math.sqrt(exact * (1 - exact) / n) + 0.01, (frac, exact)
    assert abs(frac - 0.5) > 0.1
    assert (y.norm(dim=-1) - 1.0).abs().max() < 1e-6


def test_reverse_walk_validates_and_accepts_start_points() -> None:
    x = SPHERE.random_uniform(5, dtype=torch.float64)
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731
    y = reverse_geodesic_random_walk(
        zero, BrownianMotion(SPHERE, SCHED), x, 3, torch.Generator().manual_seed(0)
    )
    assert y.shape == (5, 3) and y.dtype == torch.float64
    with raises_naming(ValueError, "n_steps"):
        reverse_geodesic_random_walk(zero, BrownianMotion(SPHERE, SCHED), x, 0)
    with raises_naming(ValueError, "eps=2.0"):
        reverse_geodesic_random_walk(zero, BrownianMotion(SPHERE, SCHED), x, 3, eps=2.0)
