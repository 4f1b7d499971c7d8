"""Wrapped normal mixtures on SO(3): exact density (mass 1, small-scale limit), sampler KS."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from pipeline.so3.manifold import SO3, rodrigues
from pipeline.so3.wrapped import WrappedMixture, reference_mixture, wrapped_normal_logp

DT = torch.float64
SO = SO3()
EYE = SO.from_matrices(torch.eye(3, dtype=DT))


def _at_angle(theta: float) -> torch.Tensor:
    return SO.from_matrices(rodrigues(torch.tensor([0.0, 0.0, theta], dtype=DT)))


def _angle_density(theta: float, sigma: float) -> float:
    """p(θ) vol (1 − cos θ)/π: the density of the angle to the mean."""
    lp = float(wrapped_normal_logp(_at_angle(theta), EYE, sigma))
    return math.exp(lp + SO.log_volume) * (1.0 - math.cos(theta)) / math.pi


@pytest.mark.parametrize("sigma", [0.05, 0.3, 1.0, 1.5])
def test_wrapped_normal_integrates_to_one(sigma: float) -> None:
    mass, _ = integrate.quad(
        _angle_density, 0.0, math.pi, args=(sigma,), points=[min(3 * sigma, 3.0)], limit=200
    )
    assert mass == pytest.approx(1.0, abs=1e-8)


def test_small_scale_is_the_gaussian_over_the_exp_volume_element() -> None:
    sigma, theta = 0.05, 0.04
    gaussian = -1.5 * math.log(2 * math.pi * sigma**2) - theta**2 / (2 * sigma**2)
    element = 2 * math.sqrt(2) * 2 * (1 - math.cos(theta)) / theta**2  # → 2√2 at θ = 0
    got = float(wrapped_normal_logp(_at_angle(theta), EYE, sigma))
    assert got == pytest.approx(gaussian - math.log(element), abs=1e-12)


@pytest.mark.parametrize("sigma", [0.1, 1.2])
def test_sampler_angle_law_ks(sigma: float) -> None:
    gen = torch.Generator().manual_seed(0)
    mix = WrappedMixture(EYE[None], torch.tensor([sigma], dtype=DT), torch.ones(1, dtype=DT))
    x, k = mix.sample(3000, generator=gen)
    assert SO.check_point(x, atol=1e-12) and bool((k == 0).all())
    theta = SO.angle(EYE.expand_as(x), x).numpy()
    grid = np.linspace(0.0, math.pi, 801)
    dens = np.array([_angle_density(t, sigma) if t > 0 else 0.0 for t in grid])
    cdf = np.concatenate(([0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))))
    assert stats.kstest(theta, lambda q: np.interp(q, grid, cdf)).pvalue > 1e-3


def test_mixture_weights_and_reference_law() -> None:
    mix = reference_mixture(16, seed=0)
    assert mix.means.shape == (16, 9) and mix.sigmas.shape == (16,)
    assert SO.check_point(mix.means, atol=1e-12)
    # precision ~ Gamma(100): τ = 1/√precision ≈ 0.1 in the Frobenius-unit basis, σ = τ/√2
    assert float((mix.sigmas - 0.1 / math.sqrt(2.0)).abs().max()) < 0.02
    again = reference_mixture(16, seed=0)
    torch.testing.assert_close(again.means, mix.means)
    # At a component's mean the mixture is that component times its weight (others far away).
    near = mix.means[:1]
    alone = wrapped_normal_logp(near, near, mix.sigmas[0])
    assert float(mix.log_prob(near)[0]) == pytest.approx(float(alone) + math.log(1 / 16), abs=1e-6)
    x, k = mix.sample(2000, generator=torch.Generator().manual_seed(1))
    counts = np.bincount(k.numpy(), minlength=16)
    assert counts.min() > 60 and counts.max() < 200  # ~125 each
    assert torch.isfinite(mix.log_prob(x)).all()
