"""One contract suite run against every manifold (geoopt style), float64, several seeds."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.geometry import Euclidean, FlatTorus, Manifold, Sphere
from pipeline.so3.manifold import SO3, rodrigues
from tests.errors import raises_naming

MANIFOLDS = [Sphere(1), Sphere(2), Sphere(5), FlatTorus(1), FlatTorus(2), Euclidean(3), SO3()]
SEEDS = [0, 1, 2, 3, 4]
DT = torch.float64


@pytest.fixture(params=MANIFOLDS, ids=repr)
def manifold(request: pytest.FixtureRequest) -> Manifold:
    return request.param


@pytest.fixture(params=SEEDS)
def gen(request: pytest.FixtureRequest) -> torch.Generator:
    return torch.Generator().manual_seed(request.param)


def _points(m: Manifold, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    return m.projx(torch.randn(*shape, m.ambient_dim, dtype=DT, generator=gen))


def _tangent(m: Manifold, x: torch.Tensor, gen: torch.Generator, scale: float = 1.0):
    u = torch.randn(x.shape, dtype=DT, generator=gen)
    return scale * m.proju(x, u)


def test_projx_idempotent_and_on_manifold(manifold: Manifold, gen: torch.Generator) -> None:
    raw = 3 * torch.randn(4, 7, manifold.ambient_dim, dtype=DT, generator=gen)
    x = manifold.projx(raw)
    assert x.shape == raw.shape
    assert manifold.check_point(x, atol=1e-12)
    torch.testing.assert_close(manifold.projx(x), x, rtol=0, atol=1e-14)


def test_proju_tangent_and_idempotent(manifold: Manifold, gen: torch.Generator) -> None:
    x = _points(manifold, (4, 7), gen)
    u = manifold.proju(x, torch.randn(x.shape, dtype=DT, generator=gen))
    assert manifold.check_vector(x, u, atol=1e-12)
    torch.testing.assert_close(manifold.proju(x, u), u, rtol=0, atol=1e-14)


def test_exp_lands_on_manifold_and_exp_log_identity(
    manifold: Manifold, gen: torch.Generator
) -> None:
    x = _points(manifold, (50,), gen)
    u = _tangent(manifold, x, gen, scale=1.3)
    y = manifold.expmap(x, u)
    assert manifold.check_point(y, atol=1e-12)
    z = _points(manifold, (50,), gen)
    v = manifold.logmap(x, z)
    assert manifold.check_vector(x, v, atol=1e-12)
    torch.testing.assert_close(manifold.expmap(x, v), z, rtol=0, atol=1e-12)


def test_log_exp_identity_inside_injectivity_radius(
    manifold: Manifold, gen: torch.Generator
) -> None:
    x = _points(manifold, (50,), gen)
    u = _tangent(manifold, x, gen)
    # Shrink to norm < 0.9·π per circle factor / on the sphere so log∘exp is the identity.
    u = 0.9 * math.pi * u / (1 + manifold.norm(x, u).unsqueeze(-1)) / math.sqrt(manifold.dim)
    torch.testing.assert_close(manifold.logmap(x, manifold.expmap(x, u)), u, rtol=0, atol=1e-12)


def test_dist_symmetric_and_equals_log_norm(manifold: Manifold, gen: torch.Generator) -> None:
    x = _points(manifold, (50,), gen)
    y = _points(manifold, (50,), gen)
    d = manifold.dist(x, y)
    assert d.shape == (50,)
    torch.testing.assert_close(d, manifold.dist(y, x), rtol=0, atol=1e-14)
    torch.testing.assert_close(d, manifold.norm(x, manifold.logmap(x, y)), rtol=0, atol=1e-12)
    torch.testing.assert_close(manifold.dist(x, x), torch.zeros(50, dtype=DT), rtol=0, atol=1e-7)


def test_broadcasting(manifold: Manifold, gen: torch.Generator) -> None:
    x = _points(manifold, (3, 1), gen)
    y = _points(manifold, (1, 5), gen)
    assert manifold.logmap(x, y).shape == (3, 5, manifold.ambient_dim)
    assert manifold.dist(x, y).shape == (3, 5)


def test_tiny_tangent_vectors(manifold: Manifold, gen: torch.Generator) -> None:
    x = _points(manifold, (20,), gen)
    u = _tangent(manifold, x, gen, scale=1e-12)
    y = manifold.expmap(x, u)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, x + u, rtol=0, atol=1e-15)
    v = manifold.logmap(x, y)
    assert torch.isfinite(v).all()
    torch.testing.assert_close(v, u, rtol=0, atol=1e-15)
    assert torch.isfinite(manifold.expmap(x, torch.zeros_like(x))).all()


def test_near_antipodal_points_no_nan(manifold: Manifold, gen: torch.Generator) -> None:
    if isinstance(manifold, Euclidean):
        pytest.skip("no antipodes in R^d")
    x = _points(manifold, (20,), gen)
    if isinstance(manifold, Sphere):
        anti = -x
        expected = math.pi
    elif isinstance(manifold, SO3):  # a half turn about a random axis: the cut locus
        axis = torch.randn(20, 3, dtype=DT, generator=gen)
        turn = rodrigues(math.pi * axis / axis.norm(dim=-1, keepdim=True))
        anti = manifold.from_matrices(manifold.matrices(x) @ turn)
        expected = math.pi * math.sqrt(2.0)
    else:
        anti = -x  # every circle factor antipodal
        expected = math.pi * math.sqrt(manifold.dim)
    for eps in (0.0, 1e-12, 1e-7):
        y = manifold.projx(anti + eps * _tangent(manifold, x, gen))
        v = manifold.logmap(x, y)
        d = manifold.dist(x, y)
        assert torch.isfinite(v).all() and torch.isfinite(d).all()
        torch.testing.assert_close(d, torch.full_like(d, expected), rtol=0, atol=1e-6)
        if eps > 0:
            torch.testing.assert_close(manifold.norm(x, v), d, rtol=0, atol=1e-6)


def test_gradients_finite_at_coincident_points(manifold: Manifold, gen: torch.Generator) -> None:
    x = _points(manifold, (10,), gen).requires_grad_(True)
    y = x.detach().clone()
    (manifold.dist(x, y).sum() + manifold.logmap(x, y).sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    u = torch.zeros_like(x, requires_grad=True)
    manifold.expmap(x.detach(), u).sum().backward()
    assert u.grad is not None and torch.isfinite(u.grad).all()


def test_random_normal_tangent_is_standard(manifold: Manifold, gen: torch.Generator) -> None:
    x = _points(manifold, (1,), gen).expand(20000, -1)
    z = manifold.random_normal_tangent(x, generator=gen)
    assert manifold.check_vector(x, z, atol=1e-12)
    # E|Z|² = intrinsic dimension.
    assert abs(float((z * z).sum(-1).mean()) - manifold.dim) < 0.1 * manifold.dim


def test_uniform(manifold: Manifold, gen: torch.Generator) -> None:
    if isinstance(manifold, Euclidean):
        with raises_naming(ValueError, repr(manifold)):
            manifold.random_uniform(3, dtype=DT, generator=gen)
        with raises_naming(ValueError, repr(manifold)):
            manifold.uniform_logprob(torch.zeros(2, 3, dtype=DT))
        return
    x = manifold.random_uniform(4000, dtype=DT, generator=gen)
    assert x.shape == (4000, manifold.ambient_dim) and x.dtype == DT
    assert manifold.check_point(x, atol=1e-12)
    assert float(x.mean(0).abs().max()) < 0.1  # centred (uniform is symmetric)
    lp = manifold.uniform_logprob(x[:5].reshape(5, 1, -1))
    assert lp.shape == (5, 1)


@pytest.mark.parametrize(
    ("m", "log_volume"),
    [
        (Sphere(1), math.log(2 * math.pi)),
        (Sphere(2), math.log(4 * math.pi)),
        (Sphere(3), math.log(2 * math.pi**2)),
        (Sphere(5), math.log(math.pi**3)),
        (FlatTorus(1), math.log(2 * math.pi)),
        (FlatTorus(2), 2 * math.log(2 * math.pi)),
        (SO3(), math.log(16 * math.sqrt(2) * math.pi**2)),
    ],
    ids=repr,
)
def test_uniform_logprob_is_minus_log_volume(m: Manifold, log_volume: float) -> None:
    x = m.projx(torch.ones(2, m.ambient_dim, dtype=DT))
    torch.testing.assert_close(m.uniform_logprob(x), torch.full((2,), -log_volume, dtype=DT))


def test_curvature_operator_coeffs() -> None:
    assert Sphere(2).curvature_operator_coeff == 0.0
    assert Sphere(1).curvature_operator_coeff == 0.5
    assert Sphere(5).curvature_operator_coeff == -1.5
    assert FlatTorus(2).curvature_operator_coeff == 0.5
    assert Euclidean(3).curvature_operator_coeff == 0.0
    assert SO3().curvature_operator_coeff == 0.25


def test_check_point_and_assert_point() -> None:
    s = Sphere(2)
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=DT)
    assert not s.check_point(x)
    assert s.check_point(x[:1])
    assert not s.check_point(torch.ones(2, 4, dtype=DT))
    with raises_naming(ValueError, "Sphere(2)"):
        s.assert_point(x)
    assert not s.check_vector(x[:1], torch.tensor([[1.0, 1.0, 0.0]], dtype=DT))


def test_sphere_exp_matches_closed_form() -> None:
    s = Sphere(2)
    x = torch.tensor([0.0, 0.0, 1.0], dtype=DT)
    u = torch.tensor([math.pi / 2, 0.0, 0.0], dtype=DT)
    torch.testing.assert_close(s.expmap(x, u), torch.tensor([1.0, 0.0, 0.0], dtype=DT))
    t = FlatTorus(1)
    p = t.angles_to_points(torch.tensor([0.3], dtype=DT))
    q = t.angles_to_points(torch.tensor([-2.9], dtype=DT))
    # shortest signed angle from 0.3 to −2.9 is −3.2 + 2π
    torch.testing.assert_close(t.dist(p, q), torch.tensor(2 * math.pi - 3.2, dtype=DT))


def test_bad_constructor_arguments() -> None:
    with raises_naming(ValueError, "Sphere", "dimension"):
        Sphere(0)
    with raises_naming(ValueError, "FlatTorus"):
        FlatTorus(0)
    with raises_naming(ValueError, "Sphere(2)", "(3, 4)"):
        Sphere(2).projx(torch.ones(3, 4))
