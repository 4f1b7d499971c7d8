"""The ``rsgm_langevin`` model kind: config resolution, the residual score, train → load → NLL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.checkpoints import write_model_card
from pipeline.config.train import TrainConfig
from pipeline.evaluation import generate_samples, load_trained, log_density, normalization
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.langevin import LangevinProcess
from pipeline.training import train
from pipeline.variants import build_manifold, build_schedule, get_variant
from tests.errors import raises_naming

CONFIG = {
    "manifold": {"name": "sphere", "dim": 2},
    "schedule": {"kind": "linear", "beta_0": 0.001, "beta_1": 5.0, "T": 1.0},
    "network": {"hidden": 16, "depth": 2, "activation": "sine"},
    "score_scaling": "inv_std",
    "process": {"name": "langevin", "potential": "riemannian_normal", "mu": "frechet_mean",
                "gamma": "fit"},
    "loss": {"kind": "ism", "divergence": "hutchinson", "sampler": "grw", "grw_steps": 5},
}  # fmt: skip
MANIFOLD = build_manifold(CONFIG["manifold"])
SCHEDULE = build_schedule(CONFIG["schedule"])


def _clustered(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    centre = torch.tensor([0.6, 0.0, 0.8])
    x = centre + 0.35 * torch.randn(n, 3, generator=gen)
    return x / x.norm(dim=-1, keepdim=True)


def test_resolve_config_fills_the_reference_from_the_data_deterministically() -> None:
    data = _clustered(2000, 0)
    a = get_variant("rsgm_langevin").resolve(CONFIG, data)
    b = get_variant("rsgm_langevin").resolve(CONFIG, data.clone())
    assert a == b and CONFIG["process"]["mu"] == "frechet_mean"  # the input is not modified
    mu = torch.tensor(a["process"]["mu"])
    assert float(MANIFOLD.dist(mu, torch.tensor([0.6, 0.0, 0.8]))) < 0.05
    assert 0.2 < a["process"]["gamma"] < 0.7  # the data's angular spread
    # Other kinds are returned unchanged; given values are kept.
    assert get_variant("rsgm").resolve({k: v for k, v in CONFIG.items() if k != "process"}, data)
    fixed = {**CONFIG, "process": {**CONFIG["process"], "mu": [0.0, 0.0, 1.0], "gamma": 0.5}}
    assert get_variant("rsgm_langevin").resolve(fixed, data)["process"]["gamma"] == 0.5


def test_build_process_per_kind_and_its_errors() -> None:
    resolved = get_variant("rsgm_langevin").resolve(CONFIG, _clustered(500, 1))
    assert isinstance(get_variant("rsgm_langevin").build_process(resolved, MANIFOLD, SCHEDULE),
                      LangevinProcess)  # fmt: skip
    assert isinstance(get_variant("rsgm").build_process({}, MANIFOLD, SCHEDULE), BrownianMotion)
    with raises_naming(ValueError, "mu='frechet_mean'", "gamma='fit'", "VARIANT.resolve"):
        get_variant("rsgm_langevin").build_process(CONFIG, MANIFOLD, SCHEDULE)
    with raises_naming(ValueError, "'rsgm'", "'langevin'", "rsgm_langevin"):
        get_variant("rsgm").build_process(resolved, MANIFOLD, SCHEDULE)
    with raises_naming(ValueError, "['centre']"):
        get_variant("rsgm_langevin").build_process({"process": {"centre": 1}}, MANIFOLD, SCHEDULE)
    with raises_naming(ValueError, "process mu", "3 coordinates"):
        bad = {"process": {**resolved["process"], "mu": [0.0, 1.0]}}
        get_variant("rsgm_langevin").build_process(bad, MANIFOLD, SCHEDULE)
    # validate_config accepts the unresolved words and rejects others.
    get_variant("rsgm_langevin").validate(CONFIG)
    with raises_naming(ValueError, "rsgm_langevin.process.mu", "'median'"):
        get_variant("rsgm_langevin").validate({**CONFIG, "process": {"mu": "median"}})
    with raises_naming(ValueError, "DSM", "LangevinProcess", "loss kind: ism"):
        get_variant("rsgm_langevin").validate({**CONFIG, "loss": {"kind": "dsm"}})
    with raises_naming(ValueError, "LangevinProcess", "sampler: grw"):
        get_variant("rsgm_langevin").validate({**CONFIG, "loss": {"sampler": "exact"}})


def test_residual_score_is_the_reference_score_when_the_network_outputs_zero() -> None:
    resolved = get_variant("rsgm_langevin").resolve(CONFIG, _clustered(500, 2))
    net = get_variant("rsgm_langevin").network(resolved, MANIFOLD, seed=0)
    process = get_variant("rsgm_langevin").build_process(resolved, MANIFOLD, SCHEDULE)
    for p in net.parameters():
        torch.nn.init.zeros_(p)
    x = MANIFOLD.random_uniform(32, generator=torch.Generator().manual_seed(3))
    score = get_variant("rsgm_langevin").score_field(net, MANIFOLD, SCHEDULE)
    torch.testing.assert_close(score(x, torch.full((32,), 0.5)), process.reference_score(x))
    # Only the network's weights are parameters (the reference holds none).
    assert all(k.startswith("net.") for k in net.state_dict())


def test_train_load_and_evaluate_rsgm_langevin(tmp_path: Path) -> None:
    data = _clustered(512, 4)
    config = get_variant("rsgm_langevin").resolve(CONFIG, data)
    net = get_variant("rsgm_langevin").network(config, MANIFOLD, seed=0)
    loss_fn = get_variant("rsgm_langevin").build_loss(config, MANIFOLD, SCHEDULE)
    out = tmp_path / "rsgm_langevin" / "seed0"
    write_model_card(out, "rsgm_langevin", config)
    cfg = TrainConfig(steps=10, batch_size=32, checkpoint_every=5, log_every=5, device="cpu")
    result = train(net, loss_fn, data, cfg, out, progress=False)
    assert result.steps == 10
    trained = load_trained(out, device="cpu")
    assert isinstance(trained.process, LangevinProcess)
    assert trained.process.potential.gamma == pytest.approx(config["process"]["gamma"])
    x = data[:16].double().numpy()
    logp, nfe = log_density(trained, x, rtol=1e-4, atol=1e-4)
    assert logp.shape == (16,) and np.isfinite(logp).all() and nfe > 0
    # Barely trained, the model is the reference law transported by a small field: a density.
    assert normalization(trained, 24, 48, rtol=1e-4, atol=1e-4) == pytest.approx(1.0, abs=1e-2)
    samples = generate_samples(trained, 64, 20, seed=0)
    np.testing.assert_allclose(np.linalg.norm(samples, axis=-1), 1.0, atol=1e-6)
    # The samples start from the reference near the data, not from the uniform law.
    mu = np.asarray(config["process"]["mu"])
    assert float(np.mean(samples @ mu)) > 0.5
