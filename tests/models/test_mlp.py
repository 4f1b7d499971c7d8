"""Tests of the score networks, the EMA and the manifold divergence."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.geometry import Euclidean, Sphere
from pipeline.models import EMA, MLP, MLPConfig, TangentScoreModel, build_score_model
from pipeline.models.divergence import manifold_divergence
from tests.errors import raises_naming


@pytest.mark.parametrize("activation", ["sine", "silu"])
@pytest.mark.parametrize("time_embedding", ["concat", "fourier"])
def test_score_model_is_tangent(activation: str, time_embedding: str) -> None:
    torch.manual_seed(0)
    sphere = Sphere(2)
    cfg = {"hidden": 32, "depth": 3, "activation": activation, "time_embedding": time_embedding}
    model = build_score_model(sphere, cfg).double()
    x = sphere.random_uniform(64, dtype=torch.float64)
    t = torch.rand(64, dtype=torch.float64)
    s = model(x, t)
    assert s.shape == (64, 3)
    assert (s * x).sum(-1).abs().max() < 1e-12
    assert s.abs().max() > 1e-4
    # a scalar t broadcasts to the batch
    torch.testing.assert_close(model(x, t[0]), model(x, t[0].expand(64)))


def test_sine_init_keeps_activation_scale() -> None:
    torch.manual_seed(0)
    net = MLP(3, 3, hidden=256, depth=6, activation="sine", omega=10.0)
    h = torch.cat([torch.randn(4096, 3), torch.rand(4096, 1)], dim=-1)
    stds = []
    for layer in net.net:
        with torch.no_grad():
            h = layer(h)
        if not isinstance(layer, torch.nn.Linear):
            stds.append(float(h.std()))
    # sin of a unit-variance Gaussian-like pre-activation has std ~0.6-0.7 at every depth
    assert all(0.45 < s < 0.8 for s in stds[1:]), stds


def test_mlp_config_rejects_unknown_keys() -> None:
    with raises_naming(ValueError, "['width']"):
        MLPConfig.from_dict({"width": 3})
    with raises_naming(ValueError, "activation", "'relu'"):
        MLP(3, 3, activation="relu")  # type: ignore[arg-type]


def test_ema_update_is_exact_lerp_and_swaps_weights() -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2).double()
    ema = EMA(net, decay=0.9)
    w0 = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update()
    torch.testing.assert_close(ema.shadow["weight"], 0.9 * w0 + 0.1 * (w0 + 1.0))
    raw = net.weight.detach().clone()
    with ema.average_parameters() as m:
        torch.testing.assert_close(m.weight, ema.shadow["weight"])
    torch.testing.assert_close(net.weight, raw)
    other = EMA(torch.nn.Linear(3, 2).double(), 0.5)
    other.load_state_dict(ema.state_dict())
    torch.testing.assert_close(other.shadow["bias"], ema.shadow["bias"])
    with pytest.raises(ValueError):
        EMA(net, decay=1.0)


def test_divergence_of_gradient_of_linear_function_on_s2() -> None:
    # v = grad_M <a, x> = P_x a, and div_M v = Laplacian of the degree-1 harmonic = -2 <a, x>.
    sphere = Sphere(2)
    gen = torch.Generator().manual_seed(1)
    x = sphere.random_uniform(100, dtype=torch.float64, generator=gen)
    a = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    v, div = manifold_divergence(lambda z: sphere.proju(z, a.expand_as(z)), x, sphere)
    torch.testing.assert_close(div, -2.0 * (x @ a))
    torch.testing.assert_close(v, sphere.proju(x, a.expand_as(x)))


def test_divergence_of_degree_two_harmonic_on_s2() -> None:
    # f = x_1 x_2 is a degree-2 harmonic: Laplacian f = -6 f.
    sphere = Sphere(2)
    gen = torch.Generator().manual_seed(2)
    x = sphere.random_uniform(50, dtype=torch.float64, generator=gen)

    def grad_f(z: torch.Tensor) -> torch.Tensor:
        g = torch.stack([z[:, 1], z[:, 0], torch.zeros_like(z[:, 0])], dim=-1)
        return sphere.proju(z, g)

    _, div = manifold_divergence(grad_f, x, sphere)
    torch.testing.assert_close(div, -6.0 * x[:, 0] * x[:, 1])


def test_hutchinson_divergence_is_unbiased() -> None:
    sphere = Sphere(2)
    gen = torch.Generator().manual_seed(3)
    x0 = sphere.random_uniform(1, dtype=torch.float64, generator=gen)
    x = x0.expand(20000, 3).clone()
    mat = torch.tensor([[0.5, 1.0, -0.3], [0.2, -0.7, 0.4], [1.1, 0.0, 0.9]], dtype=torch.float64)

    def field(z: torch.Tensor) -> torch.Tensor:
        return sphere.proju(z, z @ mat.T)

    _, exact = manifold_divergence(field, x[:1], sphere)
    _, est = manifold_divergence(field, x, sphere, method="hutchinson", generator=gen)
    assert abs(float(est.mean()) - float(exact[0])) < 5 * float(est.std()) / math.sqrt(20000)


def test_divergence_euclidean_is_trace() -> None:
    flat = Euclidean(3)
    mat = torch.tensor([[1.0, 2.0, 0.0], [0.0, -3.0, 1.0], [4.0, 0.0, 0.5]], dtype=torch.float64)
    x = torch.randn(7, 3, dtype=torch.float64)
    _, div = manifold_divergence(lambda z: z @ mat.T, x, flat)
    torch.testing.assert_close(div, torch.full((7,), -1.5, dtype=torch.float64))
    with raises_naming(ValueError, "divergence method", "'bogus'"):
        manifold_divergence(lambda z: z, x, flat, method="bogus")  # type: ignore[arg-type]


def test_tangent_score_model_wraps_any_net() -> None:
    sphere = Sphere(2)

    class Const(torch.nn.Module):
        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return torch.ones_like(x)

    model = TangentScoreModel(Const(), sphere)
    x = sphere.random_uniform(5, dtype=torch.float64)
    torch.testing.assert_close(
        model.score_fn(x, torch.zeros(5)), sphere.proju(x, torch.ones_like(x))
    )
