"""Langevin equilibria: quadrature closed forms, heat-smoothed law, and simulation agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.ambient.langevin import (
    ZonalDrift,
    constant_drift,
    equilibrium_quadrature,
    heat_smoothed_mean,
    heat_smoothed_stats,
    rb_drift,
)
from pipeline.ambient.langevin_simulation import langevin_equilibrium
from pipeline.geometry import Sphere
from pipeline.geometry.vmf import vmf_mean_resultant
from tests.errors import raises_naming


@pytest.mark.parametrize("d", [1, 2, 6, 10])
def test_true_drift_equilibrium_is_the_vmf(d: int) -> None:
    st = equilibrium_quadrature(constant_drift(3.0), d)
    assert st.mean == pytest.approx(float(vmf_mean_resultant(3.0, d + 1)), abs=1e-12)
    assert st.kappa_eff == pytest.approx(3.0, rel=1e-8)


@pytest.mark.parametrize("d", [1, 2, 6])
def test_heat_smoothed_series_matches_exact_mean(d: int) -> None:
    for s in (0.0, 0.05, 0.3):
        assert heat_smoothed_stats(4.0, d, s).mean == pytest.approx(
            heat_smoothed_mean(4.0, d, s), abs=1e-10
        )


def test_corrected_drift_is_scaled_rb_drift() -> None:
    d, kappa, sigma = 6, 2.0, 0.3
    m = np.linspace(-1, 1, 7)
    raw = rb_drift(kappa, sigma, d, False, degree=48).phi_prime(m)
    cor = rb_drift(kappa, sigma, d, True, degree=48).phi_prime(m)
    np.testing.assert_allclose(cor, (1 - (1 - d / 2) * sigma**2) * raw, rtol=1e-12)


def test_torch_table_matches_chebyshev() -> None:
    drift = ZonalDrift.from_function(lambda m: 2.0 + np.sin(3 * m), 40)
    m = torch.linspace(-1, 1, 1001, dtype=torch.float64)
    np.testing.assert_allclose(
        drift.phi_prime_torch(m).numpy(), drift.phi_prime(m.numpy()), atol=2e-6
    )


def test_small_sigma_rb_drift_tends_to_true_equilibrium() -> None:
    st = equilibrium_quadrature(rb_drift(5.0, 0.02, 2, False, degree=48), 2)
    assert st.kappa_eff == pytest.approx(5.0, rel=0.02)


@pytest.mark.parametrize("d", [2, 6])
def test_simulation_agrees_with_quadrature(d: int) -> None:
    drift = rb_drift(2.0, 0.3, d, False, degree=48)
    res = langevin_equilibrium(
        drift,
        Sphere(d),
        2.0,
        [0.02, 0.01],
        n_chains=3000,
        t_burn=0.5,
        t_avg=2.0,
        generator=torch.Generator().manual_seed(d),
    )
    exact = equilibrium_quadrature(drift, d).mean
    assert abs(res.extrapolated - exact) < 4 * res.extrapolated_se + 2e-3
    assert res.extrapolated_se < 0.012
    # the test can tell the RB equilibrium from the true vMF one
    assert (
        abs(exact - equilibrium_quadrature(constant_drift(2.0), d).mean) > 4 * res.extrapolated_se
    )


def test_extrapolation_needs_two_steps() -> None:
    with raises_naming(ValueError, "step-size extrapolation"):
        langevin_equilibrium(
            constant_drift(1.0), Sphere(2), 1.0, [0.01], 10, 0.1, 0.1, torch.Generator()
        )


def test_heat_smoothed_kappa_is_below_kappa() -> None:
    st = heat_smoothed_stats(10.0, 2, 0.29**2)
    # Gaussian intuition: 1/κ_eff ≈ 1/κ + s on S².
    assert st.kappa_eff == pytest.approx(1.0 / (0.1 + 0.29**2), rel=0.1)
    assert math.isfinite(st.second_moment)


def test_drift_table_belongs_to_its_drift_when_ids_are_reused() -> None:
    """A drift created after another was freed (CPython may reuse its id) uses its own φ'."""
    mu = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    z = torch.nn.functional.normalize(
        torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    m = (z @ mu)[:, None]
    for k in range(1, 200):
        drift = constant_drift(float(k))  # the previous one is freed here
        torch.testing.assert_close(drift(z, mu), float(k) * (mu - m * z))
