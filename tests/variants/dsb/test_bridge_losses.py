"""The Schrödinger-bridge losses against ISM and against exact fields (float64)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from pipeline.geometry import Sphere
from pipeline.losses import TimeSampler, Weighting, ism_loss, loss_weight
from pipeline.models import build_score_model
from pipeline.models.divergence import manifold_divergence
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.exact_sampler import exact_bm_sample
from pipeline.sde.heat_kernel import heat_kernel_mixture_score
from pipeline.sde.schedules import ConstantBeta, LinearBeta
from pipeline.transition import make_noise_sampler
from pipeline.variants.dsb.losses import (
    implicit_loss,
    make_implicit_loss,
    make_mean_matching_loss,
    mean_matching_loss,
    mean_matching_target,
    transport,
)
from tests.errors import raises_naming

SPHERE = Sphere(2)
SCHED = LinearBeta(beta_0=1e-3, beta_1=5.0, T=1.0)
CENTERS = SPHERE.projx(torch.tensor([[0.0, 0.0, 1.0], [0.8, 0.0, -0.6]], dtype=torch.float64))
WEIGHTS = torch.tensor([0.7, 0.3], dtype=torch.float64)
S0 = 0.5  # the heat kernel's fast series form
A = torch.tensor([0.4, -1.2, 1.5], dtype=torch.float64)  # f(x) = P_x a = ∇<a, x>, div = -2<a, x>

Fn = Callable[[Tensor, Tensor], Tensor]


class Scaled(nn.Module):
    """The field c·v(x, t) with a trainable scalar c."""

    def __init__(self, v: Fn, c: float = 1.0) -> None:
        super().__init__()
        self.v = v
        self.c = nn.Parameter(torch.tensor(c, dtype=torch.float64))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.c * self.v(x, t)


def _grad_field(x: Tensor, t: Tensor) -> Tensor:
    return SPHERE.proju(x, A.expand_as(x))


def _mixture_score(x: Tensor, t: Tensor) -> Tensor:
    return heat_kernel_mixture_score(x, CENTERS, S0 + SCHED.heat_time(t), WEIGHTS)


def _mixture_marginal(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """Exact draws of p_t (the mixture at S0 + s(t)) at times uniform on [eps, T]."""
    gen = torch.Generator().manual_seed(seed)
    t = TimeSampler("uniform", 1e-3, 1.0).sample(n, gen, dtype=torch.float64)
    idx = torch.multinomial(WEIGHTS, n, replacement=True, generator=gen)
    return exact_bm_sample(CENTERS[idx], S0 + SCHED.heat_time(t), gen), t


@pytest.mark.parametrize("weighting", ["variance", "likelihood"])
def test_implicit_loss_with_zero_field_equals_ism_loss(weighting: Weighting) -> None:
    torch.manual_seed(0)
    model = build_score_model(SPHERE, {"hidden": 16, "depth": 2}).double()
    x0 = SPHERE.random_uniform(64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t_sampler = TimeSampler("log_uniform", 1e-3, 1.0)
    sampler = make_noise_sampler(BrownianMotion(SPHERE, SCHED), "exact")
    ism = ism_loss(
        model, x0, SCHED, sampler, t_sampler, torch.Generator().manual_seed(7), manifold=SPHERE,
        weighting=weighting,
    )  # fmt: skip
    gen = torch.Generator().manual_seed(7)  # replay ism_loss's draws: t, then x_t
    t = t_sampler.sample(64, gen, dtype=torch.float64)
    xt = sampler(x0, SCHED.heat_time(t), gen)
    kw: dict[str, Any] = {
        "manifold": SPHERE, "schedule": SCHED, "t_sampler": t_sampler, "weighting": weighting
    }  # fmt: skip
    direct = implicit_loss(model, None, xt, t, **kw)
    rows_fn = make_implicit_loss(None, SPHERE, SCHED, t_sampler=t_sampler, weighting=weighting)
    via_rows = rows_fn(model, torch.cat([xt, t[:, None]], dim=1), gen)
    assert torch.equal(direct, ism) and torch.equal(via_rows, ism), (direct, via_rows, ism)
    g_ism = torch.autograd.grad(ism, list(model.parameters()))
    g_imp = torch.autograd.grad(direct, list(model.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(g_ism, g_imp, strict=True))
    # the frozen field enters as ½|r + o|²: the cross and square terms, nothing else
    with_o = implicit_loss(model, _grad_field, xt, t, **kw)
    v = model(xt, t).detach()
    o = _grad_field(xt, t)
    lam = loss_weight(t, SCHED, t_sampler, weighting)
    extra = (lam * ((v * o).sum(-1) + 0.5 * o.pow(2).sum(-1))).mean()
    torch.testing.assert_close(with_o.detach(), direct.detach() + extra, rtol=1e-12, atol=1e-12)


def _grad_and_se(v: Fn, other: Fn | None, x: Tensor, t: Tensor) -> tuple[float, float, float]:
    """dL/dc at c = 1 for the field c·v (through implicit_loss), its MC standard error, E λ|v|²."""
    t_sampler = TimeSampler("uniform", 1e-3, 1.0)
    model = Scaled(v)
    loss = implicit_loss(model, other, x, t, manifold=SPHERE, schedule=SCHED, t_sampler=t_sampler)
    (grad,) = torch.autograd.grad(loss, [model.c])
    # per-point terms of the same derivative: λ(v·(v + o) + div v)
    val, div = manifold_divergence(lambda y: v(y, t), x, SPHERE)
    o = torch.zeros_like(val) if other is None else other(x, t)
    lam = loss_weight(t, SCHED, t_sampler, "variance")
    terms = (lam * ((val * (val + o)).sum(-1) + div)).detach()
    curvature = float((lam * val.detach().pow(2).sum(-1)).mean())
    return float(grad), float(terms.std()) / math.sqrt(len(terms)), curvature


@pytest.mark.parametrize("other", [None, _grad_field], ids=["f=0", "f=grad<a,x>"])
def test_implicit_loss_is_stationary_at_the_exact_field(other: Fn | None) -> None:
    # x ~ p_t exactly; the minimiser is r* = ∇log p_t − o for any frozen o (so the same loss
    # fits b given f, or f given b). Along c·r*, dL/dc at c = 1 is E[λ(r*·∇log p + div r*)] = 0
    # by the divergence theorem, up to MC noise; at a wrong field it is far from 0.
    x, t = _mixture_marginal(8000, seed=2)

    def exact(y: Tensor, s: Tensor) -> Tensor:
        return _mixture_score(y, s) - (0.0 if other is None else other(y, s))

    grad, se, curv = _grad_and_se(exact, other, x, t)
    assert abs(grad) < 4 * se, (grad, se)
    assert curv > 15 * se  # a minimum, resolved: c* = 1 − grad/curv to ±4se/curv < 0.3

    def wrong(y: Tensor, s: Tensor) -> Tensor:
        return _mixture_score(y, s) + _grad_field(y, s)

    grad_w, se_w, _ = _grad_and_se(wrong, other, x, t)
    assert abs(grad_w) > 6 * se_w, (grad_w, se_w)


def test_uniform_data_zero_fields_are_stationary() -> None:
    # Uniform data: p_t is uniform, so f = b = 0; the zero field's loss is exactly 0 and
    # dL/dc at c = 0 along any field v is E[λ div v] = 0 ± MC noise.
    gen = torch.Generator().manual_seed(4)
    n = 4000
    x = SPHERE.random_uniform(n, dtype=torch.float64, generator=gen)
    t = TimeSampler("uniform", 1e-3, 1.0).sample(n, gen, dtype=torch.float64)
    zero = Scaled(_grad_field, c=0.0)
    loss = implicit_loss(
        zero,
        None,
        x,
        t,
        manifold=SPHERE,
        schedule=SCHED,
        t_sampler=TimeSampler("uniform", 1e-3, 1.0),
    )
    assert float(loss.detach()) == 0.0
    (grad,) = torch.autograd.grad(loss, [zero.c])
    lam = SCHED.heat_time(t)
    terms = lam * (-2.0 * (x @ A))  # λ div v for v = P_x a
    se = float(terms.std()) / math.sqrt(n)
    torch.testing.assert_close(grad, terms.mean(), rtol=1e-10, atol=1e-12)
    assert abs(float(grad)) < 4 * se
    # the same check on non-uniform data fails: E[λ div v] ≠ 0 there
    xm, tm = _mixture_marginal(n, seed=5)
    terms_m = SCHED.heat_time(tm) * (-2.0 * (xm @ A))
    assert abs(float(terms_m.mean())) > 6 * float(terms_m.std()) / math.sqrt(n)


def test_transport_is_the_sphere_parallel_transport() -> None:
    gen = torch.Generator().manual_seed(6)
    x = SPHERE.random_uniform(200, dtype=torch.float64, generator=gen)
    u = 0.8 * SPHERE.random_normal_tangent(x, gen)
    y = SPHERE.expmap(x, u)
    w = SPHERE.random_normal_tangent(x, gen)
    tw = transport(SPHERE, x, y, w)
    torch.testing.assert_close((tw * y).sum(-1), torch.zeros(200, dtype=torch.float64))
    torch.testing.assert_close(tw.norm(dim=-1), w.norm(dim=-1))
    # the geodesic's velocity is parallel: τ log_x(y) = −log_y(x)
    lxy = SPHERE.logmap(x, y)
    torch.testing.assert_close(transport(SPHERE, x, y, lxy), -SPHERE.logmap(y, x))
    # inner products are kept
    torch.testing.assert_close((tw * transport(SPHERE, x, y, lxy)).sum(-1), (w * lxy).sum(-1))


def _regression_coef(target: Tensor, v: Tensor) -> float:
    return float((target * v).sum() / v.pow(2).sum())


def test_mean_matching_target_brownian_step_recovers_the_score() -> None:
    # f = 0: one walk step from exact mixture draws; the target b̂ = log_{x1}(x0)/(γβ)
    # regressed on the exact ∇log p_{t1}(x1) has coefficient ≈ 1 (O(γ) discretisation bias).
    sched = ConstantBeta(beta=1.0, T=1.0)
    n, t0, gamma = 40000, 0.4, 0.02
    gen = torch.Generator().manual_seed(8)
    idx = torch.multinomial(WEIGHTS, n, replacement=True, generator=gen)
    x0 = exact_bm_sample(CENTERS[idx], S0 + t0, gen)
    x1 = SPHERE.expmap(x0, math.sqrt(gamma) * SPHERE.random_normal_tangent(x0, gen))
    tt0 = torch.full((n,), t0, dtype=torch.float64)
    tt1 = tt0 + gamma
    target = mean_matching_target(None, x0, tt0, x1, tt1, manifold=SPHERE, schedule=sched)
    score = heat_kernel_mixture_score(x1, CENTERS, S0 + t0 + gamma, WEIGHTS)
    coef = _regression_coef(target, score)
    assert abs(coef - 1.0) < 0.1, coef
    torch.testing.assert_close((target * x1).sum(-1), torch.zeros(n, dtype=torch.float64))


def test_mean_matching_targets_subtract_the_frozen_drift_for_both_directions() -> None:
    # Uniform data and the drift o = P_x a: the marginal stays uniform to O(γβ), so the reverse
    # field is ≈ −o (coefficient −1 + 2γβ from ∇log p_{t1} ≈ 2γβ o). Checked through the
    # trainer's row losses for both directions: the loss is quadratic in c with minimiser
    # c* = g(0)/(g(0) − g(1)), g = dL/dc.
    sched = ConstantBeta(beta=1.0, T=1.0)
    n, gamma = 20000, 0.02
    gen = torch.Generator().manual_seed(9)
    for learn in ("backward", "forward"):
        start = SPHERE.random_uniform(n, dtype=torch.float64, generator=gen)
        step = gamma * _grad_field(start, start[:, 0]) + math.sqrt(gamma) * (
            SPHERE.random_normal_tangent(start, gen)
        )
        end = SPHERE.expmap(start, step)
        t_a = torch.full((n, 1), 0.5, dtype=torch.float64)
        t_c = t_a + (gamma if learn == "backward" else -gamma)
        if learn == "backward":  # a forward step k → k+1 driven by f at t_k
            rows = torch.cat([start, t_a, end, t_c], dim=1)
        else:  # a backward step k+1 → k driven by b at t_{k+1}
            rows = torch.cat([end, t_c, start, t_a], dim=1)
        loss_fn = make_mean_matching_loss(_grad_field, learn, SPHERE, sched)  # type: ignore[arg-type]
        grads = []
        for c in (0.0, 1.0):
            model = Scaled(_grad_field, c)
            (g,) = torch.autograd.grad(loss_fn(model, rows, gen), [model.c])
            grads.append(float(g))
        coef = grads[0] / (grads[0] - grads[1])
        assert abs(coef - (-1.0 + 2 * gamma)) < 0.15, (learn, coef)
        # the row loss is mean_matching_loss with the step's ends in the right roles
        model = Scaled(_grad_field, 0.3)
        direct = mean_matching_loss(
            model, _grad_field, start, t_a[:, 0], end, t_c[:, 0], manifold=SPHERE, schedule=sched,
            t_sampler=TimeSampler("uniform", 1e-3, 1.0),
        )  # fmt: skip
        torch.testing.assert_close(loss_fn(model, rows, gen), direct)
    with raises_naming(ValueError, "learn", "'sideways'"):
        make_mean_matching_loss(None, "sideways", SPHERE, sched)  # type: ignore[arg-type]
    with raises_naming(ValueError, "step rows", "(B, 8)"):
        bad_rows = rows[:, :4]
        make_mean_matching_loss(None, "forward", SPHERE, sched)(Scaled(_grad_field), bad_rows, gen)
