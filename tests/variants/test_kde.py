"""``kde``: exact density against closed forms, the sampler by KS, the search, the heat flow."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from pipeline.geometry import Sphere
from pipeline.likelihood import pf_ode_logp, sphere_grid
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.heat_kernel import heat_kernel_logp_theta
from pipeline.sde.schedules import make_schedule
from pipeline.variants.kde.density import (
    KDEConfig,
    KernelDensity,
    fit_kde,
    kth_neighbour_distance,
    load_kde,
    save_kde,
)
from tests.errors import raises_naming


def _unit(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, dtype=torch.float64, generator=g)
    return x / x.norm(dim=-1, keepdim=True)


def _density(kernel: str = "vmf", n: int = 7, seed: int = 0) -> KernelDensity:
    centres = _unit(n, seed)
    sigma = torch.linspace(0.15, 0.5, n, dtype=torch.float64)
    return KernelDensity(centres, sigma, broad_sigma=0.9, broad_weight=0.3, kernel=kernel)


@pytest.mark.parametrize("kernel", ["vmf", "heat"])
def test_density_integrates_to_one(kernel: str) -> None:
    xyz, w = sphere_grid(96, 192)
    total = float((w * _density(kernel).log_prob(xyz).exp()).sum())
    assert total == pytest.approx(1.0, abs=1e-6)


def test_vmf_log_prob_matches_a_brute_force_sum() -> None:
    d = _density("vmf")
    x = _unit(50, 3)
    cos = (x @ d.centres.T).numpy()  # (50, 7)

    def vmf(c: np.ndarray, sigma: float) -> np.ndarray:
        k = 1.0 / sigma**2
        return k / (4 * math.pi * math.sinh(k)) * np.exp(k * c)

    sig = d.sigma.numpy()
    brute = np.zeros(50)
    for i in range(len(sig)):
        brute += (1 - d.broad_weight) * vmf(cos[:, i], sig[i]) + d.broad_weight * vmf(
            cos[:, i], d.broad_sigma
        )
    brute /= len(sig)
    np.testing.assert_allclose(d.log_prob(x).numpy(), np.log(brute), rtol=0, atol=1e-10)


def test_heat_log_prob_matches_the_heat_kernel_sum() -> None:
    d = _density("heat", n=4)
    x = _unit(20, 5)
    theta = torch.arccos(torch.clamp(x @ d.centres.T, -1, 1))
    sharp = heat_kernel_logp_theta(theta, d.sigma.square().expand_as(theta)).exp()
    broad = heat_kernel_logp_theta(theta, d.broad_sigma**2).exp()
    want = ((1 - d.broad_weight) * sharp + d.broad_weight * broad).mean(dim=1).log()
    torch.testing.assert_close(d.log_prob(x), want, rtol=0, atol=1e-9)


def test_very_sharp_kernels_stay_finite_and_exact_at_their_centre() -> None:
    centres = _unit(3, 1)
    sigma = torch.tensor([1e-7, 1e-6, 1e-5], dtype=torch.float64)  # kappa up to 1e14
    d = KernelDensity(centres, sigma, broad_sigma=0.1, broad_weight=0.0)
    logp = d.log_prob(centres)
    # At its own centre a vMF kernel is kappa / (2 pi); the others add nothing.
    want = torch.log(1.0 / sigma.square() / (2 * math.pi)) - math.log(3)
    torch.testing.assert_close(logp, want, rtol=0, atol=1e-9)


def test_vmf_sampler_passes_ks_on_the_cosine() -> None:
    kappa = 40.0
    centre = torch.tensor([[0.0, 0.6, 0.8]], dtype=torch.float64)
    d = KernelDensity(centre, torch.tensor([kappa**-0.5], dtype=torch.float64), 1.0, 0.0)
    x = d.sample(4000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(x.norm(dim=-1), torch.ones(4000, dtype=torch.float64))
    c = (x @ centre.T).squeeze(1).numpy()

    def cdf(t: np.ndarray) -> np.ndarray:  # law of cos(theta) under vMF on S²
        return np.expm1(kappa * (t + 1)) / np.expm1(2 * kappa)

    assert stats.kstest(c, cdf).pvalue > 1e-3
    # Rotational symmetry about the centre: the tangent direction is uniform.
    e1 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    e2 = torch.cross(centre[0], e1, dim=0)
    angle = torch.atan2(x @ e2, x @ e1).numpy()
    assert stats.kstest(angle, stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue > 1e-3


def test_mixture_sampler_picks_components_by_weight() -> None:
    centres = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]], dtype=torch.float64)
    sigma = torch.tensor([0.05, 0.05], dtype=torch.float64)
    d = KernelDensity(centres, sigma, broad_sigma=0.05, broad_weight=0.0)
    x = d.sample(10000, torch.Generator().manual_seed(1))
    share_north = float((x[:, 2] > 0).double().mean())
    assert abs(share_north - 0.5) < 4 * math.sqrt(0.25 / 10000)


def test_kth_neighbour_distance_against_sorting() -> None:
    x = _unit(40, 2)
    x[5] = x[4]  # a duplicate: its nearest other point is at distance 0
    got = kth_neighbour_distance(x, [1, 3])
    ang = torch.arccos(torch.clamp(x @ x.T, -1, 1))
    ang.fill_diagonal_(math.inf)
    ranked = ang.sort(dim=1).values
    torch.testing.assert_close(got[1], ranked[:, 0], atol=1e-7, rtol=0)
    torch.testing.assert_close(got[3], ranked[:, 2], atol=1e-7, rtol=0)
    assert float(got[1][4]) == pytest.approx(0.0, abs=1e-12)


def test_search_is_deterministic_and_picks_from_the_grids() -> None:
    truth = _density("vmf", n=5, seed=4)
    g = torch.Generator().manual_seed(7)
    train, val = truth.sample(400, g), truth.sample(100, g)
    cfg = KDEConfig(k_grid=(1, 3, 8), scale_grid=(0.5, 1.0, 2.0), sweeps=2)
    a, b = fit_kde(train, val, cfg), fit_kde(train, val, cfg)
    assert a.chosen == b.chosen
    torch.testing.assert_close(a.density.sigma, b.density.sigma, rtol=0, atol=0)
    assert a.chosen["k"] in (1, 3, 8) and a.chosen["scale"] in (0.5, 1.0, 2.0)
    assert a.val_nll == min(r["val_nll"] for r in a.search)
    # The search caches its sharp and broad kernel sums apart: every point it scored must
    # equal the val NLL of the density built from that point (broad weights included).
    assert {r["broad_weight"] for r in a.search} == set(cfg.broad_weight_grid)
    dks = kth_neighbour_distance(train, cfg.k_grid)
    for r in a.search:
        sigma = torch.clamp(r["scale"] * dks[int(r["k"])], min=math.radians(r["floor_deg"]))
        d = KernelDensity(train, sigma, math.radians(r["broad_deg"]), r["broad_weight"])
        assert math.isclose(r["val_nll"], float(-d.log_prob(val).mean()), rel_tol=1e-12), r
    # On held-out draws the chosen model is near the true law, far below the uniform one.
    test = truth.sample(1000, g)
    fitted, true = float(-a.density.log_prob(test).mean()), float(-truth.log_prob(test).mean())
    assert fitted < true + 0.15 < math.log(4 * math.pi) - 0.2


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with raises_naming(KeyError, "kde", "['bandwidth']"):
        KDEConfig.from_dict({"bandwidth": 1.0})
    with raises_naming(ValueError, "kde.kernel", "'gauss'"):
        KDEConfig.from_dict({"kernel": "gauss"})
    with raises_naming(ValueError, "kde.broad_weight_grid"):
        KDEConfig.from_dict({"broad_weight_grid": [1.0]})


def test_save_and_load_round_trip(tmp_path) -> None:
    d = _density("vmf")
    val = _unit(10, 9)
    fit = fit_kde(d.centres, val, KDEConfig(k_grid=(1, 2), sweeps=1))
    save_kde(tmp_path, fit, KDEConfig())
    back = load_kde(tmp_path)
    x = _unit(30, 11)
    torch.testing.assert_close(back.log_prob(x), fit.density.log_prob(x), rtol=0, atol=0)
    (tmp_path / "kde.safetensors").write_bytes(b"not a safetensors file")
    with raises_naming(ValueError, str(tmp_path / "kde.safetensors")):
        load_kde(tmp_path)


def test_the_same_fit_is_saved_to_the_same_bytes(tmp_path) -> None:
    # DVC hashes the files: different bytes for one fit would rerun every stage that reads it.
    fit = fit_kde(_unit(50, 3), _unit(10, 4), KDEConfig(k_grid=(1, 2), broad_weight_grid=(0.2,)))
    saved = set()
    for i in range(8):  # the old three metadata keys came out in a new order most times
        save_kde(tmp_path / str(i), fit, KDEConfig())
        saved.add((tmp_path / str(i) / "kde.safetensors").read_bytes())
    assert len(saved) == 1


def test_pf_ode_driven_by_the_heat_flow_score_reproduces_the_density() -> None:
    """A heat-kernel mixture stays one under the heat flow: its score at every time is exact,
    so the probability-flow ODE must give back log p (here within 1e-3 nats)."""
    d = KernelDensity(
        _unit(4, 6),
        torch.tensor([0.3, 0.4, 0.5, 0.35], dtype=torch.float64),
        broad_sigma=0.8,
        broad_weight=0.25,
        kernel="heat",
    )
    # s(1) = 10: the prior mismatch e^{-s}-small pointwise.
    schedule = make_schedule({"kind": "linear", "beta_0": 0.001, "beta_1": 20.0, "T": 1.0})
    process = BrownianMotion(Sphere(2), schedule)

    def score_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return d.score(x, schedule.heat_time(t))

    x = _unit(6, 8)
    logp, _ = pf_ode_logp(score_fn, process, x, rtol=1e-7, atol=1e-7, t0=0.0)
    torch.testing.assert_close(logp.double(), d.log_prob(x), rtol=0, atol=1e-3)
