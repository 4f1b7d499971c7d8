"""Ambient model variants, their losses and score fields."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from pipeline.ambient.models import (
    AMBIENT_VARIANTS,
    AmbientScoreField,
    AmbientScoreModel,
    ambient_score_field,
    build_ambient_model,
    make_ambient_loss,
    noise_condition,
)
from pipeline.geometry import FlatTorus, Sphere
from pipeline.sde.schedules import LinearBeta
from tests.errors import raises_naming

CFG = {"hidden": 16, "depth": 2, "activation": "sine"}


class _Zero(nn.Module):
    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        return torch.zeros_like(x) + 0.0 * c[:, None]


class _Const(nn.Module):
    def __init__(self, v: Tensor) -> None:
        super().__init__()
        self.v = v

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        return self.v.expand_as(x) + 0.0 * c[:, None]


@pytest.mark.parametrize("variant", AMBIENT_VARIANTS)
def test_loss_is_finite_and_trains_through_backward(variant: str) -> None:
    torch.manual_seed(0)
    man = Sphere(2)
    sched = LinearBeta(0.001, 4.0)
    model = build_ambient_model(variant, man, CFG).double()
    loss_fn = make_ambient_loss(variant, {"eps": 1e-3}, man, sched)
    x0 = man.random_uniform(64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    loss = loss_fn(model, x0, torch.Generator().manual_seed(2))
    assert loss.dim() == 0 and torch.isfinite(loss) and loss.item() >= 0
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_raw_loss_of_zero_network_is_half_ambient_dim() -> None:
    """Variance weighting: ½σ²|0 − (Z−X)/σ²|² = ½|ξ|², mean D/2 for every σ."""
    man = Sphere(2)
    model = AmbientScoreModel(_Zero(), man, "raw")
    loss_fn = make_ambient_loss("ambient_raw", {}, man, LinearBeta(0.001, 4.0))
    x0 = man.random_uniform(100000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert float(loss_fn(model, x0, torch.Generator().manual_seed(1))) == pytest.approx(
        1.5, abs=0.03
    )


def test_rb_loss_of_zero_network_small_sigma_is_half_d() -> None:
    """½σ²|T_σ|² → ½ d for small σ (E|T_σ|² = d/σ² + O(1))."""
    man = Sphere(2)
    model = AmbientScoreModel(_Zero(), man, "rb")
    sched = LinearBeta(1e-4, 1e-4)  # s(t) <= 1e-4: σ <= 0.01
    loss_fn = make_ambient_loss("ambient_rb", {"t_sampler": "uniform", "eps": 0.5}, man, sched)
    x0 = man.random_uniform(100000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert float(loss_fn(model, x0, torch.Generator().manual_seed(1))) == pytest.approx(
        1.0, abs=0.02
    )


def test_model_outputs() -> None:
    man = Sphere(2)
    v = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    x = torch.tensor([[0.0, 0.0, 2.0], [1.0, 1.0, 0.0]], dtype=torch.float64)
    sigma = torch.tensor([0.5, 0.25], dtype=torch.float64)
    raw = AmbientScoreModel(_Const(v), man, "raw")(x, sigma)
    torch.testing.assert_close(raw, v / sigma[:, None])
    rb = AmbientScoreModel(_Const(v), man, "rb")(x, sigma)
    y = man.projx(x)
    torch.testing.assert_close(rb, man.proju(y, v.expand_as(y)) / sigma[:, None])
    torch.testing.assert_close(
        noise_condition(torch.tensor([1.0, torch.e])), torch.tensor([0.0, 0.25])
    )


def test_field_correction_on_s6_and_identity_on_s2() -> None:
    sched = LinearBeta(0.001, 4.0)
    t = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)
    for d in (2, 6):
        man = Sphere(d)
        v = torch.linspace(-1, 1, d + 1, dtype=torch.float64)
        model = AmbientScoreModel(_Const(v), man, "rb")
        x = man.random_uniform(3, dtype=torch.float64, generator=torch.Generator().manual_seed(d))
        plain = AmbientScoreField(model, man, sched, corrected=False)(x, t)
        corr = ambient_score_field(model, "ambient_rb_corrected", man, sched)(x, t)
        s = sched.heat_time(t)
        torch.testing.assert_close(corr, (1 - (1 - d / 2) * s)[:, None] * plain)
        assert man.check_vector(x, plain, atol=1e-12)


def test_field_on_flat_torus_uses_plus_half() -> None:
    man = FlatTorus(2)
    sched = LinearBeta(0.001, 4.0)
    v = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64)
    model = AmbientScoreModel(_Const(v), man, "rb")
    x = man.random_uniform(2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t = torch.tensor(0.5, dtype=torch.float64)
    s = float(sched.heat_time(t))
    plain = AmbientScoreField(model, man, sched, False)(x, t)
    corr = AmbientScoreField(model, man, sched, True)(x, t)
    torch.testing.assert_close(corr, (1 - 0.5 * s) * plain)


def test_field_is_differentiable_in_x() -> None:
    man = Sphere(2)
    model = build_ambient_model("ambient_raw", man, CFG).double()
    field = ambient_score_field(model, "ambient_raw", man, LinearBeta(0.001, 4.0))
    x = man.random_uniform(
        4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    ).requires_grad_(True)
    out = field(x, torch.full((4,), 0.3, dtype=torch.float64))
    (g,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(g).all()


def test_errors() -> None:
    man = Sphere(2)
    sched = LinearBeta(0.001, 4.0)
    with raises_naming(ValueError, "'ambient_xyz'"):
        make_ambient_loss("ambient_xyz", {}, man, sched)
    with raises_naming(ValueError, "['target']"):
        make_ambient_loss("ambient_rb", {"target": "exact"}, man, sched)
    raw_model = build_ambient_model("ambient_raw", man, CFG)
    with raises_naming(TypeError, "'ambient_rb'", "AmbientScoreModel", "'rb'"):
        make_ambient_loss("ambient_rb", {}, man, sched)(
            raw_model, man.random_uniform(4), torch.Generator()
        )
    with raises_naming(ValueError, "'raw'", "'ambient_rb_corrected'", "'rb'"):
        ambient_score_field(raw_model, "ambient_rb_corrected", man, sched)
