"""Tests of the RSGM losses and time samplers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from pipeline.geometry import Sphere
from pipeline.losses import (
    TimeSampler,
    dsm_loss,
    ism_loss,
    loss_weight,
    make_rsgm_loss,
)
from pipeline.models import build_score_model
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.heat_kernel import heat_kernel_score
from pipeline.sde.schedules import LinearBeta
from pipeline.transition import make_noise_sampler
from tests.errors import raises_naming

SPHERE = Sphere(2)
SCHED = LinearBeta(beta_0=1e-3, beta_1=5.0, T=1.0)
NORTH = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)


def test_log_uniform_sampler_law() -> None:
    ts = TimeSampler("log_uniform", 1e-3, 1.0)
    t = ts.sample(20000, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert float(t.min()) >= 1e-3 and float(t.max()) <= 1.0
    # log t is uniform on [log eps, 0]: mean and variance in closed form
    lt = torch.log(t) / math.log(1e-3)  # uniform on [0, 1]
    assert abs(float(lt.mean()) - 0.5) < 0.01
    assert abs(float(lt.var()) - 1.0 / 12.0) < 0.003
    # density integrates to 1 on [eps, T]
    grid = torch.exp(torch.linspace(math.log(1e-3), 0.0, 20001, dtype=torch.float64))
    integral = torch.trapezoid(ts.density(grid), grid)
    assert abs(float(integral) - 1.0) < 1e-6


def test_uniform_sampler_and_validation() -> None:
    ts = TimeSampler("uniform", 0.1, 2.0)
    t = ts.sample(10000, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs(float(t.mean()) - 1.05) < 0.02
    torch.testing.assert_close(ts.density(t), torch.full_like(t, 1 / 1.9))
    with pytest.raises(ValueError):
        TimeSampler("log_uniform", 0.0, 1.0)
    with pytest.raises(ValueError):
        TimeSampler("bogus", 0.1, 1.0)  # type: ignore[arg-type]


def test_loss_weights() -> None:
    t = torch.tensor([1e-3, 0.1, 1.0], dtype=torch.float64)
    ts = TimeSampler("log_uniform", 1e-3, 1.0)
    torch.testing.assert_close(loss_weight(t, SCHED, ts, "variance"), SCHED.heat_time(t))
    torch.testing.assert_close(
        loss_weight(t, SCHED, ts, "likelihood"), SCHED.beta(t) * t * math.log(1e3)
    )
    torch.testing.assert_close(loss_weight(t, SCHED, ts, "none"), torch.ones_like(t))


class ExactPointScore(nn.Module):
    """The true score of Brownian motion started at the north pole (data = a point mass)."""

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return heat_kernel_score(x, NORTH.expand_as(x), SCHED.heat_time(t))


def test_dsm_loss_vanishes_at_the_true_score_of_a_point_mass() -> None:
    gen = torch.Generator().manual_seed(0)
    sampler = make_noise_sampler(BrownianMotion(SPHERE, SCHED), "exact")
    x0 = NORTH.expand(256, 3).clone()
    ts = TimeSampler("log_uniform", 1e-3, 1.0)
    loss = dsm_loss(ExactPointScore(), x0, SCHED, sampler, ts, gen, manifold=SPHERE)
    assert float(loss) < 1e-16
    zero = dsm_loss(lambda x, t: torch.zeros_like(x), x0, SCHED, sampler, ts, gen)  # type: ignore[arg-type]
    # variance weighting: 0.5 * s * |score|^2 ~ 0.5 * s * 2/s = 1 at small s
    assert 0.5 < float(zero) < 1.5


def test_varadhan_target_matches_exact_at_small_time() -> None:
    gen = torch.Generator().manual_seed(1)
    sampler = make_noise_sampler(BrownianMotion(SPHERE, SCHED), "exact")
    x0 = NORTH.expand(512, 3).clone()
    ts = TimeSampler("log_uniform", 0.03, 0.04)  # heat times 2e-3 to 4e-3
    loss = dsm_loss(
        ExactPointScore(), x0, SCHED, sampler, ts, gen, manifold=SPHERE, target="varadhan"
    )
    assert float(loss) < 1e-5
    with raises_naming(ValueError, "Varadhan", "manifold"):
        dsm_loss(ExactPointScore(), x0, SCHED, sampler, ts, gen, target="varadhan")


def test_ism_equals_dsm_up_to_a_model_independent_constant() -> None:
    # DSM(m) - ISM(m) = E[0.5 lambda |target|^2] for every m (integration by parts).
    torch.manual_seed(0)
    sampler = make_noise_sampler(BrownianMotion(SPHERE, SCHED), "exact")
    ts = TimeSampler("uniform", 0.05, 0.3)
    gen = torch.Generator().manual_seed(5)
    x0 = SPHERE.random_uniform(4, dtype=torch.float64, generator=gen).repeat(2500, 1)
    a = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    models = [
        lambda x, t: torch.zeros_like(x),
        lambda x, t: SPHERE.proju(x, a.expand_as(x)) * (1.0 + t[:, None]),
        lambda x, t: SPHERE.proju(x, torch.stack([x[:, 1] * x[:, 2], x[:, 0], x[:, 0] ** 2], -1)),
    ]
    gaps, isms = [], []
    for m in models:
        dsm = dsm_loss(
            m, x0, SCHED, sampler, ts, torch.Generator().manual_seed(9), weighting="none"
        )  # type: ignore[arg-type]
        ism = ism_loss(
            m,
            x0,
            SCHED,
            sampler,
            ts,
            torch.Generator().manual_seed(9),
            manifold=SPHERE,
            weighting="none",
        )  # type: ignore[arg-type]
        gaps.append(float((dsm - ism).detach()))
        isms.append(float(ism.detach()))
    # same t and x_t draws; the gap differs only by Monte-Carlo error of E[m.g + div m], small
    # compared with how much the losses themselves move between models
    assert max(isms) - min(isms) > 1.0
    assert max(gaps) - min(gaps) < 0.2 * (max(isms) - min(isms)), (gaps, isms)


def test_make_rsgm_loss_trains_signal_and_validates() -> None:
    torch.manual_seed(0)
    model = build_score_model(SPHERE, {"hidden": 16, "depth": 2})
    x0 = SPHERE.random_uniform(64, generator=torch.Generator().manual_seed(0))
    for cfg in (
        {},
        {"kind": "ism"},
        {"kind": "ism", "divergence": "hutchinson"},
        {"target": "varadhan", "weighting": "likelihood"},
    ):
        loss_fn = make_rsgm_loss(cfg, BrownianMotion(SPHERE, SCHED))
        loss = loss_fn(model, x0, torch.Generator().manual_seed(1))
        assert loss.dim() == 0 and torch.isfinite(loss)
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        model.zero_grad()
    with raises_naming(ValueError, "['lr']"):
        make_rsgm_loss({"lr": 1.0}, BrownianMotion(SPHERE, SCHED))
    with raises_naming(ValueError, "loss kind", "'foo'"):
        make_rsgm_loss({"kind": "foo"}, BrownianMotion(SPHERE, SCHED))


def test_tabulated_target_gives_the_exact_loss() -> None:
    # Same draws (same generator seed): the tabulated target moves the loss by < 1e-4 relative.
    process = BrownianMotion(SPHERE, SCHED)
    x0 = SPHERE.random_uniform(
        2048, dtype=torch.float64, generator=torch.Generator().manual_seed(7)
    )
    model = lambda x, t: SPHERE.proju(x, torch.ones_like(x))  # noqa: E731
    losses = {}
    for target in ("exact", "tabulated"):
        loss_fn = make_rsgm_loss({"target": target}, process)
        losses[target] = float(loss_fn(model, x0, torch.Generator().manual_seed(3)))  # type: ignore[arg-type]
    assert abs(losses["tabulated"] - losses["exact"]) < 1e-4 * abs(losses["exact"])


def test_tabulated_target_is_s2_only() -> None:
    from pipeline.so3.manifold import SO3

    with raises_naming(ValueError, "tabulated", "S²", "SO3()"):
        make_rsgm_loss({"target": "tabulated"}, BrownianMotion(SO3(), SCHED))


@pytest.mark.parametrize("model", ["rsgm", "ambient_raw", "ambient_rb"])
def test_default_losses_do_not_read_the_device_each_step(model: str) -> None:
    """A GPU step with the params.yaml recipe needs no host sync.

    Meta tensors hold no data, so any host read (``bool``/``item``/``float``: a sync per step
    on a GPU) raises; the loss and its backward pass run on them end to end.
    """
    from pathlib import Path

    import yaml

    from pipeline.variants import build_manifold, build_schedule, get_variant
    from stages.train_config import model_config

    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    cfg = model_config(params["train"], "earthquake", model)
    manifold = build_manifold(cfg.get("manifold"))
    loss_fn = get_variant(model).build_loss(cfg, manifold, build_schedule(cfg["schedule"]))
    net = get_variant(model).network(cfg, manifold, seed=0).to("meta")
    loss = loss_fn(net, torch.empty(16, 3, device="meta"), None)
    loss.backward()
    assert loss.shape == () and loss.device.type == "meta"
