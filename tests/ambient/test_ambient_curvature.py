"""½W_H − Ric♯ from the second fundamental form against the closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.ambient.curvature import (
    curvature_operators,
    manifold_projector,
    torus_of_revolution_operator_eigenvalues,
    torus_of_revolution_point,
    torus_of_revolution_projector,
)
from pipeline.geometry import FlatTorus, Sphere
from tests.errors import raises_naming


@pytest.mark.parametrize("d", [1, 2, 3, 6, 10])
def test_sphere_operator_is_one_minus_half_d(d: int) -> None:
    man = Sphere(d)
    z = man.random_uniform(1, dtype=torch.float64, generator=torch.Generator().manual_seed(d))[0]
    ops = curvature_operators(manifold_projector(man), z, d)
    eye = torch.eye(d, dtype=torch.float64)
    torch.testing.assert_close(ops.operator, (1.0 - d / 2.0) * eye, atol=1e-10, rtol=0)
    torch.testing.assert_close(ops.ricci, (d - 1.0) * eye, atol=1e-10, rtol=0)
    torch.testing.assert_close(ops.mean_curvature, -d * z, atol=1e-10, rtol=0)
    assert man.curvature_operator_coeff == pytest.approx(1.0 - d / 2.0)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_flat_torus_operator_is_plus_half(n: int) -> None:
    tor = FlatTorus(n)
    z = tor.random_uniform(1, dtype=torch.float64, generator=torch.Generator().manual_seed(n))[0]
    ops = curvature_operators(manifold_projector(tor), z, n)
    eye = torch.eye(n, dtype=torch.float64)
    torch.testing.assert_close(ops.ricci, 0.0 * eye, atol=1e-10, rtol=0)
    torch.testing.assert_close(ops.operator, 0.5 * eye, atol=1e-10, rtol=0)
    assert tor.curvature_operator_coeff == pytest.approx(0.5)


@pytest.mark.parametrize("phi", [0.0, 0.9, math.pi / 2, 2.4, math.pi])
def test_torus_of_revolution_is_not_plus_half(phi: float) -> None:
    R, r = 2.0, 0.5
    z = torus_of_revolution_point(R, r, 1.1, phi)
    ops = curvature_operators(torus_of_revolution_projector(R, r), z, 2)
    ev = sorted(torch.linalg.eigvalsh(ops.operator).tolist())
    assert ev == pytest.approx(
        sorted(torus_of_revolution_operator_eigenvalues(R, r, phi)), abs=1e-9
    )
    gauss = math.cos(phi) / (r * (R + r * math.cos(phi)))
    torch.testing.assert_close(
        ops.ricci, gauss * torch.eye(2, dtype=torch.float64), atol=1e-9, rtol=0
    )
    assert max(abs(e - 0.5) for e in ev) > 0.3  # the doughnut in R³ is not the flat torus


def test_rank_mismatch_raises() -> None:
    man = Sphere(2)
    z = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    with raises_naming(ValueError, "rank 2", "dimension 1"):
        curvature_operators(manifold_projector(man), z, 1)
