"""Geodesic random walk: closed-form moments of Brownian motion."""

from __future__ import annotations

import math

import torch

from pipeline.geometry import Euclidean, FlatTorus, Sphere
from pipeline.sde.brownian import BrownianMotion, geodesic_random_walk
from pipeline.sde.schedules import LinearBeta

DT = torch.float64


def test_sphere_mean_cosine_decays_like_first_eigenvalue() -> None:
    # E⟨X_s, x0⟩ = exp(−s) on S² (eigenvalue l(l+1)/2 = 1 of −½Δ for l = 1)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([[0.0, 0.0, 1.0]], dtype=DT).expand(4000, 3)
    for s in [0.2, 1.0]:
        x = geodesic_random_walk(Sphere(2), x0, s, 20, g)
        assert abs(float(x[:, 2].mean()) - math.exp(-s)) < 0.04
        assert Sphere(2).check_point(x, atol=1e-12)


def test_euclidean_and_torus_variance() -> None:
    g = torch.Generator().manual_seed(1)
    x = geodesic_random_walk(Euclidean(3), torch.zeros(4000, 3, dtype=DT), 0.5, 4, g)
    assert abs(float(x.var(0).mean()) - 0.5) < 0.04
    t = FlatTorus(1)
    p = geodesic_random_walk(t, t.angles_to_points(torch.zeros(4000, 1, dtype=DT)), 0.5, 10, g)
    # wrapped Gaussian: E cos θ = e^{−s/2}
    assert abs(float(p[:, 0].mean()) - math.exp(-0.25)) < 0.04


def test_brownian_motion_uses_heat_time() -> None:
    bm = BrownianMotion(Sphere(2), LinearBeta(0.1, 2.0))
    g = torch.Generator().manual_seed(2)
    x0 = torch.tensor([[1.0, 0.0, 0.0]], dtype=DT).expand(4000, 3)
    x = bm.marginal_sample(x0, torch.full((4000,), 1.0, dtype=DT), 40, g)
    assert abs(float(x[:, 0].mean()) - math.exp(-1.05)) < 0.04
