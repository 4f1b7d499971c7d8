"""The bridge's walks, sampler and PF-ODE likelihood against exact bridges (float64)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from pipeline.geometry import Sphere
from pipeline.mmd import mmd_test
from pipeline.models import build_score_model
from pipeline.sampling import reverse_geodesic_random_walk
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.exact_sampler import exact_bm_sample
from pipeline.sde.heat_kernel import heat_kernel_mixture_logp, heat_kernel_mixture_score
from pipeline.sde.schedules import LinearBeta
from pipeline.variants.dsb.model import BridgeModel, simulate

SPHERE = Sphere(2)
LONG = LinearBeta(beta_0=1e-3, beta_1=20.0, T=1.0)  # s(T) ≈ 10: p_T is uniform to ~1e-4
CENTERS = SPHERE.projx(
    torch.tensor([[0.0, 0.0, 1.0], [0.6, 0.8, 0.0], [-0.5, 0.0, -0.9]], dtype=torch.float64)
)
WEIGHTS = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
S0 = 0.5  # the heat kernel's fast series form
OMEGA = torch.tensor([0.1, -0.15, 0.25], dtype=torch.float64)  # f(x) = ω × x, |ω| ≈ 0.31
EPS = 1e-3
LOG_4PI = math.log(4 * math.pi)

Fn = Callable[[Tensor, Tensor], Tensor]


class FieldModule(nn.Module):
    """An analytic field as a (parameter-free) module."""

    def __init__(self, fn: Fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.fn(x, t)


def _rotate(x: Tensor, phi: Tensor) -> Tensor:
    """Rotation by angle φ (shape (B,)) about ω/|ω| (Rodrigues)."""
    k = (OMEGA / OMEGA.norm()).expand_as(x)
    c, s = torch.cos(phi)[:, None], torch.sin(phi)[:, None]
    return x * c + torch.linalg.cross(k, x) * s + k * (k * x).sum(-1, keepdim=True) * (1 - c)


def _phi(t: Tensor) -> Tensor:
    # dX = β ω×X dt + √β dB: X_t is R(|ω| s(t)) applied to Brownian motion at heat time s(t)
    return OMEGA.norm() * LONG.heat_time(t)


def _rot_field(x: Tensor, t: Tensor) -> Tensor:
    return torch.linalg.cross(OMEGA.expand_as(x), x)


def _exact_logp(x: Tensor, t: Tensor, rotating: bool) -> Tensor:
    y = _rotate(x, -_phi(t)) if rotating else x
    return heat_kernel_mixture_logp(y, CENTERS, S0 + LONG.heat_time(t), WEIGHTS)


def _exact_score(x: Tensor, t: Tensor, rotating: bool) -> Tensor:
    if not rotating:
        return heat_kernel_mixture_score(x, CENTERS, S0 + LONG.heat_time(t), WEIGHTS)
    phi = _phi(t)
    y = _rotate(x, -phi)
    return _rotate(heat_kernel_mixture_score(y, CENTERS, S0 + LONG.heat_time(t), WEIGHTS), phi)


def _exact_bridge(rotating: bool, uniform: bool = False) -> BridgeModel:
    """F = β f, B = −F + β∇log p_t with the exact marginals of that forward process."""
    f = FieldModule(_rot_field) if rotating else None

    def b(x: Tensor, t: Tensor) -> Tensor:
        score = torch.zeros_like(x) if uniform else _exact_score(x, t, rotating)
        return score - (_rot_field(x, t) if rotating else 0.0)

    return BridgeModel(SPHERE, LONG, [f], [FieldModule(b)], eps=EPS)


def _data_like_points(n_per_center: int, seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    c = CENTERS.repeat_interleave(n_per_center, dim=0)
    return SPHERE.expmap(c, SPHERE.random_normal_tangent(c, gen) * math.sqrt(S0))


def test_bridge_ode_reproduces_the_exact_log_density() -> None:
    # F = 0 (the RSGM case) and F = β ω×x (a rotating bridge: p_t is the mixture rotated by
    # |ω| s(t), B = −F + β∇log p_t): the ODE ½(F − B) from eps with the uniform base gives
    # log p_eps within 1e-3 nats on a long horizon; uniform data gives −log 4π.
    x = _data_like_points(3, seed=1)
    t0 = torch.full((x.shape[0],), EPS, dtype=torch.float64)
    for rotating in (False, True):
        logp = _exact_bridge(rotating).log_density(x)
        expected = _exact_logp(x, t0, rotating)
        assert (logp - expected).abs().max() < 1e-3, (rotating, (logp - expected).abs().max())
        assert float(expected.max() - expected.min()) > 1.0
        uni = _exact_bridge(rotating, uniform=True).log_density(x)
        torch.testing.assert_close(uni, torch.full_like(uni, -LOG_4PI), rtol=0, atol=1e-8)
    # the rotating bridge's marginals really move: the unrotated density is off by far more
    wrong = _exact_logp(x, t0 + 0.5, rotating=True)
    assert (wrong - expected).abs().max() > 0.1


def test_backward_walk_is_the_sampler_and_rows_are_laid_out() -> None:
    torch.manual_seed(0)
    net = build_score_model(SPHERE, {"hidden": 16, "depth": 2})
    bridge = BridgeModel(SPHERE, LONG, [None], [net], eps=EPS)
    paths = bridge.simulate_backward(32, 7, torch.Generator().manual_seed(3), increment="euler")
    y = bridge.sample(32, 7, torch.Generator().manual_seed(3))
    direct = reverse_geodesic_random_walk(
        net, BrownianMotion(SPHERE, LONG), 32, 7, torch.Generator().manual_seed(3), eps=EPS
    )
    assert torch.equal(paths.states[0], y) and torch.equal(y, direct)
    assert paths.states.shape == (8, 32, 3) and paths.start == "prior"
    assert float(paths.times[0]) == EPS and float(paths.times[-1]) == 1.0
    assert bool((paths.times.diff() > 0).all())
    rows = paths.marginal_rows()  # the 7 simulated states (not the prior draw at T)
    assert rows.shape == (32 * 7, 4) and float(rows[:, 3].max()) < 1.0
    torch.testing.assert_close(rows[:32, :3], paths.states[0])
    steps = paths.step_rows()
    assert steps.shape == (32 * 7, 8)
    torch.testing.assert_close(steps[-32:, 4:7], paths.states[-1])
    assert bool((steps[:, 7] > steps[:, 3]).all())
    # forward walk from data: starts at eps, the start excluded from its marginal rows
    x0 = SPHERE.random_uniform(16, generator=torch.Generator().manual_seed(4))
    fwd = simulate(net, SPHERE, LONG, x0, 5, torch.Generator().manual_seed(5), direction="forward")
    assert fwd.start == "data" and torch.equal(fwd.states[0], x0)
    assert float(fwd.marginal_rows()[:, 3].min()) > EPS
    drift = bridge.backward_drift_fn()(x0, torch.full((16,), 0.5))
    torch.testing.assert_close(drift, LONG.beta(0.5) * net(x0, torch.full((16,), 0.5)))
    assert torch.equal(bridge.forward_drift_fn(1)(x0, torch.zeros(16)), torch.zeros_like(x0))


def test_sampler_with_the_exact_backward_drift_matches_the_mixture() -> None:
    # B = β × the exact score (F = 0) and B = −F + β∇log p_t of the rotating bridge: the walk's
    # samples pass the heat-kernel MMD test against exact draws of p_eps and fail it against
    # uniform draws.
    n = 400
    gen = torch.Generator().manual_seed(11)
    idx = torch.multinomial(WEIGHTS, n, replacement=True, generator=gen)
    exact = exact_bm_sample(CENTERS[idx], S0 + LONG.heat_time(EPS), gen).numpy()
    uniform = SPHERE.random_uniform(n, dtype=torch.float64, generator=gen).numpy()
    for rotating in (False, True):
        bridge = _exact_bridge(rotating)
        y = bridge.sample(n, 100, torch.Generator().manual_seed(12), dtype=torch.float64)
        if rotating:  # p_eps is the mixture turned by |ω| s(eps): turn the samples back
            y = _rotate(y, -_phi(torch.full((n,), EPS, dtype=torch.float64)))
        samples = y.numpy()
        assert np.abs(np.linalg.norm(samples, axis=1) - 1).max() < 1e-6
        same = mmd_test(samples, exact, s=0.05, n_permutations=100, seed=0)
        other = mmd_test(samples, uniform, s=0.05, n_permutations=100, seed=0)
        assert same.p_value > 0.05, (rotating, same)
        assert other.p_value < 0.02, (rotating, other)  # no permutation reached it


def test_heat_walk_states_carry_their_heat_time() -> None:
    # Brownian walk from the pole: E<X_t, x0> = exp(−(s(t) − s(eps))) at every grid time with
    # the exact heat increments; the Euler length γβ(t_k) misses it at the first steps.
    sched = LinearBeta(beta_0=1e-3, beta_1=5.0, T=1.0)
    n = 6000
    x0 = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64).expand(n, 3)
    gaps = {}
    for increment in ("heat", "euler"):
        paths = simulate(
            None, SPHERE, sched, x0, 10, torch.Generator().manual_seed(21), direction="forward",
            increment=increment,  # type: ignore[arg-type]
        )  # fmt: skip
        c = paths.states[:, :, 2]  # (N + 1, n)
        want = torch.exp(-(sched.heat_time(paths.times) - sched.heat_time(EPS)))
        se = c.std(dim=1) / math.sqrt(n) + 1e-12
        gaps[increment] = ((c.mean(dim=1) - want).abs() / se).max()
    assert gaps["heat"] < 4, gaps
    assert gaps["euler"] > 8, gaps
