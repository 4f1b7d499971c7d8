"""Exact checks of the probability-flow ODE likelihood and of the S² quadrature grid."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from pipeline.geometry import Sphere
from pipeline.likelihood import pf_ode_logp, sphere_grid
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.heat_kernel import (
    heat_kernel_logp,
    heat_kernel_mixture_logp,
    heat_kernel_mixture_score,
)
from pipeline.sde.schedules import LinearBeta
from tests.errors import raises_naming

SPHERE = Sphere(2)
SCHED = LinearBeta(beta_0=1e-3, beta_1=4.0, T=1.0)
CENTERS = SPHERE.projx(
    torch.tensor([[0.0, 0.0, 1.0], [0.6, 0.8, 0.0], [-0.5, 0.0, -0.9]], dtype=torch.float64)
)
WEIGHTS = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
S0 = 0.05


def _score(x: Tensor, t: Tensor) -> Tensor:
    return heat_kernel_mixture_score(x, CENTERS, S0 + SCHED.heat_time(t), WEIGHTS)


def _base_exact(x: Tensor) -> Tensor:
    return heat_kernel_mixture_logp(x, CENTERS, S0 + SCHED.heat_time(SCHED.T), WEIGHTS)


def test_zero_score_gives_uniform_density() -> None:
    x = SPHERE.random_uniform(16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    logp, nfe = pf_ode_logp(lambda y, t: torch.zeros_like(y), BrownianMotion(SPHERE, SCHED), x)
    torch.testing.assert_close(logp, torch.full((16,), -math.log(4 * math.pi), dtype=torch.float64))
    assert nfe > 0


def _data_like_points(n_per_center: int, seed: int) -> Tensor:
    """Points at typical distances (~sqrt(S0)) from the centres, like draws from the data law."""
    gen = torch.Generator().manual_seed(seed)
    c = CENTERS.repeat_interleave(n_per_center, dim=0)
    z = SPHERE.random_normal_tangent(c, gen) * math.sqrt(S0)
    return SPHERE.expmap(c, z)


@pytest.mark.parametrize("t0", [0.0, 1e-3])
def test_exact_score_reproduces_heat_kernel_mixture_density(t0: float) -> None:
    # Data ~ sum_k w_k p_{S0}(.|c_k), so p_t is the mixture at S0 + s(t) and its score is exact:
    # the ODE (reference tolerances 1e-5) must give log p_{t0} at the data points within 1e-3
    # nats (base = the exact p_T).
    x = _data_like_points(3, seed=1)
    logp, nfe = pf_ode_logp(_score, BrownianMotion(SPHERE, SCHED), x, t0=t0, base=_base_exact)
    expected = heat_kernel_mixture_logp(x, CENTERS, S0 + SCHED.heat_time(t0), WEIGHTS)
    assert (logp - expected).abs().max() < 1e-3, (logp - expected).abs().max()
    # the density varies by nats over these points, so the check is not vacuous
    assert float(expected.max() - expected.min()) > 1.0
    assert 10 < nfe < 500


@pytest.mark.slow
def test_exact_score_tight_tolerance_anywhere() -> None:
    # Arbitrary points, down to the far tails (-14 nats): the error is solver error only.
    gen = torch.Generator().manual_seed(1)
    x = torch.cat([SPHERE.random_uniform(12, dtype=torch.float64, generator=gen), CENTERS])
    logp, _ = pf_ode_logp(
        _score,
        BrownianMotion(SPHERE, SCHED),
        x,
        t0=0.0,
        base=_base_exact,
        rtol=1e-8,
        atol=1e-8,
        batch_size=8,
    )
    expected = heat_kernel_mixture_logp(x, CENTERS, S0, WEIGHTS)
    assert (logp - expected).abs().max() < 1e-4, (logp - expected).abs().max()


def test_uniform_base_error_is_the_prior_mismatch() -> None:
    # With the uniform base the error at x is log p_T(x_T) + log 4π, small for s(T) = 2.
    x = CENTERS[:1]
    logp, _ = pf_ode_logp(_score, BrownianMotion(SPHERE, SCHED), x, t0=0.0)
    expected = heat_kernel_mixture_logp(x, CENTERS, S0, WEIGHTS)
    assert 1e-4 < float((logp - expected).abs().max()) < 0.3


def test_hutchinson_divergence_is_close_on_average() -> None:
    x = CENTERS[:1].expand(64, 3).clone()
    logp, _ = pf_ode_logp(
        _score, BrownianMotion(SPHERE, SCHED), x, t0=0.0, base=_base_exact, divergence="hutchinson",
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    expected = float(heat_kernel_mixture_logp(x[:1], CENTERS, S0, WEIGHTS)[0])
    assert abs(float(logp.mean()) - expected) < 4 * float(logp.std()) / 8 + 1e-3
    assert float(logp.std()) > 0


def test_pf_ode_validates_inputs() -> None:
    x = SPHERE.random_uniform(4, dtype=torch.float64)
    zero = lambda y, t: torch.zeros_like(y)  # noqa: E731
    with raises_naming(ValueError, "t0=1.5"):
        pf_ode_logp(zero, BrownianMotion(SPHERE, SCHED), x, t0=1.5)
    with raises_naming(ValueError, "divergence", "'bogus'"):
        pf_ode_logp(zero, BrownianMotion(SPHERE, SCHED), x, divergence="bogus")  # type: ignore[arg-type]
    with raises_naming(RuntimeError, "4 of 4"):
        pf_ode_logp(
            zero,
            BrownianMotion(SPHERE, SCHED),
            x,
            base=lambda y: torch.full(y.shape[:-1], float("nan")),
        )


def test_sphere_grid_integrates_uniform_polynomials_and_heat_kernel() -> None:
    xyz, w = sphere_grid(48, 96)
    assert xyz.shape == (48 * 96, 3) and w.shape == (48 * 96,)
    torch.testing.assert_close(xyz.norm(dim=-1), torch.ones(48 * 96, dtype=torch.float64))
    assert abs(float(w.sum()) - 4 * math.pi) < 1e-12
    assert abs(float((w * xyz[:, 2] ** 2).sum()) - 4 * math.pi / 3) < 1e-12
    assert abs(float((w * xyz[:, 0] ** 2 * xyz[:, 1] ** 2).sum()) - 4 * math.pi / 15) < 1e-12
    for s in (0.05, 0.5):
        mu = torch.tensor([0.3, -0.4, math.sqrt(0.75)], dtype=torch.float64)
        dens = heat_kernel_logp(xyz, mu.expand_as(xyz), s).exp()
        assert abs(float((w * dens).sum()) - 1.0) < 1e-6
    with pytest.raises(ValueError):
        sphere_grid(0, 4)
