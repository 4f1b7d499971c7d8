r"""A diffusion Schrödinger bridge on a manifold: its fields, walks, sampler and likelihood.

Forward time t ∈ [eps, T] with the β schedule of a Brownian reference (generator ½βΔ). An
IPF iteration k holds a forward field :math:`f_k` and a backward field :math:`b_k`, both
tangent "score-like" fields: the drifts are :math:`F_k = \beta f_k` and :math:`B_k = \beta b_k`,
and :math:`b_k` is the time reversal of the :math:`F_k`-process started at the data
(:math:`F_k + B_k = \beta\nabla\log p_t`). Iteration 1 has :math:`f_1 = 0` and :math:`b_1` the
RSGM score. Both walks are geodesic random walks on a uniform time grid with the step's field
taken at the step's start time :math:`t_k`; a step of heat length δ is
:math:`x \leftarrow \exp_x(\delta\,r(x, t_k) + \sqrt\delta Z)` with r = f forward (eps → T)
and r = b backward (T → eps). The IPF walks use the exact heat increment
:math:`\delta_k = |s(t_{k+1}) - s(t_k)|` (``increment="heat"``: a Brownian walk's states then
carry their times' heat exactly, which the cached (x, t) rows need; with the Euler length
γβ(t_k) on a linear schedule the first forward steps get several times too little noise and
the last backward ones too much); the sampler is
:func:`pipeline.sampling.reverse_geodesic_random_walk` with b as the score of Brownian motion
(δ = γβ(t_k), ``increment="euler"``, bit-identical), the RSGM sampler. The two agree to first
order in the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from pipeline.geometry.manifold import Manifold
from pipeline.likelihood import pf_ode_logp
from pipeline.sampling import reverse_geodesic_random_walk
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.schedules import BetaSchedule
from pipeline.stopping import check_stop
from pipeline.variants.dsb.losses import Field

__all__ = ["BridgeModel", "SimulatedPaths", "simulate"]

Direction = Literal["forward", "backward"]
Increment = Literal["heat", "euler"]


@dataclass(frozen=True)
class SimulatedPaths:
    """States of a geodesic random walk at every grid time, in forward-time order.

    Attributes:
        states: Tensor, shape (N + 1, P, D): P paths at the N + 1 grid times.
        times: Tensor, shape (N + 1,), float64, increasing from eps to T.
        start: ``"data"`` (a forward walk from ``states[0]``) or ``"prior"`` (a backward walk
            from ``states[-1]``).
    """

    states: Tensor
    times: Tensor
    start: Literal["data", "prior"]

    def marginal_rows(self) -> Tensor:
        """The N simulated states of every path with their times (the start excluded).

        Returns:
            Tensor, shape (P·N, D + 1), rows ``[x (D), t]`` (draws of the walk's marginals).
        """
        sel = slice(1, None) if self.start == "data" else slice(None, -1)
        x = self.states[sel]
        t = self.times[sel].to(x.dtype).to(x.device)
        n, p, _ = x.shape
        return torch.cat([x, t[:, None, None].expand(n, p, 1)], dim=-1).reshape(n * p, -1)

    def step_rows(self) -> Tensor:
        """Every step of every path as a pair of consecutive states, in forward-time order.

        Returns:
            Tensor, shape (P·N, 2D + 2), rows ``[x_k (D), t_k, x_{k+1} (D), t_{k+1}]``.
        """
        x = self.states
        t = self.times.to(x.dtype).to(x.device)
        n, p = x.shape[0] - 1, x.shape[1]
        tk = t[:-1, None, None].expand(n, p, 1)
        tn = t[1:, None, None].expand(n, p, 1)
        return torch.cat([x[:-1], tk, x[1:], tn], dim=-1).reshape(n * p, -1)


@torch.no_grad()
def simulate(
    score_like: Field | None,
    manifold: Manifold,
    schedule: BetaSchedule,
    x_start: Tensor,
    n_steps: int,
    generator: torch.Generator | None,
    *,
    direction: Direction,
    eps: float = 1e-3,
    increment: Increment = "heat",
) -> SimulatedPaths:
    r"""Geodesic random walk of the forward or the backward process, keeping every state.

    Grid: ``torch.linspace(eps, T, N + 1)`` forward, ``torch.linspace(T, eps, N + 1)`` backward
    (the sampler's). Step from :math:`t_k` to :math:`t_{k+1}`: :math:`x \leftarrow
    \pi(\exp_x(\delta_k\,r(x, t_k) + \sqrt{\delta_k}Z))`, r the score-like field (None: zero,
    Brownian motion), with the heat length :math:`\delta_k = |s(t_{k+1}) - s(t_k)|`
    (``"heat"``) or :math:`\gamma\beta(t_k)`, :math:`\gamma = |t_{k+1} - t_k|` (``"euler"``).
    The backward ``"euler"`` walk is bit-identical to
    :func:`pipeline.sampling.reverse_geodesic_random_walk` with ``r`` as the score of Brownian
    motion and the same generator and start points.

    Args:
        score_like: r: f for the forward walk, b for the backward one.
        manifold: The manifold.
        schedule: β schedule (its ``T``).
        x_start: Tensor, shape (P, D), points on M: data points (forward) or prior draws
            (backward); used as given (not re-projected, as the sampler's start).
        n_steps: N ≥ 1.
        generator: Random generator on ``x_start``'s device.
        direction: ``"forward"`` (eps → T) or ``"backward"`` (T → eps).
        eps: The data-side time.
        increment: ``"heat"`` (exact heat increments) or ``"euler"`` (the sampler's γβ(t_k)).

    Returns:
        The :class:`SimulatedPaths` (states in forward-time order).

    Raises:
        ValueError: On bad arguments.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    T = float(schedule.T)
    if not 0.0 <= eps < T:
        raise ValueError(f"need 0 <= eps < T, got eps={eps}, T={T}")
    if direction not in ("forward", "backward"):
        raise ValueError(f"direction must be 'forward' or 'backward', got {direction!r}")
    if increment not in ("heat", "euler"):
        raise ValueError(f"increment must be 'heat' or 'euler', got {increment!r}")
    backward = direction == "backward"
    lo, hi = (T, eps) if backward else (eps, T)
    times = torch.linspace(lo, hi, n_steps + 1, dtype=torch.float64)
    y = x_start
    b = y.shape[0]
    states = [y]
    for k in range(n_steps):
        check_stop("bridge walk")
        t_k, t_next = float(times[k]), float(times[k + 1])
        if increment == "euler":  # the sampler's γβ(t_k), same operations
            gamma = t_k - t_next if backward else t_next - t_k
            delta = gamma * float(schedule.beta(torch.tensor(t_k, dtype=torch.float64)))
        else:
            s_k = schedule.heat_time(torch.tensor(t_k, dtype=torch.float64))
            s_next = schedule.heat_time(torch.tensor(t_next, dtype=torch.float64))
            delta = abs(float(s_next - s_k))
        z = manifold.random_normal_tangent(y, generator)
        noise = math.sqrt(delta) * z
        if score_like is None:
            step = noise
        else:
            t_vec = torch.full((b,), t_k, dtype=y.dtype, device=y.device)
            step = delta * score_like(y, t_vec) + noise
        y = manifold.projx(manifold.expmap(y, step))
        states.append(y)
    stacked = torch.stack(states)
    if backward:
        return SimulatedPaths(stacked.flip(0), times.flip(0), "prior")
    return SimulatedPaths(stacked, times, "data")


def _freeze(module: nn.Module | None) -> None:
    if module is None:
        return
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)


@dataclass
class BridgeModel:
    """The fields of every IPF iteration of a Schrödinger bridge (eval mode, frozen).

    Iterations are numbered from 1; ``iteration=None`` means the last one.

    Attributes:
        manifold: The manifold.
        schedule: β schedule of the Brownian reference (its ``T`` is the prior side).
        forward_fields: f_k per iteration; None is the zero field (iteration 1).
        backward_fields: b_k per iteration (iteration 1: the RSGM score network).
        eps: The data-side time of the walks, the sampler and the likelihood.
        device: Where the fields live (walks and samples are drawn there).
    """

    manifold: Manifold
    schedule: BetaSchedule
    forward_fields: list[nn.Module | None]
    backward_fields: list[nn.Module]
    eps: float = 1e-3
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        if not self.backward_fields or len(self.forward_fields) != len(self.backward_fields):
            raise ValueError(
                f"need as many forward as backward fields (>= 1), got "
                f"{len(self.forward_fields)} and {len(self.backward_fields)}"
            )
        for module in [*self.forward_fields, *self.backward_fields]:
            _freeze(module)

    @property
    def n_iterations(self) -> int:
        """Number of IPF iterations held."""
        return len(self.backward_fields)

    @property
    def process(self) -> BrownianMotion:
        """The Brownian reference (the sampler's prior and the likelihood's uniform base)."""
        return BrownianMotion(self.manifold, self.schedule)

    @property
    def dtype(self) -> torch.dtype | None:
        """The fields' parameter dtype (None for parameter-free fields: the input's dtype)."""
        for module in self.backward_fields:
            for p in module.parameters():
                return p.dtype
        return None

    def _index(self, iteration: int | None) -> int:
        n = self.n_iterations if iteration is None else int(iteration)
        if not 1 <= n <= self.n_iterations:
            raise ValueError(f"iteration must be in 1..{self.n_iterations}, got {iteration}")
        return n - 1

    def backward_field(self, iteration: int | None = None) -> nn.Module:
        """b_k, ``b(x (B, D), t (B,)) -> (B, D)``."""
        return self.backward_fields[self._index(iteration)]

    def forward_field(self, iteration: int | None = None) -> nn.Module | None:
        """f_k (None: zero)."""
        return self.forward_fields[self._index(iteration)]

    def _scaled(self, fn: Field) -> Field:
        def drift(x: Tensor, t: Tensor) -> Tensor:
            beta = self.schedule.beta(torch.as_tensor(t, dtype=x.dtype, device=x.device))
            return beta.expand(x.shape[:-1])[..., None] * fn(x, t)

        return drift

    def backward_drift_fn(self, iteration: int | None = None) -> Field:
        """The backward drift B_k(x, t) = β(t) b_k(x, t), shape (B, D)."""
        return self._scaled(self.backward_field(iteration))

    def forward_drift_fn(self, iteration: int | None = None) -> Field:
        """The forward drift F_k(x, t) = β(t) f_k(x, t) (zeros for iteration 1), shape (B, D)."""
        f = self.forward_field(iteration)
        if f is None:
            return lambda x, t: torch.zeros_like(x)
        return self._scaled(f)

    def effective_score_fn(self, iteration: int | None = None) -> Field:
        r""":math:`s_\mathrm{eff} = b_k - f_k` (= b_k itself for iteration 1).

        The Brownian probability-flow field :math:`-\tfrac12\beta s_\mathrm{eff}` is then
        :math:`\tfrac12(F_k - B_k)`, the bridge's PF-ODE velocity (:math:`F - \tfrac12\beta
        \nabla\log p_t` by Nelson's relation).
        """
        b = self.backward_field(iteration)
        f = self.forward_field(iteration)
        if f is None:
            return b
        return lambda x, t: b(x, t) - f(x, t)

    def _start_dtype(self, dtype: torch.dtype | None) -> torch.dtype:
        return dtype or self.dtype or torch.float32

    def sample(
        self,
        n_points: int,
        n_steps: int,
        generator: torch.Generator | None = None,
        *,
        iteration: int | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        """Samples by the backward walk of iteration k from the uniform prior.

        :func:`pipeline.sampling.reverse_geodesic_random_walk` with b_k as the score of the
        Brownian reference: its step γβ(b_k − 0) is the B-step.

        Args:
            n_points: Number of samples.
            n_steps: Walk steps (uniform grid from T to eps).
            generator: Random generator on :attr:`device`.
            iteration: k (None: the last).
            dtype: Dtype of the walk (default: the fields').

        Returns:
            Tensor, shape (n_points, D), points on M.
        """
        return reverse_geodesic_random_walk(
            self.backward_field(iteration),
            self.process,
            n_points,
            n_steps,
            generator,
            eps=self.eps,
            dtype=self._start_dtype(dtype),
            device=self.device,
        )

    def simulate_backward(
        self,
        n_paths: int,
        n_steps: int,
        generator: torch.Generator | None = None,
        *,
        iteration: int | None = None,
        dtype: torch.dtype | None = None,
        increment: Increment = "heat",
    ) -> SimulatedPaths:
        """The backward walk of iteration k from the uniform prior, every state kept.

        With ``increment="euler"`` its final states are :meth:`sample`'s for the same
        generator state; see :func:`simulate`.
        """
        y = self.process.sample_reference(
            n_paths, dtype=self._start_dtype(dtype), device=self.device, generator=generator
        )
        return simulate(
            self.backward_field(iteration),
            self.manifold,
            self.schedule,
            y,
            n_steps,
            generator,
            direction="backward",
            eps=self.eps,
            increment=increment,
        )

    def simulate_forward(
        self,
        x0: Tensor,
        n_steps: int,
        generator: torch.Generator | None = None,
        *,
        iteration: int | None = None,
        increment: Increment = "heat",
    ) -> SimulatedPaths:
        """The forward walk of iteration k (drift F_k) from data points x0 (P, D) at eps."""
        x = self.manifold.projx(x0.to(device=self.device, dtype=self._start_dtype(None)))
        return simulate(
            self.forward_field(iteration),
            self.manifold,
            self.schedule,
            x,
            n_steps,
            generator,
            direction="forward",
            eps=self.eps,
            increment=increment,
        )

    def log_density(
        self,
        x: Tensor,
        *,
        iteration: int | None = None,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        t0: float | None = None,
        batch_size: int | None = None,
    ) -> Tensor:
        r"""Log-density by the bridge's probability-flow ODE, uniform base.

        :func:`pipeline.likelihood.pf_ode_logp` of the Brownian reference with
        :meth:`effective_score_fn`: velocity :math:`\tfrac12(F_k - B_k)` in forward time from
        t0 to T, exact divergence; for iteration 1 (F = 0) this is the RSGM likelihood of b_1.

        Args:
            x: Tensor, shape (N, D), points on M (cast to the fields' dtype and device).
            iteration: k (None: the last).
            rtol: Relative tolerance of dopri5.
            atol: Absolute tolerance.
            t0: Data-side start time (None: :attr:`eps`).
            batch_size: Points per solve (None: all at once).

        Returns:
            Tensor, shape (N,), nats w.r.t. the Riemannian volume (fields' dtype, on
            :attr:`device`).
        """
        x = x.to(device=self.device, dtype=self.dtype or x.dtype)
        logp, _ = pf_ode_logp(
            self.effective_score_fn(iteration),
            self.process,
            x,
            rtol=rtol,
            atol=atol,
            t0=self.eps if t0 is None else float(t0),
            divergence="exact",
            batch_size=batch_size,
        )
        return logp
