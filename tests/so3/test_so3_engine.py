"""SO(3) through the engine's factories: the zoo's manifold, the losses' exact target and sampler,
the ambient models and the curvature correction (the same code paths the S² models use)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from pipeline.losses import make_rsgm_loss
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.schedules import LinearBeta
from pipeline.so3.heat_kernel import so3_heat_kernel_score, so3_heat_logp_angle
from pipeline.so3.manifold import SO3
from pipeline.transition import make_noise_sampler
from pipeline.variants import build_manifold, build_schedule, get_variant
from tests.errors import raises_naming

DT = torch.float64
SO = SO3()
SCHED = LinearBeta(beta_0=1e-3, beta_1=6.0, T=1.0)
CFG = {
    "manifold": {"name": "so3"},
    "schedule": {"kind": "linear", "beta_0": 1e-3, "beta_1": 6.0, "T": 1.0},
    "network": {"hidden": 32, "depth": 2, "activation": "sine"},
}


def test_zoo_builds_so3_and_rejects_another_dim() -> None:
    assert isinstance(build_manifold({"name": "so3"}), SO3)
    assert isinstance(build_manifold({"name": "so3", "dim": 3}), SO3)
    with raises_naming(ValueError, "so3", "dim 3"):
        build_manifold({"name": "so3", "dim": 4})


class _ExactPointMassScore(torch.nn.Module):
    """The marginal score of data at one rotation x0: the heat kernel's own score."""

    def __init__(self, x0: torch.Tensor) -> None:
        super().__init__()
        self.x0 = x0

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return so3_heat_kernel_score(x, self.x0.expand_as(x), SCHED.heat_time(t))


def test_dsm_on_so3_defaults_to_the_exact_target_which_is_zero_loss_for_a_point_mass() -> None:
    # For data at one point the conditional score is the marginal one: DSM with the exact
    # target (and the exact sampler) is zero for the exact score and positive for another field.
    gen = torch.Generator().manual_seed(0)
    x0 = SO.random_uniform(1, dtype=DT, generator=gen)
    data = x0.expand(256, -1).contiguous()
    loss = make_rsgm_loss({}, BrownianMotion(SO, SCHED))
    exact = float(loss(_ExactPointMassScore(x0), data, gen))
    assert exact == pytest.approx(0.0, abs=1e-12)
    zero = float(loss(lambda x, t: torch.zeros_like(x), data, gen))  # type: ignore[arg-type]
    assert zero > 1.0
    # the Varadhan target is not the exact score: the same field has a positive loss
    varadhan = make_rsgm_loss(
        {"target": "varadhan", "t_sampler": "uniform"}, BrownianMotion(SO, SCHED)
    )
    assert float(varadhan(_ExactPointMassScore(x0), data, gen)) > 1e-4


def test_exact_noise_sampler_on_so3_draws_one_heat_time_per_point() -> None:
    sampler = make_noise_sampler(BrownianMotion(SO, SCHED), "exact")
    gen = torch.Generator().manual_seed(1)
    x0 = SO.random_uniform(3000, dtype=DT, generator=gen)
    s = torch.full((3000,), 0.7, dtype=DT)
    theta = SO.angle(x0, sampler(x0, s, gen))
    grid = torch.linspace(1e-9, math.pi, 20001, dtype=DT)
    dens = (
        torch.exp(so3_heat_logp_angle(grid, 0.7) + SO.log_volume) * (1 - torch.cos(grid)) / math.pi
    )
    cdf = torch.cumulative_trapezoid(dens, grid)
    cdf = torch.cat((torch.zeros(1, dtype=DT), cdf / cdf[-1]))
    p = stats.kstest(theta.numpy(), lambda q: np.interp(q, grid.numpy(), cdf.numpy())).pvalue
    assert p > 1e-3


def test_ambient_models_train_on_so3_and_the_correction_is_one_quarter() -> None:
    manifold = build_manifold(CFG["manifold"])
    schedule = build_schedule(CFG["schedule"])
    gen = torch.Generator().manual_seed(2)
    x0 = SO.random_uniform(64, generator=gen)
    for kind in ("ambient_raw", "ambient_rb"):
        net = get_variant(kind).network(CFG, manifold, seed=0)
        value = get_variant(kind).build_loss({**CFG, "loss": {}}, manifold, schedule)(net, x0, gen)
        assert torch.isfinite(value) and float(value.detach()) > 0
    net = get_variant("ambient_rb").network(CFG, manifold, seed=0)
    t = torch.full((64,), 0.3)
    plain = get_variant("ambient_rb").score_field(net, manifold, schedule)(x0, t)
    corrected = get_variant("ambient_rb_corrected").score_field(net, manifold, schedule)(x0, t)
    assert SO.check_vector(x0, plain, atol=1e-5)
    sigma2 = schedule.heat_time(t)[:, None]
    torch.testing.assert_close(corrected, (1.0 - 0.25 * sigma2) * plain)
