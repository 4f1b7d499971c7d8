"""Importance-sampled normalisation on S² against densities with known integrals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.normalization import importance_normalization, proposal_logq
from pipeline.sde.heat_kernel import heat_kernel_mixture_logp
from tests.errors import raises_naming


def _random_points(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, 3))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_proposal_density_integrates_to_one_on_a_grid() -> None:
    from pipeline.likelihood import sphere_grid

    xyz, w = sphere_grid(200, 400, dtype=torch.float64)
    lq = proposal_logq(xyz.numpy(), _random_points(5, 7), (2.0, 20.0), 0.3, chunk=1000)
    assert float((w.numpy() * np.exp(lq)).sum()) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_uniform_and_scaled_uniform(scale: float) -> None:
    centers = _random_points(30, 1)

    def logp(x: np.ndarray) -> np.ndarray:
        return np.full(x.shape[0], math.log(scale) - math.log(4 * math.pi))

    est = importance_normalization(logp, centers, 4000, seed=2)
    assert abs(est.z - scale) < 4 * est.stderr
    assert est.stderr < 0.1 * scale


def test_sharp_heat_kernel_mixture_integrates_to_one() -> None:
    # Peaks of width ~ sqrt(s) = 0.007 rad, far below a 3-degree grid's spacing.
    centers = _random_points(40, 3)
    c = torch.as_tensor(centers)

    def logp(x: np.ndarray) -> np.ndarray:
        return heat_kernel_mixture_logp(torch.as_tensor(x), c, 5e-5).numpy()

    est = importance_normalization(logp, centers, 4000, seed=4)
    assert abs(est.z - 1.0) < 4 * est.stderr
    assert est.stderr < 0.04
    assert est.ess > 500


def test_bad_arguments() -> None:
    with raises_naming(ValueError, "centers", "(0, 3)"):
        importance_normalization(lambda x: x[:, 0], np.zeros((0, 3)), 10)
    with raises_naming(ValueError, "uniform_weight"):
        importance_normalization(lambda x: x[:, 0], _random_points(3, 0), 10, uniform_weight=0)
    with raises_naming(ValueError, "logp_fn", "(10, 3)", "(10,)"):
        importance_normalization(lambda x: x, _random_points(3, 0), 10)
