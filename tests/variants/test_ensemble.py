"""``kde_rsgm``-style mixtures: weights on validation, exact log-density, sampling by member."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.checkpoints import write_model_card
from pipeline.evaluation import generate_samples, load_trained, log_density, normalization
from pipeline.variants.kde.density import KDEConfig, KDEFit, KernelDensity, save_kde
from pipeline.variants.kde_rsgm.mixture import choose_weight, mixture_logp
from tests.errors import raises_naming


def test_mixture_logp_is_the_log_of_the_weighted_sum() -> None:
    a, b = np.array([-1.0, 2.0, -30.0]), np.array([0.5, -3.0, 1.0])
    got = mixture_logp(a, b, 0.3)
    np.testing.assert_allclose(got, np.log(0.3 * np.exp(a) + 0.7 * np.exp(b)), rtol=1e-13)
    np.testing.assert_array_equal(mixture_logp(a, b, 0.0), b)
    np.testing.assert_array_equal(mixture_logp(a, b, 1.0), a)


def test_choose_weight_finds_the_closed_form_optimum() -> None:
    """Two events, one where only a has mass and one where only b has: the validation NLL
    −½[log(w p) + log((1 − w) q)] is minimised at w = ½."""
    a = np.array([0.0, -200.0])
    b = np.array([-200.0, 0.0])
    w, nll = choose_weight(a, b, n_grid=101)
    assert w == pytest.approx(0.5)
    assert nll == pytest.approx(math.log(2), abs=1e-9)
    # A member that is better everywhere takes all the weight.
    assert choose_weight(np.zeros(3), np.full(3, -1.0))[0] == 1.0
    with raises_naming(ValueError, "(3,)", "(2,)"):
        choose_weight(np.zeros(3), np.zeros(2))


def _kde_folder(path: Path, centre: list[float], sigma: float) -> KernelDensity:
    d = KernelDensity(
        torch.tensor([centre], dtype=torch.float64),
        torch.tensor([sigma], dtype=torch.float64),
        broad_sigma=1.0,
        broad_weight=0.0,
    )
    save_kde(path, KDEFit(d, {"k": 1.0}, 0.0), KDEConfig())
    schedule = {"kind": "linear", "beta_0": 0.001, "beta_1": 5.0, "T": 1.0}
    write_model_card(path, "kde", {"manifold": {"name": "sphere", "dim": 2}, "schedule": schedule})
    return d


def test_an_ensemble_folder_loads_as_one_exact_density(tmp_path: Path) -> None:
    seed_dir = tmp_path / "kde_rsgm" / "seed0"
    north = _kde_folder(seed_dir / "kde", [0.0, 0.0, 1.0], 0.2)
    south = _kde_folder(seed_dir / "rsgm", [0.0, 0.0, -1.0], 0.3)
    write_model_card(seed_dir, "kde_rsgm", {"members": ["kde", "rsgm"], "weights": [0.25, 0.75]})
    model = load_trained(seed_dir, device="cpu")
    x = torch.randn(40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = x / x.norm(dim=-1, keepdim=True)
    logp, _ = log_density(model, x.numpy())
    want = np.log(0.25 * north.log_prob(x).exp().numpy() + 0.75 * south.log_prob(x).exp().numpy())
    np.testing.assert_allclose(logp, want, rtol=0, atol=1e-10)
    assert normalization(model, 64, 128) == pytest.approx(1.0, abs=1e-6)
    samples = generate_samples(model, 4000, 10, seed=3)
    share_north = float((samples[:, 2] > 0).mean())
    assert abs(share_north - 0.25) < 4 * math.sqrt(0.25 * 0.75 / 4000)
    write_model_card(seed_dir, "kde_rsgm", {"members": ["kde", "rsgm"], "weights": [0.5, 0.6]})
    with raises_naming(ValueError, str(seed_dir), "weights"):
        load_trained(seed_dir, device="cpu")
