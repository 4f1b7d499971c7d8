"""Radial laws on isotropic manifolds: normalisers, distance laws, exact samplers, Fréchet means."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate, stats

from pipeline.geometry import FlatTorus, Sphere
from pipeline.geometry.radial import (
    RadialLaw,
    dlog_exp_jacobian_over_r,
    frechet_mean,
    log_exp_jacobian,
    radial_log_volume,
)
from pipeline.likelihood import sphere_grid
from pipeline.so3.manifold import SO3
from tests.errors import raises_naming

DT = torch.float64
ISOTROPIC = [Sphere(1), Sphere(2), Sphere(3), SO3()]


def _normal_weight(gamma: float):
    return lambda r: -r * r / (2.0 * gamma**2)


@pytest.mark.parametrize("manifold", ISOTROPIC, ids=repr)
def test_uniform_radial_law_has_the_manifolds_volume(manifold) -> None:
    centre = manifold.random_uniform(1, dtype=DT, generator=torch.Generator().manual_seed(0))[0]
    law = RadialLaw(manifold, centre, lambda r: torch.zeros_like(r))
    assert abs(law.log_normalizer - manifold.log_volume) < 1e-8


def test_sphere_jacobian_and_distance_law_match_closed_forms() -> None:
    s2 = Sphere(2)
    r = torch.linspace(1e-4, math.pi - 1e-4, 2001, dtype=DT)
    torch.testing.assert_close(log_exp_jacobian(s2, r), torch.log(torch.sin(r) / r))
    # Geodesic circle of radius r on the unit S²: circumference 2π sin r.
    torch.testing.assert_close(radial_log_volume(s2, r), torch.log(2 * math.pi * torch.sin(r)))
    s3 = Sphere(3)
    torch.testing.assert_close(radial_log_volume(s3, r), torch.log(4 * math.pi * torch.sin(r) ** 2))
    # Series branch and closed form agree at the switch point; the slope helper is the
    # derivative of log J divided by r.
    h = torch.tensor([0.0499999, 0.0500001], dtype=DT)
    assert float((log_exp_jacobian(s3, h)[0] - log_exp_jacobian(s3, h)[1]).abs()) < 1e-8
    rr = torch.linspace(1e-3, 3.0, 300, dtype=DT).requires_grad_(True)
    (grad,) = torch.autograd.grad(log_exp_jacobian(s3, rr).sum(), rr)
    torch.testing.assert_close(dlog_exp_jacobian_over_r(s3, rr.detach()), grad / rr.detach())


def test_so3_distance_law_is_the_haar_angle_law() -> None:
    """Under Haar measure the angle θ = r/√2 has density (1 − cos θ)/π on [0, π]."""
    so3 = SO3()
    theta = torch.linspace(1e-3, math.pi - 1e-3, 500, dtype=DT)
    r = math.sqrt(2.0) * theta
    density_r = torch.exp(radial_log_volume(so3, r) - so3.log_volume)
    torch.testing.assert_close(density_r * math.sqrt(2.0), (1 - torch.cos(theta)) / math.pi)


def test_riemannian_normal_integrates_to_one_on_s2_by_an_independent_grid() -> None:
    s2 = Sphere(2)
    mu = torch.tensor([0.3, -0.5, 0.8], dtype=DT)
    for gamma in (0.1, 0.6, 3.0):
        law = RadialLaw(s2, mu, _normal_weight(gamma))
        xyz, w = sphere_grid(400, 800)
        total = float((w * law.log_prob(xyz).exp()).sum())
        assert abs(total - 1.0) < 1e-6, (gamma, total)


def test_riemannian_normal_integrates_to_one_on_so3_by_the_haar_angle_law() -> None:
    so3 = SO3()
    gamma = 0.7
    law = RadialLaw(so3, torch.eye(3, dtype=DT).reshape(9), _normal_weight(gamma))

    def integrand(theta: float) -> float:
        r = math.sqrt(2.0) * theta
        p = math.exp(-(r * r) / (2 * gamma**2) - law.log_normalizer)
        return p * math.exp(so3.log_volume) * (1 - math.cos(theta)) / math.pi

    total, _ = integrate.quad(integrand, 0.0, math.pi, epsabs=1e-12)
    assert abs(total - 1.0) < 1e-7


@pytest.mark.parametrize("manifold", [Sphere(2), Sphere(3), SO3()], ids=repr)
def test_radial_sampler_passes_ks_on_distance_and_lies_on_the_manifold(manifold) -> None:
    gen = torch.Generator().manual_seed(3)
    centre = manifold.random_uniform(1, dtype=DT, generator=gen)[0]
    law = RadialLaw(manifold, centre, _normal_weight(0.8))
    x = law.sample(4000, dtype=DT, generator=gen)
    assert x.shape == (4000, manifold.ambient_dim) and manifold.check_point(x, atol=1e-9)
    r = manifold.dist(x, centre)
    pvalue = stats.kstest(r.numpy(), lambda v: law.distance_cdf(torch.as_tensor(v)).numpy()).pvalue
    assert pvalue > 1e-3, pvalue


def test_radial_sampler_direction_is_uniform_around_the_centre_on_s2() -> None:
    north = torch.tensor([0.0, 0.0, 1.0], dtype=DT)
    law = RadialLaw(Sphere(2), north, _normal_weight(0.5))
    x = law.sample(4000, dtype=DT, generator=torch.Generator().manual_seed(4))
    azimuth = torch.atan2(x[:, 1], x[:, 0]).numpy()
    assert stats.kstest(azimuth, stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue > 1e-3


def test_frechet_mean_recovers_the_centre_of_symmetric_data() -> None:
    s2 = Sphere(2)
    centre = torch.tensor([1.0, 2.0, 2.0], dtype=DT) / 3.0
    basis = s2.proju(centre, torch.eye(3, dtype=DT))
    points = torch.stack([s2.expmap(centre, sign * 0.4 * b) for b in basis for sign in (1, -1)])
    torch.testing.assert_close(frechet_mean(s2, points), centre, atol=1e-9, rtol=0)
    so3 = SO3()
    r0 = so3.random_uniform(1, dtype=DT, generator=torch.Generator().manual_seed(5))[0]
    tangent = so3.proju(r0.expand(9, 9), torch.eye(9, dtype=DT))
    rotations = torch.cat([so3.expmap(r0, 0.3 * tangent), so3.expmap(r0, -0.3 * tangent)])
    torch.testing.assert_close(frechet_mean(so3, rotations), r0, atol=1e-8, rtol=0)


def test_radial_law_errors_are_clear() -> None:
    with raises_naming(NotImplementedError, "FlatTorus(2)", "radial_jacobian"):
        RadialLaw(FlatTorus(2), torch.zeros(2, dtype=DT), _normal_weight(1.0))
    with raises_naming(ValueError, "radial log-weight"):
        RadialLaw(Sphere(2), torch.tensor([0.0, 0.0, 1.0]), lambda r: torch.log(r - 1.0))
    with raises_naming(ValueError, "frechet_mean", "(0, 3)"):
        frechet_mean(Sphere(2), torch.zeros(0, 3))
