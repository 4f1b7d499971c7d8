"""S² heat kernel: normalisation, score vs finite differences, limits, mixture, KL."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.sde import heat_kernel as hk
from tests.errors import raises_naming

DT = torch.float64


def _points(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, 3, dtype=DT, generator=g), dim=-1)


@pytest.mark.parametrize("s", [1e-4, 1e-3, 0.01, 0.1, 1.0, 5.0])
def test_integrates_to_one(s: float) -> None:
    assert hk.heat_kernel_total_mass(s) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("s", [1e-3, 0.05, 0.3])
def test_series_and_integral_agree(s: float) -> None:
    """The two exact forms agree where the float64 series is accurate."""
    # beyond θ ≈ 4√s the float64 series loses digits (p ≪ 1e-16·p(0)): compare inside
    theta = torch.linspace(0, min(math.pi, 4 * math.sqrt(s)), 101, dtype=DT)
    st = torch.full_like(theta, s)
    lp_i, dl_i = hk._integral_logp_dlogp(theta, st)
    lp_s, dl_s = hk._series_logp_dlogp(torch.cos(theta), st, hk.series_n_terms(s))
    torch.testing.assert_close(lp_i, lp_s, rtol=0, atol=1e-8)
    torch.testing.assert_close(dl_i, dl_s, rtol=1e-7, atol=0)


def test_continuous_across_switch() -> None:
    theta = torch.linspace(0, math.pi, 50, dtype=DT)
    lo = hk.heat_kernel_logp_theta(theta, hk.S_SWITCH * (1 - 1e-12))
    hi = hk.heat_kernel_logp_theta(theta, hk.S_SWITCH)
    torch.testing.assert_close(lo, hi, rtol=0, atol=1e-11)


@pytest.mark.parametrize("s", [1e-4, 0.01, 0.2, 0.7, 3.0])
def test_score_matches_finite_differences(s: float) -> None:
    x0 = _points(30, 0)
    # points at distance ~ a few √s (and some far away) from x0
    g = torch.Generator().manual_seed(1)
    v = torch.randn(30, 3, dtype=DT, generator=g)
    v = v - (v * x0).sum(-1, keepdim=True) * x0
    r = torch.linspace(0.1, 3.0, 30, dtype=DT).unsqueeze(-1) * math.sqrt(s)
    r = torch.minimum(r, torch.tensor(3.0, dtype=DT))
    x = torch.cos(r) * x0 + torch.sin(r) * torch.nn.functional.normalize(v, dim=-1)
    score = hk.heat_kernel_score(x, x0, s)
    assert torch.allclose((score * x).sum(-1), torch.zeros(30, dtype=DT), atol=1e-10)
    # directional derivative along a random tangent w via exp map
    w = torch.randn(30, 3, dtype=DT, generator=g)
    w = w - (w * x).sum(-1, keepdim=True) * x
    h = 1e-6 * min(1.0, math.sqrt(s))

    def along(eps: float) -> torch.Tensor:
        y = torch.cos(torch.tensor(eps)) * x + torch.sin(torch.tensor(eps)) * w / w.norm(
            dim=-1, keepdim=True
        )
        return hk.heat_kernel_logp(y, x0, s)

    fd = (along(h) - along(-h)) / (2 * h)
    an = (score * w / w.norm(dim=-1, keepdim=True)).sum(-1)
    torch.testing.assert_close(an, fd, rtol=1e-5, atol=1e-5 / s**0.5)


def test_small_time_varadhan_and_large_time_uniform() -> None:
    x0 = _points(20, 2)
    x = _points(20, 3)
    near = torch.nn.functional.normalize(x0 + 0.01 * x, dim=-1)
    s = 1e-4
    from pipeline.geometry import Sphere

    sph = Sphere(2)
    varadhan = sph.logmap(near, x0) / s
    torch.testing.assert_close(hk.heat_kernel_score(near, x0, s), varadhan, rtol=1e-3, atol=0)
    lp = hk.heat_kernel_logp(x, x0, 40.0)
    torch.testing.assert_close(lp, torch.full_like(lp, -math.log(4 * math.pi)), rtol=0, atol=1e-14)
    # p_s(x0 | x0) = (2πs)^{-1}(1 + s/6 + s²/60 + O(s³))
    p0 = hk.heat_kernel_logp(x0, x0, s).exp()
    expected = (1 + s / 6 + s * s / 60) / (2 * math.pi * s)
    torch.testing.assert_close(p0, torch.full_like(p0, expected), rtol=1e-11, atol=0)


def test_antipode_and_dtypes_and_broadcasting() -> None:
    x0 = _points(8, 4)
    for s in [1e-3, 0.1, 1.0]:
        lp = hk.heat_kernel_logp(-x0, x0, s)
        sc = hk.heat_kernel_score(-x0, x0, s)
        assert torch.isfinite(lp).all() and torch.isfinite(sc).all()
        # symmetric about the antipode: ∂_c log p is finite and p(π) > 0
        dl = hk.heat_kernel_dlogp_dc(torch.tensor([-1.0], dtype=DT), s)
        assert torch.isfinite(dl).all()
    x32 = x0.float()
    lp32 = hk.heat_kernel_logp(x32, x0.float().flip(0), 0.01)
    assert lp32.dtype == torch.float32
    lp64 = hk.heat_kernel_logp(x32.double(), x0.float().flip(0).double(), 0.01)
    torch.testing.assert_close(lp32.double(), lp64, rtol=1e-6, atol=1e-6)
    s = torch.tensor([[1e-3], [0.7]], dtype=DT)  # (2, 1) against batch (8,)
    assert hk.heat_kernel_logp(x0, x0.flip(0), s).shape == (2, 8)
    assert hk.heat_kernel_score(x0, x0.flip(0), s).shape == (2, 8, 3)
    with raises_naming(ValueError, "heat time s"):
        hk.heat_kernel_logp(x0, x0, 0.0)


def test_mixture_logp_and_score() -> None:
    centers = _points(4, 5)
    w = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=DT)
    x = _points(25, 6)
    s = torch.linspace(0.01, 1.0, 25, dtype=DT)
    lp = hk.heat_kernel_mixture_logp(x, centers, s, w)
    comps = torch.stack([hk.heat_kernel_logp(x, c.expand_as(x), s) for c in centers], -1)
    torch.testing.assert_close(lp, torch.logsumexp(comps + w.log(), -1))
    sc = hk.heat_kernel_mixture_score(x, centers, s, w)
    # central differences of log p(x/|x|): the ambient gradient at |x| = 1 is the Riemannian one
    h = 1e-6
    fd = torch.empty_like(x)
    for k in range(3):
        e = torch.zeros(3, dtype=DT)
        e[k] = h
        plus = hk.heat_kernel_mixture_logp(
            torch.nn.functional.normalize(x + e, dim=-1), centers, s, w
        )
        minus = hk.heat_kernel_mixture_logp(
            torch.nn.functional.normalize(x - e, dim=-1), centers, s, w
        )
        fd[:, k] = (plus - minus) / (2 * h)
    torch.testing.assert_close(sc, fd, rtol=1e-5, atol=1e-5)


def test_prior_kl() -> None:
    # For large s, p_s ≈ (1 + 3e^{-s} c)/4π, so KL ≈ 1.5 e^{-2s}.
    kl = hk.prior_kl_uniform(4.0)
    assert kl == pytest.approx(1.5 * math.exp(-8.0), rel=2e-2)
    assert hk.prior_kl_uniform(2.0) > hk.prior_kl_uniform(2.0025) > 0
    assert hk.prior_kl_uniform(1e-3) == pytest.approx(
        math.log(4 * math.pi / (2 * math.pi * math.e * 1e-3)), rel=1e-3
    )
