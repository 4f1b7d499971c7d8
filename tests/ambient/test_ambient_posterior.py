"""Exact r_σ by posterior quadrature: normalisation, expansion, independent cross-checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from pipeline.ambient.posterior import (
    fiber_moments,
    raw_tangent_factor_vmf,
    rb_expansion_coefficient,
    rb_target_vmf,
    sphere_marginal_expectation,
    torus_rb_target_grid,
)
from pipeline.ambient.targets import add_ambient_noise, raw_target, rb_target
from pipeline.geometry import Sphere
from pipeline.geometry.vmf import sample_vmf


@pytest.mark.parametrize("d", [1, 2, 6])
def test_density_of_projection_integrates_to_one(d: int) -> None:
    total = sphere_marginal_expectation(
        lambda m: np.ones_like(m), lambda m: fiber_moments(m, 2.0, 0.3, d).log_density, d, 160
    )
    assert total == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("d", [1, 2, 6, 10])
def test_rb_target_expansion_sigma_squared_slope(d: int) -> None:
    """g_σ = 1 + σ²(1 − d − κm) + O(σ⁴): the seed's b_q + g_ext with g_ext = (1 − d/2)∇log q."""
    kappa = 2.0
    m = np.array([-0.7, 0.0, 0.4, 0.9])
    errs = []
    for sigma in (0.01, 0.02):
        g = fiber_moments(m, kappa, sigma, d).g
        errs.append(np.max(np.abs((g - 1.0) / sigma**2 - rb_expansion_coefficient(m, kappa, d))))
    assert errs[0] < 0.01
    assert errs[1] / errs[0] == pytest.approx(4.0, rel=0.1)  # next term is O(σ²)


@pytest.mark.parametrize("d", [2, 6])
def test_raw_target_on_manifold_has_no_extrinsic_term(d: int) -> None:
    kappa, sigma = 2.0, 0.01
    m = np.array([-0.5, 0.2, 0.8])
    h = raw_tangent_factor_vmf(m, kappa, sigma, d)
    np.testing.assert_allclose((h - 1.0) / sigma**2, -0.5 * d - kappa * m, atol=0.01)


def test_fiber_moments_match_brute_force_posterior_on_s2() -> None:
    """Independent route: 2-D posterior over z (angle from y, azimuth) with a numeric fiber
    kernel."""
    kappa, sigma, d = 3.0, 0.35, 2
    m = 0.3
    y = np.array([0.0, math.sqrt(1 - m * m), m])
    mu = np.array([0.0, 0.0, 1.0])

    def log_kernel(c: float) -> float:  # log ∫ rho^d exp(-(rho^2 - 2 rho c)/(2 sigma^2)) d rho
        val, _ = integrate.quad(
            lambda r: r**d * math.exp(-((r - c) ** 2) / (2 * sigma**2)), 0, np.inf
        )
        return c * c / (2 * sigma**2) + math.log(val)

    th = np.linspace(0, math.pi, 801)
    ph = np.linspace(0, 2 * math.pi, 400, endpoint=False)
    lk = np.array([log_kernel(math.cos(t)) for t in th])
    e1 = np.array([1.0, 0.0, 0.0])
    e2 = np.cross(y, e1)
    T, P = np.meshgrid(th, ph, indexing="ij")
    z = (
        np.cos(T)[..., None] * y
        + (np.sin(T) * np.cos(P))[..., None] * e1
        + (np.sin(T) * np.sin(P))[..., None] * e2
    )
    logw = kappa * (z @ mu) + lk[:, None] + np.log(np.sin(T) + 1e-300)
    w = np.exp(logw - logw.max())
    w[0] = w[-1] = 0.0
    w = (
        w
        * np.where((np.arange(len(th)) == 0) | (np.arange(len(th)) == len(th) - 1), 0.5, 1.0)[
            :, None
        ]
    )
    w /= w.sum()
    pz = z - (z @ y)[..., None] * y
    r_bf = (w[..., None] * pz).sum((0, 1)) / sigma**2
    t_sq_bf = (w * (pz**2).sum(-1)).sum() / sigma**4
    mom = fiber_moments(np.array([m]), kappa, sigma, d)
    r_q = kappa * mom.g[0] * (mu - m * y)
    np.testing.assert_allclose(r_bf, r_q, rtol=1e-5, atol=1e-8)
    assert t_sq_bf == pytest.approx(mom.t_sq[0], rel=1e-5)


def test_targets_means_agree_by_tower_property() -> None:
    """E[T_σ] = E[r_σ(π(X))] (Monte Carlo, same draws) and P_{π(X)} raw target = T_σ."""
    gen = torch.Generator().manual_seed(0)
    kappa, sigma, n = 4.0, 0.3, 10000
    mu = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    z = sample_vmf(mu, kappa, n, gen)
    s = torch.tensor(sigma, dtype=torch.float64)
    x = add_ambient_noise(z, s, gen)
    man = Sphere(2)
    y, t = rb_target(man, z, x, s)
    torch.testing.assert_close(man.proju(y, raw_target(z, x, s)), t)
    r = rb_target_vmf(y, mu, kappa, sigma)
    diff = t - r
    se = diff.std(0) / math.sqrt(n)
    assert bool((diff.mean(0).abs() < 4 * se + 1e-12).all())
    # the conditional-mean residual is orthogonal to functions of π(X): E[(T − r)·r] = 0
    cross = (diff * r).sum(-1)
    assert abs(float(cross.mean())) < 4 * float(cross.std()) / math.sqrt(n)


def test_torus_grid_matches_circle_quadrature_for_product_density() -> None:
    """Product von Mises on T² ⊂ R⁴: each component is the S¹ target −κ_i g(cos φ_i) sin φ_i."""
    k1, k2, sigma = 2.0, 0.7, 0.05
    phi = torch.tensor([[0.3, -1.2], [2.0, 0.5], [-2.5, 3.0]], dtype=torch.float64)

    def log_q(theta: torch.Tensor) -> torch.Tensor:
        return k1 * torch.cos(theta[..., 0]) + k2 * torch.cos(theta[..., 1])

    r = torus_rb_target_grid(phi, log_q, sigma)
    for i, k in enumerate((k1, k2)):
        g = fiber_moments(torch.cos(phi[:, i]).numpy(), k, sigma, 1).g
        expected = -k * g * np.sin(phi[:, i].numpy())
        np.testing.assert_allclose(r[:, i].numpy(), expected, rtol=1e-7, atol=1e-10)
