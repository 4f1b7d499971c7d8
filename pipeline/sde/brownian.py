"""Brownian motion (generator ½Δ) on any manifold, simulated by geodesic random walks."""

from __future__ import annotations

import torch
from torch import Tensor

from pipeline.geometry.manifold import Manifold
from pipeline.sde.schedules import BetaSchedule


def geodesic_random_walk(
    manifold: Manifold,
    x0: Tensor,
    s: float | Tensor,
    n_steps: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Approximate X_s | X_0 = x0 for Brownian motion with generator ½Δ.

    Each of the ``n_steps`` steps is x ← exp_x(√δ · Z) with δ = s/n_steps and Z a standard
    Gaussian in T_x M; the walk converges to Brownian motion as n_steps → ∞.

    Args:
        manifold: the manifold.
        x0: Tensor, shape (..., D), starting points.
        s: heat time ≥ 0: a float or a Tensor broadcastable to x0.shape[:-1].
        n_steps: number of steps (≥ 1).
        generator: random generator on x0's device.

    Returns:
        Tensor, shape (..., D), points on the manifold.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    s_t = torch.as_tensor(s, dtype=x0.dtype, device=x0.device)
    if bool((s_t < 0).any()):
        raise ValueError("heat time s must be >= 0")
    step = torch.sqrt(s_t / n_steps).unsqueeze(-1)
    x = x0
    for _ in range(n_steps):
        x = manifold.expmap(x, step * manifold.random_normal_tangent(x, generator))
    return x


class BrownianMotion:
    """Time-changed Brownian motion dX = √β(t) dB^M (generator ½β(t)Δ).

    Args:
        manifold: the manifold.
        schedule: β schedule; the heat time at t is ``schedule.heat_time(t)``.
    """

    def __init__(self, manifold: Manifold, schedule: BetaSchedule) -> None:
        self.manifold = manifold
        self.schedule = schedule

    def __repr__(self) -> str:
        return f"BrownianMotion({self.manifold!r}, {self.schedule!r})"

    def marginal_sample(
        self,
        x0: Tensor,
        t: float | Tensor,
        n_steps: int,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Approximate sample of X_t | X_0 = x0 by a geodesic random walk.

        (On S² use :mod:`pipeline.sde.exact_sampler` for exact samples.)

        Args:
            x0: Tensor, shape (..., D), starting points.
            t: float or Tensor broadcastable to x0.shape[:-1], times in [0, T].
            n_steps: random-walk steps.
            generator: random generator on x0's device.

        Returns:
            Tensor, shape (..., D), points on the manifold.
        """
        t_t = torch.as_tensor(t, dtype=x0.dtype, device=x0.device)
        return geodesic_random_walk(
            self.manifold, x0, self.schedule.heat_time(t_t), n_steps, generator
        )
