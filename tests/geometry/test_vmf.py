"""The vMF law on S^{D-1}: normalisers against closed forms, the samplers' laws, the score."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special, stats

from pipeline.geometry.vmf import (
    log_vmf_partition,
    sample_vmf,
    sample_vmf_rows,
    sample_vmf_s2,
    vmf_kappa_from_mean,
    vmf_log_norm_s2,
    vmf_logp_s2,
    vmf_logp_s2_torch,
    vmf_mean_resultant,
    vmf_score,
    vmf_score_sq_mean,
)
from pipeline.likelihood import sphere_grid


def _cos_cdf(kappa: float, D: int) -> tuple[np.ndarray, np.ndarray]:
    """CDF of w = <z, mu> under vMF on S^{D-1} (density ∝ e^{κw}(1 − w²)^{(D−3)/2}), tabulated."""
    w = np.linspace(-1.0, 1.0, 200_001)
    dens = np.exp(kappa * (w - 1.0)) * np.clip(1.0 - w * w, 0.0, None) ** (0.5 * (D - 3))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(w))])
    return w, cdf / cdf[-1]


def test_vmf_normaliser_small_concentration_limit() -> None:
    for D in (2, 3, 7):
        area = 2 * math.pi ** (D / 2) / special.gamma(D / 2)
        assert float(log_vmf_partition(0.0, D)) == pytest.approx(math.log(area))
        assert float(log_vmf_partition(1e-4, D)) == pytest.approx(math.log(area), abs=1e-8)


@pytest.mark.parametrize("kappa", [0.01, 1.0, 20.0, 600.0])
def test_partition_on_s2_matches_the_s2_normaliser(kappa: float) -> None:
    # Psi_3(κ) = 4π sinh κ / κ, and the S² density is e^{κ(<x,μ> − 1) + log_norm}.
    assert float(log_vmf_partition(kappa, 3)) == pytest.approx(
        kappa - vmf_log_norm_s2(kappa), rel=1e-12
    )


def test_s2_normaliser_float_and_tensor_agree() -> None:
    kappas = [1e-3, 0.5, 5.0, 200.0, 3e4]
    t = vmf_log_norm_s2(torch.tensor(kappas, dtype=torch.float64))
    assert isinstance(t, torch.Tensor) and t.shape == (5,)
    for k, v in zip(kappas, t.tolist(), strict=True):
        f = vmf_log_norm_s2(k)
        assert isinstance(f, float)
        assert v == pytest.approx(f, rel=1e-13)


def test_vmf_logp_integrates_to_one_on_a_grid() -> None:
    xyz, w = sphere_grid(200, 400, dtype=torch.float64)
    lp = vmf_logp_s2(xyz.numpy(), np.array([[0.0, 0.0, 1.0]]), 20.0)[:, 0]
    assert float((w.numpy() * np.exp(lp)).sum()) == pytest.approx(1.0, abs=1e-10)


def test_torch_log_density_matches_numpy() -> None:
    x = torch.nn.functional.normalize(torch.randn(50, 3, dtype=torch.float64), dim=-1)
    mu = torch.nn.functional.normalize(torch.randn(4, 3, dtype=torch.float64), dim=-1)
    kappa = torch.tensor([1.0, 5.0, 5.0, 300.0], dtype=torch.float64)
    lp = vmf_logp_s2_torch(x, mu, kappa)
    assert lp.shape == (50, 4)
    for k in range(4):
        ref = vmf_logp_s2(x.numpy(), mu[k : k + 1].numpy(), float(kappa[k]))[:, 0]
        np.testing.assert_allclose(lp[:, k].numpy(), ref, rtol=1e-12)


@pytest.mark.parametrize("D", [3, 7, 11])
def test_sample_vmf_mean_and_kappa_inverse(D: int) -> None:
    kappa = 5.0
    mu = torch.zeros(D, dtype=torch.float64)
    mu[0] = 1.0
    z = sample_vmf(mu, kappa, 40000, torch.Generator().manual_seed(D))
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(40000, dtype=torch.float64))
    w = z @ mu
    assert float(w.mean()) == pytest.approx(
        float(vmf_mean_resultant(kappa, D)), abs=4 * float(w.std()) / 200
    )
    assert vmf_kappa_from_mean(float(vmf_mean_resultant(kappa, D)), D) == pytest.approx(
        kappa, rel=1e-9
    )


@pytest.mark.parametrize("D", [3, 5])
def test_sample_vmf_cosine_law_ks(D: int) -> None:
    kappa = 3.0
    mu = torch.zeros(D, dtype=torch.float64)
    mu[-1] = 1.0
    w = (sample_vmf(mu, kappa, 5000, torch.Generator().manual_seed(1)) @ mu).numpy()
    grid, cdf = _cos_cdf(kappa, D)
    assert stats.kstest(w, lambda t: np.interp(t, grid, cdf)).pvalue > 1e-3


def test_score_sq_mean_closed_form_on_s2() -> None:
    for kappa in (0.5, 2.0, 10.0):
        assert vmf_score_sq_mean(kappa, 2) == pytest.approx(
            2 * kappa / math.tanh(kappa) - 2, rel=1e-12
        )


def test_score_is_tangent_and_has_the_closed_form_second_moment() -> None:
    kappa = 4.0
    mu = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    y = sample_vmf(mu, kappa, 40000, torch.Generator().manual_seed(3))
    s = vmf_score(y, mu, kappa)
    assert float((s * y).sum(-1).abs().max()) < 1e-12
    sq = (s * s).sum(-1)
    assert float(sq.mean()) == pytest.approx(
        vmf_score_sq_mean(kappa, 2), abs=4 * float(sq.std()) / 200
    )


def test_vmf_sampler_matches_closed_form_mean() -> None:
    # E<x, mu> = coth(kappa) - 1/kappa for vMF on S^2.
    rng = np.random.default_rng(0)
    mu = np.tile([[0.0, 0.6, 0.8]], (200_000, 1))
    for kappa in (0.5, 5.0, 5000.0):
        m = sample_vmf_s2(mu, kappa, rng) @ mu[0]
        expected = 1.0 / math.tanh(kappa) - 1.0 / kappa
        assert abs(m.mean() - expected) < 5 * m.std() / math.sqrt(m.size) + 1e-12


def test_row_sampler_draws_each_row_from_its_own_law() -> None:
    gen = torch.Generator().manual_seed(0)
    mu = torch.nn.functional.normalize(torch.randn(2, 3, dtype=torch.float64), dim=-1)
    kappa = torch.tensor([2.0, 200.0], dtype=torch.float64)
    rows = torch.arange(8000) % 2
    x = sample_vmf_rows(mu[rows], kappa[rows], gen)
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(8000, dtype=torch.float64))
    for k in range(2):
        w = (x[rows == k] @ mu[k]).numpy()
        grid, cdf = _cos_cdf(float(kappa[k]), 3)
        assert stats.kstest(w, lambda t, g=grid, c=cdf: np.interp(t, g, c)).pvalue > 1e-3
