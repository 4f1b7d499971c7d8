"""Langevin noising: potentials, invariant law, forward walk, reverse process, PF-ODE."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from pipeline.geometry import Sphere
from pipeline.likelihood import pf_ode_logp
from pipeline.models.divergence import manifold_divergence
from pipeline.sampling import reverse_geodesic_random_walk
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.langevin import (
    LangevinProcess,
    RiemannianNormal,
    WrappedNormal,
    fit_gamma,
    make_potential,
)
from pipeline.sde.schedules import LinearBeta
from pipeline.so3.manifold import SO3
from tests.errors import raises_naming

DT = torch.float64
S2 = Sphere(2)
MU = torch.tensor([0.0, 0.6, 0.8], dtype=DT)
SCHED = LinearBeta(0.001, 5.0)


def _tangent_fd_grad(potential, x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Finite-difference Riemannian gradient: Σ_i (U(exp_x(h e_i)) − U(exp_x(−h e_i)))/2h e_i."""
    m = potential.manifold
    basis = m.proju(x[:, None, :].expand(-1, x.shape[-1], -1), torch.eye(x.shape[-1], dtype=DT))
    out = torch.zeros_like(x)
    for i in range(x.shape[-1]):
        e = basis[:, i]
        plus = potential.value(m.expmap(x, h * e))
        minus = potential.value(m.expmap(x, -h * e))
        out = out + ((plus - minus) / (2 * h))[:, None] * e
    # The spanning set P e_i is a frame only on S^d (P is a projector with Σ (P e_i)(P e_i)ᵀ = P).
    return out


@pytest.mark.parametrize("cls", [RiemannianNormal, WrappedNormal])
def test_potential_gradient_matches_finite_differences_on_s2(cls) -> None:
    pot = cls(S2, MU, 0.7)
    x = S2.random_uniform(50, dtype=DT, generator=torch.Generator().manual_seed(0))
    x = x[S2.dist(x, MU) < 2.8]  # away from the wrapped normal's cut-locus singularity
    torch.testing.assert_close(pot.grad(x), _tangent_fd_grad(pot, x), atol=1e-6, rtol=1e-6)
    assert S2.check_vector(x, pot.grad(x), atol=1e-12)


def test_potential_gradient_is_tangent_and_right_on_so3() -> None:
    so3 = SO3()
    mu = so3.random_uniform(1, dtype=DT, generator=torch.Generator().manual_seed(1))[0]
    pot = RiemannianNormal(so3, mu, 0.9)
    x = so3.random_uniform(20, dtype=DT, generator=torch.Generator().manual_seed(2))
    g = pot.grad(x)
    assert so3.check_vector(x, g, atol=1e-10)
    # Directional derivative along a tangent v equals <∇U, v> (Frobenius metric).
    v = so3.random_normal_tangent(x, torch.Generator().manual_seed(3))
    h = 1e-6
    fd = (pot.value(so3.expmap(x, h * v)) - pot.value(so3.expmap(x, -h * v))) / (2 * h)
    torch.testing.assert_close((g * v).sum(-1), fd, atol=1e-6, rtol=1e-6)


def test_riemannian_normal_laplacian_matches_the_closed_form_on_s2() -> None:
    """ΔU = (1 + r cot r)/γ² on S², from the autograd divergence of ∇U."""
    gamma = 0.8
    pot = RiemannianNormal(S2, MU, gamma)
    x = S2.random_uniform(64, dtype=DT, generator=torch.Generator().manual_seed(4))
    x = x[S2.dist(x, MU) < 3.0]
    _, div = manifold_divergence(pot.grad, x, S2)
    r = S2.dist(x, MU)
    torch.testing.assert_close(div, (1 + r / torch.tan(r)) / gamma**2, atol=1e-8, rtol=1e-8)


def test_wrapped_normal_invariant_law_is_the_pushed_forward_gaussian() -> None:
    """On S², the wrapped normal's density is N(log_μ x; 0, γ²I)·r/sin r (one sheet)."""
    gamma = 0.4
    pot = WrappedNormal(S2, MU, gamma)
    x = S2.random_uniform(40, dtype=DT, generator=torch.Generator().manual_seed(5))
    r = S2.dist(x, MU)
    gauss = -(r**2) / (2 * gamma**2) - math.log(2 * math.pi * gamma**2)
    expected = gauss + torch.log(r / torch.sin(r))
    # The Gaussian's mass beyond r = π is ~e^{-π²/(2γ²)}: the normalisers agree.
    torch.testing.assert_close(pot.log_invariant(x), expected, atol=1e-7, rtol=0)


def test_forward_walk_reaches_the_invariant_law_at_large_time() -> None:
    """KS on the distance to μ after heat time 12 from a point far from μ."""
    gen = torch.Generator().manual_seed(6)
    pot = RiemannianNormal(S2, MU, 0.6)
    process = LangevinProcess(S2, SCHED, pot)
    x0 = (-MU).expand(4000, 3).clone()
    x0 = S2.expmap(x0, 0.3 * S2.random_normal_tangent(x0, gen))
    x = process.heat_time_sample(x0, 12.0, 600, gen)
    r = S2.dist(x, MU).numpy()
    cdf = lambda v: pot.invariant.distance_cdf(torch.as_tensor(v)).numpy()  # noqa: E731
    assert stats.kstest(r, cdf).pvalue > 1e-3
    # Not vacuous: after a short time the walk is still far from its invariant law.
    early = S2.dist(process.heat_time_sample(x0, 0.2, 20, gen), MU).numpy()
    assert stats.kstest(early, cdf).pvalue < 1e-6


def test_reverse_walk_with_the_invariant_score_keeps_the_invariant_law() -> None:
    """Started in e^{−U}/Z, with score −∇U (the exact score of a stationary process)."""
    gen = torch.Generator().manual_seed(7)
    pot = RiemannianNormal(S2, MU, 0.5)
    process = LangevinProcess(S2, SCHED, pot)
    y = reverse_geodesic_random_walk(lambda x, t: -pot.grad(x), process, 4000, 200, gen, dtype=DT)
    cdf = lambda v: pot.invariant.distance_cdf(torch.as_tensor(v)).numpy()  # noqa: E731
    assert stats.kstest(S2.dist(y, MU).numpy(), cdf).pvalue > 1e-3
    # A wrong sign of the drift (the score of the uniform law, zero) spreads the points out.
    z = reverse_geodesic_random_walk(
        lambda x, t: torch.zeros_like(x), process, 4000, 200, gen, dtype=DT
    )
    assert stats.kstest(S2.dist(z, MU).numpy(), cdf).pvalue < 1e-6


@pytest.mark.parametrize("manifold", [S2, SO3()], ids=repr)
def test_pf_ode_with_the_invariant_score_reproduces_the_invariant_log_density(manifold) -> None:
    gen = torch.Generator().manual_seed(8)
    mu = manifold.random_uniform(1, dtype=DT, generator=gen)[0]
    pot = RiemannianNormal(manifold, mu, 0.7)
    process = LangevinProcess(manifold, SCHED, pot)
    x = process.sample_reference(12, dtype=DT, generator=gen)
    logp, _ = pf_ode_logp(lambda y, t: -pot.grad(y), process, x, t0=0.0, rtol=1e-8, atol=1e-8)
    expected = pot.log_invariant(x)
    assert float((logp - expected).abs().max()) < 1e-3
    assert float(expected.max() - expected.min()) > 1.0  # the check is not vacuous
    # With Brownian motion's zero score the same process gives a different density.
    wrong, _ = pf_ode_logp(lambda y, t: torch.zeros_like(y), process, x, t0=0.0)
    assert float((wrong - expected).abs().max()) > 0.1


def test_pf_ode_density_of_a_langevin_flow_integrates_to_one() -> None:
    """Change of variables: the PF-ODE log-density of a drifted field integrates to 1."""
    from pipeline.likelihood import sphere_grid

    pot = RiemannianNormal(S2, MU, 0.9)
    process = LangevinProcess(S2, LinearBeta(0.001, 2.0), pot)
    # Any smooth score field defines a flow; the resulting density must integrate to 1.
    centre = torch.tensor([1.0, 0.0, 0.0], dtype=DT)
    # The score carries the reference's −∇U (as rsgm_langevin's model does), so the field
    # β(b − s/2) is smooth; the base is the Riemannian normal.
    score = lambda y, t: -pot.grad(y) + 0.7 * S2.proju(y, centre.expand_as(y))  # noqa: E731
    xyz, w = sphere_grid(24, 48)
    logp, _ = pf_ode_logp(score, process, xyz, t0=0.0, rtol=1e-7, atol=1e-7)
    assert abs(float((w * logp.exp()).sum()) - 1.0) < 2e-3


def test_fit_gamma_recovers_the_scale_of_invariant_draws() -> None:
    gen = torch.Generator().manual_seed(9)
    for name, gamma in (("riemannian_normal", 0.35), ("wrapped_normal", 0.8)):
        pot = make_potential(name, S2, MU, gamma)
        x = pot.invariant.sample(20000, dtype=DT, generator=gen)
        assert abs(fit_gamma(name, S2, x, MU) / gamma - 1.0) < 0.02


def test_prior_mismatch_is_small_for_the_default_schedule_and_large_for_a_short_one() -> None:
    from pipeline.sde.prior_mismatch import radial_prior_kl

    gen = torch.Generator().manual_seed(10)
    pot = RiemannianNormal(S2, MU, 0.6)
    x0 = S2.random_uniform(4000, dtype=DT, generator=gen)
    long = LangevinProcess(S2, SCHED, pot)
    short = LangevinProcess(S2, LinearBeta(0.001, 0.2), pot)
    kl_long = radial_prior_kl(long, x0, pot.invariant, n_steps=100, generator=gen)
    kl_short = radial_prior_kl(short, x0, pot.invariant, n_steps=100, generator=gen)
    assert kl_long < 0.01 < 0.1 < kl_short


def test_radial_prior_kl_matches_the_exact_brownian_value_from_a_point_mass() -> None:
    """From δ_μ the law of Brownian motion is zonal about μ: the radial KL is the whole KL."""
    from pipeline.geometry.radial import RadialLaw
    from pipeline.sde.heat_kernel import prior_kl_uniform
    from pipeline.sde.prior_mismatch import radial_prior_kl

    gen = torch.Generator().manual_seed(11)
    sched = LinearBeta(0.001, 0.6)  # heat time 0.3: KL ≈ 0.3 nats
    process = BrownianMotion(S2, sched)
    uniform = RadialLaw(S2, MU, lambda r: torch.zeros_like(r))
    x0 = MU.expand(40000, 3).clone()
    kl = radial_prior_kl(process, x0, uniform, n_steps=60, generator=gen)
    exact = prior_kl_uniform(float(sched.heat_time(torch.tensor(1.0, dtype=DT))))
    assert abs(kl - exact) < 0.02 * exact + 0.005, (kl, exact)


def test_langevin_errors_are_clear() -> None:
    with raises_naming(ValueError, "gamma", "0.0"):
        RiemannianNormal(S2, MU, 0.0)
    with raises_naming(ValueError, "'cauchy'"):
        make_potential("cauchy", S2, MU, 1.0)
