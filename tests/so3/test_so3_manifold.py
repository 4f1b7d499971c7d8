"""SO(3) ⊂ R^{3×3}: closed forms of its metric, volume, Haar law and curvature operator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.func import jacrev

from pipeline.ambient.curvature import curvature_operators, manifold_projector
from pipeline.so3.manifold import SO3, hat, rodrigues, rotation_log, vee

DT = torch.float64
SO = SO3()


def _rz(alpha: float) -> torch.Tensor:
    c, s = math.cos(alpha), math.sin(alpha)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=DT)


def test_distance_is_root_two_times_the_rotation_angle() -> None:
    eye = SO.from_matrices(torch.eye(3, dtype=DT))
    for alpha in (1e-9, 0.3, 2.0, math.pi - 1e-9, math.pi):
        d = SO.dist(eye, SO.from_matrices(_rz(alpha)))
        assert float(d) == pytest.approx(math.sqrt(2) * alpha, abs=1e-9)


def test_hat_vee_rodrigues_and_log_round_trip() -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(200, 3, dtype=DT, generator=gen)
    torch.testing.assert_close(vee(hat(w)), w)
    torch.testing.assert_close(hat(w) @ w[..., None], torch.zeros(200, 3, 1, dtype=DT))
    # rotation vectors of every length up to π, and the half turn itself
    w = w / w.norm(dim=-1, keepdim=True) * torch.linspace(0, math.pi, 200, dtype=DT)[:, None]
    q = rodrigues(w)
    torch.testing.assert_close(q.transpose(-1, -2) @ q, torch.eye(3, dtype=DT).expand(200, 3, 3))
    back = rotation_log(q)
    torch.testing.assert_close(rodrigues(back), q, rtol=0, atol=1e-12)
    torch.testing.assert_close(back[:-1], w[:-1], rtol=0, atol=1e-9)
    assert abs(float(back[-1].norm()) - math.pi) < 1e-12


def test_projx_gives_the_nearest_rotation_and_fixes_reflections() -> None:
    gen = torch.Generator().manual_seed(1)
    r = SO.random_uniform(50, dtype=DT, generator=gen)
    noisy = r + 1e-3 * torch.randn(r.shape, dtype=DT, generator=gen)
    torch.testing.assert_close(SO.projx(noisy), r, rtol=0, atol=5e-3)
    reflection = SO.from_matrices(torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=DT)))
    assert float(torch.linalg.det(SO.matrices(SO.projx(reflection)))) == pytest.approx(1.0)


def test_haar_samples_have_the_angle_law_and_the_volume_is_16_root2_pi2() -> None:
    gen = torch.Generator().manual_seed(2)
    x = SO.random_uniform(20000, dtype=DT, generator=gen)
    eye = SO.from_matrices(torch.eye(3, dtype=DT)).expand_as(x)
    theta = SO.angle(eye, x).numpy()

    # Haar: density (1 - cos θ)/π on [0, π], CDF (θ - sin θ)/π.
    def haar_angle_cdf(t: np.ndarray) -> np.ndarray:
        return (t - np.sin(t)) / math.pi

    assert stats.kstest(theta, haar_angle_cdf).pvalue > 1e-3

    # The Riemannian volume element in exponential coordinates, from the embedding's Jacobian:
    # sqrt(det JᵀJ) = 2√2 · 2(1 − cos θ)/θ², whose integral over the ball |ω| ≤ π is 16√2 π².
    def embed(w: torch.Tensor) -> torch.Tensor:
        return rodrigues(w).reshape(9)

    for w in torch.randn(10, 3, dtype=DT, generator=gen):
        jac = jacrev(embed)(w)
        t = float(w.norm())
        volume_element = float(torch.sqrt(torch.linalg.det(jac.T @ jac)))
        assert volume_element == pytest.approx(2 * math.sqrt(2) * 2 * (1 - math.cos(t)) / t**2)
    nodes, weights = (torch.as_tensor(a, dtype=DT) for a in np.polynomial.legendre.leggauss(64))
    t = 0.5 * math.pi * (nodes + 1)  # Gauss-Legendre on [0, π], radial shells of area 4πθ²
    element = 2 * math.sqrt(2) * 2 * (1 - torch.cos(t)) / t**2
    volume = float((0.5 * math.pi * weights * 4 * math.pi * t**2 * element).sum())
    assert volume == pytest.approx(16 * math.sqrt(2) * math.pi**2, rel=1e-12)
    assert volume == pytest.approx(math.exp(SO.log_volume), rel=1e-12)


def test_curvature_operator_measured_from_the_tangent_projector_is_one_quarter() -> None:
    # The geometry stage's measurement: differentiate x ↦ P_{π(x)} (through projx).
    gen = torch.Generator().manual_seed(3)
    for z in SO.random_uniform(3, dtype=DT, generator=gen):
        ops = curvature_operators(manifold_projector(SO), z, 3)
        quarter = torch.full((3,), 0.25, dtype=DT)
        torch.testing.assert_close(torch.linalg.eigvalsh(ops.operator), quarter, rtol=0, atol=1e-10)
        torch.testing.assert_close(torch.linalg.eigvalsh(ops.ricci), quarter, rtol=0, atol=1e-10)


def test_projx_derivative_on_so3_is_the_tangent_projector() -> None:
    gen = torch.Generator().manual_seed(4)
    x = SO.random_uniform(1, dtype=DT, generator=gen)[0]
    jac = jacrev(SO.projx)(x)
    proj = SO.proju(x.expand(9, 9), torch.eye(9, dtype=DT))
    torch.testing.assert_close(jac, proj, rtol=0, atol=1e-12)
