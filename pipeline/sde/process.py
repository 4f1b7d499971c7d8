r"""The forward-process contract of the engine (the score-SDE ``sde`` idea, on a manifold).

A forward process is the Itô SDE on M

.. math:: dX_t = \beta(t)\, b(X_t)\, dt + \sqrt{\beta(t)}\, dB^M_t,

a time change (heat time :math:`s(t) = \int_0^t \beta`) of the time-homogeneous diffusion
:math:`dX = b(X)\,ds + dB^M` with generator :math:`\tfrac12\Delta + b\cdot\nabla`. It converges to
its reference law (its invariant law), whose log-density is the likelihood's base and whose
samples start the generator. Brownian motion (b = 0, uniform reference) and Langevin dynamics
(:math:`b = -\tfrac12\nabla U`, reference :math:`\propto e^{-U}`) implement it.

:meth:`ForwardProcess.reverse` gives the time reversal for a score field
:math:`s_\theta \approx \nabla\log p_t`: drift :math:`f - c\,g^2 s_\theta` (c = 1, diffusion g)
or the probability-flow ODE (c = ½, no diffusion), both in forward time, integrated from T
down to eps by :mod:`pipeline.sampling` and :mod:`pipeline.likelihood`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from pipeline.geometry.manifold import Manifold
from pipeline.sde.schedules import BetaSchedule

ScoreFn = Callable[[Tensor, Tensor], Tensor]

__all__ = ["ForwardProcess", "ReverseProcess", "ScoreFn"]


class ForwardProcess(ABC):
    """A forward noising SDE on a manifold (see the module docstring).

    Args:
        manifold: The manifold.
        schedule: β schedule; ``schedule.T`` is the end time.
    """

    def __init__(self, manifold: Manifold, schedule: BetaSchedule) -> None:
        self.manifold = manifold
        self.schedule = schedule

    @property
    def T(self) -> float:
        """End time of the forward process."""
        return float(self.schedule.T)

    @abstractmethod
    def heat_drift(self, x: Tensor) -> Tensor:
        """Drift b(x) per unit heat time, tangent at x, shape (..., D)."""

    def drift(self, x: Tensor, t: Tensor) -> Tensor:
        """Drift f(x, t) = β(t) b(x).

        Args:
            x: Tensor, shape (B, D), points on M.
            t: Tensor, shape (B,) or scalar, times.

        Returns:
            Tensor, shape (B, D), tangent vectors.
        """
        beta = self.schedule.beta(torch.as_tensor(t, dtype=x.dtype, device=x.device))
        return beta.reshape(*beta.shape, *([1] * (x.dim() - beta.dim()))) * self.heat_drift(x)

    def diffusion(self, t: Tensor) -> Tensor:
        """Diffusion coefficient g(t) = √β(t), same shape as t."""
        return self.schedule.beta(t).sqrt()

    @abstractmethod
    def reference_logp(self, x: Tensor) -> Tensor:
        """Log-density of the reference law w.r.t. the Riemannian volume, shape (...)."""

    @abstractmethod
    def reference_score(self, x: Tensor) -> Tensor:
        """Score ∇ log π of the reference law (the large-time limit of ∇ log p_t), (..., D)."""

    @abstractmethod
    def sample_reference(
        self,
        n: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """n exact draws from the reference law, shape (n, D)."""

    def marginal_sample(
        self,
        x0: Tensor,
        t: float | Tensor,
        n_steps: int,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Approximate draw of X_t | X_0 = x0 by a geodesic random walk in heat time.

        Args:
            x0: Tensor, shape (..., D), starting points.
            t: float or Tensor broadcastable to x0.shape[:-1], times in [0, T].
            n_steps: Random-walk steps.
            generator: Random generator on x0's device.

        Returns:
            Tensor, shape (..., D), points on M.
        """
        t_t = torch.as_tensor(t, dtype=x0.dtype, device=x0.device)
        return self.heat_time_sample(x0, self.schedule.heat_time(t_t), n_steps, generator)

    def heat_time_sample(
        self,
        x0: Tensor,
        s: float | Tensor,
        n_steps: int,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Approximate draw of the process after heat time s from x0 (a drifted random walk)."""
        return drifted_random_walk(self.manifold, self.heat_drift, x0, s, n_steps, generator)

    def reverse(self, score_fn: ScoreFn, probability_flow: bool = False) -> ReverseProcess:
        """The time reversal driven by ``score_fn`` (the SDE, or the probability-flow ODE)."""
        return ReverseProcess(self, score_fn, probability_flow)


@dataclass(frozen=True)
class ReverseProcess:
    r"""Reverse-time SDE (or PF-ODE) of a forward process, written in forward time.

    Integrated from T down to eps: a step of size γ > 0 maps y to
    :math:`\exp_y(-\gamma\,\mathrm{drift}(y, t) + g(t)\sqrt\gamma Z)`.

    Attributes:
        forward: The forward process.
        score_fn: ``score_fn(x (B, D), t (B,)) -> (B, D)``.
        probability_flow: Whether this is the ODE (no diffusion).
    """

    forward: ForwardProcess
    score_fn: ScoreFn
    probability_flow: bool = False

    def drift(self, x: Tensor, t: Tensor) -> Tensor:
        """f(x, t) − c β(t) s(x, t), c = ½ for the ODE, 1 for the SDE; shape (B, D)."""
        c = 0.5 if self.probability_flow else 1.0
        t_b = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[:-1])
        beta = self.forward.schedule.beta(t_b)[..., None]
        return beta * (self.forward.heat_drift(x) - c * self.score_fn(x, t_b))

    def diffusion(self, t: Tensor) -> Tensor:
        """g(t) = √β(t) for the SDE, 0 for the ODE."""
        g = self.forward.diffusion(t)
        return torch.zeros_like(g) if self.probability_flow else g


def drifted_random_walk(
    manifold: Manifold,
    heat_drift: Callable[[Tensor], Tensor],
    x0: Tensor,
    s: float | Tensor,
    n_steps: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Geodesic random walk of dX = b(X) ds + dB^M: x ← exp_x(b(x) δ + √δ Z), δ = s/n_steps.

    Converges to the SDE's law as n_steps → ∞ (weak order 1).

    Args:
        manifold: The manifold.
        heat_drift: b, mapping x (..., D) to tangent vectors (..., D); None-like zero fields
            are allowed (Brownian motion).
        x0: Tensor, shape (..., D), starting points.
        s: Heat time ≥ 0: a float or a Tensor broadcastable to x0.shape[:-1].
        n_steps: Number of steps (≥ 1).
        generator: Random generator on x0's device.

    Returns:
        Tensor, shape (..., D), points on M.

    Raises:
        ValueError: If n_steps < 1 or a heat time is negative.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    s_t = torch.as_tensor(s, dtype=x0.dtype, device=x0.device)
    if bool((s_t < 0).any()):
        raise ValueError("heat time s must be >= 0")
    delta = (s_t / n_steps).unsqueeze(-1)
    root = delta.sqrt()
    x = x0
    for _ in range(n_steps):
        noise = root * manifold.random_normal_tangent(x, generator)
        x = manifold.expmap(x, delta * heat_drift(x) + noise)
    return x
