"""The heat-kernel MMD on S²: the kernel against closed forms, and the two-sample test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.geometry.vmf import sample_vmf_s2
from pipeline.mmd import heat_kernel_s2, mmd2_unbiased, mmd_test
from tests.errors import raises_naming


@pytest.mark.parametrize("s", [0.01, 0.1, 1.0])
def test_kernel_integrates_to_one_and_is_the_uniform_density_at_large_time(s: float) -> None:
    # ∫_{S²} k_s(x, y) dy = 2π ∫_{-1}^{1} k(t) dt (Gauss–Legendre in t = cos θ).
    t, w = np.polynomial.legendre.leggauss(400)
    assert 2 * math.pi * float(np.sum(w * heat_kernel_s2(t, s))) == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(heat_kernel_s2(t, 30.0), 1 / (4 * math.pi), rtol=1e-12)


def test_kernel_matches_the_small_time_gaussian_near_the_pole() -> None:
    # For small s, k_s(θ) ≈ exp(−θ²/(2s)) / (2π s) near θ = 0 (the tangent-plane Gaussian).
    s = 1e-3
    theta = np.array([0.0, 0.02, 0.04])
    gauss = np.exp(-(theta**2) / (2 * s)) / (2 * math.pi * s)
    np.testing.assert_allclose(heat_kernel_s2(np.cos(theta), s), gauss, rtol=2e-3)


def _vmf(mu: list[float], kappa: float, n: int, seed: int) -> np.ndarray:
    m = np.asarray(mu, dtype=np.float64)
    means = np.tile(m / np.linalg.norm(m), (n, 1))
    return sample_vmf_s2(means, kappa, np.random.default_rng(seed))


@pytest.mark.parametrize("s", [0.01, 0.1])
def test_one_law_is_not_told_apart_and_two_vmf_laws_are(s: float) -> None:
    x = _vmf([0, 0, 1], 5.0, 200, 1)
    same = mmd_test(x, _vmf([0, 0, 1], 5.0, 200, 2), s, n_permutations=200, seed=0)
    other = mmd_test(x, _vmf([0, 1, 1], 5.0, 200, 2), s, n_permutations=200, seed=0)  # 45° away
    assert same.p_value > 0.05, same
    assert other.mmd2 > 0 and other.p_value < 0.01, other
    assert other.p_value == pytest.approx(1 / 201)
    assert abs(same.mmd2) < 0.2 * other.mmd2


def test_bad_inputs_are_refused() -> None:
    x = _vmf([0, 0, 1], 5.0, 10, 1)
    with raises_naming(ValueError, "(1, 3)"):
        mmd2_unbiased(x[:1], x, 0.1)
    with raises_naming(ValueError, "heat time", "0.0"):
        heat_kernel_s2(np.zeros(3), 0.0)
