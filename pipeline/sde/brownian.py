"""Brownian motion (generator ½Δ) on any manifold, simulated by geodesic random walks."""

from __future__ import annotations

import torch
from torch import Tensor

from pipeline.geometry.manifold import Manifold
from pipeline.sde.process import ForwardProcess


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


class BrownianMotion(ForwardProcess):
    """Time-changed Brownian motion dX = √β(t) dB^M (generator ½β(t)Δ), to the uniform law.

    Args:
        manifold: A compact manifold (the reference is its uniform law).
        schedule: β schedule; the heat time at t is ``schedule.heat_time(t)``.
    """

    def __repr__(self) -> str:
        return f"BrownianMotion({self.manifold!r}, {self.schedule!r})"

    def heat_drift(self, x: Tensor) -> Tensor:
        """Zero: Brownian motion has no drift."""
        return torch.zeros_like(x)

    def reference_logp(self, x: Tensor) -> Tensor:
        """The uniform log-density −log vol(M), shape (...)."""
        return self.manifold.uniform_logprob(x)

    def reference_score(self, x: Tensor) -> Tensor:
        """Zero: the uniform law has a constant log-density."""
        return torch.zeros_like(x)

    def sample_reference(
        self,
        n: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """n uniform points, shape (n, D)."""
        return self.manifold.random_uniform(n, dtype=dtype, device=device, generator=generator)

    def heat_time_sample(
        self,
        x0: Tensor,
        s: float | Tensor,
        n_steps: int,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Approximate X after heat time s by :func:`geodesic_random_walk`.

        (On S² use :mod:`pipeline.sde.exact_sampler` for exact samples.)
        """
        return geodesic_random_walk(self.manifold, x0, s, n_steps, generator)
