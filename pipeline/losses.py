r"""RSGM training losses: denoising (DSM) and implicit (ISM) score matching on a manifold.

Every loss returned by :func:`make_rsgm_loss` has the trainer's signature
``loss_fn(model, x0 (B, D), generator) -> scalar`` where ``model(x, t)`` is a tangent score field.

Weighting :math:`\lambda(t)` (``weighting``), with t drawn from a density q on [eps, T]:

* ``"variance"`` (default): :math:`\lambda = s(t)`, the heat time, i.e. the noise variance. The
  conditional score has :math:`|\nabla\log p_{s}(x_t|x_0)|^2 \approx d/s`, so every t
  contributes O(1). Combined with log-uniform t (q ∝ 1/t) it is within a factor 2 of likelihood
  weighting, since :math:`\beta(t)\,t \approx s(t)` for small t.
* ``"likelihood"``: :math:`\lambda = \beta(t)/q(t)`, which makes the DSM loss an unbiased
  estimate of the score-matching part of the KL bound
  :math:`\tfrac12\int\beta(t)E|s_\theta - \nabla\log p_t|^2dt` (up to a constant).
* ``"none"``: :math:`\lambda = 1`.

The loss is :math:`E[\tfrac12\lambda(t)|s_\theta(x_t,t) - \mathrm{target}|^2]` (DSM) or
:math:`E[\lambda(t)(\tfrac12|s_\theta|^2 + \mathrm{div}_M s_\theta)]` (ISM; equal to DSM up to
a constant, hence possibly negative).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from pipeline.geometry.manifold import Manifold
from pipeline.models.divergence import DivergenceMethod, manifold_divergence
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.process import ForwardProcess
from pipeline.sde.schedules import BetaSchedule
from pipeline.transition import (
    NoiseSampler,
    ScoreTarget,
    Target,
    exact_score_fn,
    has_heat_kernel,
    is_bm_exact,
    make_noise_sampler,
    make_score_target,
)

TimeSamplerKind = Literal["uniform", "log_uniform"]
Weighting = Literal["variance", "likelihood", "none"]
LossFn = Callable[[nn.Module, Tensor, torch.Generator], Tensor]


@dataclass(frozen=True)
class TimeSampler:
    r"""Distribution of the diffusion time t on [eps, T].

    Attributes:
        kind: ``"uniform"`` or ``"log_uniform"`` (density :math:`1/(t\log(T/eps))`).
        eps: Smallest time (> 0 for ``"log_uniform"``).
        T: Largest time.
    """

    kind: TimeSamplerKind = "log_uniform"
    eps: float = 1e-3
    T: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("uniform", "log_uniform"):
            raise ValueError(f"t-sampler must be 'uniform' or 'log_uniform', got {self.kind!r}")
        if not 0.0 <= self.eps < self.T:
            raise ValueError(f"need 0 <= eps < T, got eps={self.eps}, T={self.T}")
        if self.kind == "log_uniform" and self.eps <= 0.0:
            raise ValueError("log_uniform t-sampler needs eps > 0")

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Draw n times.

        Args:
            n: Number of draws.
            generator: Random generator (on ``device``).
            device: Device of the result.
            dtype: Dtype of the result.

        Returns:
            Tensor, shape (n,), values in [eps, T].
        """
        u = torch.rand(n, generator=generator, device=device, dtype=dtype)
        if self.kind == "uniform":
            return self.eps + (self.T - self.eps) * u
        return self.eps * torch.exp(u * math.log(self.T / self.eps))

    def density(self, t: Tensor) -> Tensor:
        """Density q(t) of the sampler.

        Args:
            t: Tensor of times in [eps, T], any shape.

        Returns:
            Tensor, same shape.
        """
        if self.kind == "uniform":
            return torch.full_like(t, 1.0 / (self.T - self.eps))
        return 1.0 / (t * math.log(self.T / self.eps))


def loss_weight(
    t: Tensor, schedule: BetaSchedule, t_sampler: TimeSampler, weighting: Weighting
) -> Tensor:
    r"""Weight :math:`\lambda(t)` of the score-matching loss (see the module docstring).

    Args:
        t: Tensor, shape (B,).
        schedule: β schedule.
        t_sampler: The sampler t was drawn from.
        weighting: ``"variance"``, ``"likelihood"`` or ``"none"``.

    Returns:
        Tensor, shape (B,).

    Raises:
        ValueError: On an unknown weighting.
    """
    if weighting == "variance":
        return schedule.heat_time(t)
    if weighting == "likelihood":
        return schedule.beta(t) / t_sampler.density(t)
    if weighting == "none":
        return torch.ones_like(t)
    raise ValueError(f"weighting must be 'variance', 'likelihood' or 'none', got {weighting!r}")


def dsm_loss(
    model: nn.Module,
    x0: Tensor,
    schedule: BetaSchedule,
    sampler: NoiseSampler,
    t_sampler: TimeSampler,
    generator: torch.Generator,
    *,
    manifold: Manifold | None = None,
    weighting: Weighting = "variance",
    target: Literal["exact", "varadhan"] | ScoreTarget = "exact",
) -> Tensor:
    r"""Denoising score matching loss.

    Draws t ~ ``t_sampler``, :math:`x_t \sim p_{s(t)}(\cdot | x_0)` with ``sampler`` and regresses
    ``model(x_t, t)`` on the conditional score: the exact heat-kernel score
    :math:`\nabla_x \log p_s(x_t|x_0)` (``"exact"``, S² and SO(3)), Varadhan's small-time
    approximation :math:`\log_{x_t}(x_0)/s` (``"varadhan"``, any manifold, needs ``manifold``)
    or any :data:`pipeline.transition.ScoreTarget` (e.g. the tabulated heat-kernel score of
    :func:`pipeline.transition.make_score_target`).

    Args:
        model: Score field, ``model(x (B, D), t (B,)) -> (B, D)`` tangent vectors.
        x0: Tensor, shape (B, D), data points on the manifold.
        schedule: β schedule (gives s(t) and β(t)).
        sampler: Draws Brownian motion at heat time s from x0.
        t_sampler: Distribution of t.
        generator: Random generator on x0's device.
        manifold: Needed for the Varadhan target (its ``logmap``) and for the exact one off S²
            (``None`` means S²).
        weighting: Loss weighting λ(t).
        target: ``"exact"``, ``"varadhan"`` or a callable ``(x_t, x0, s) -> (B, D)``.

    Returns:
        Scalar tensor, :math:`\mathrm{mean}_B\, \tfrac12\lambda(t)|s_\theta - \mathrm{target}|^2`.

    Raises:
        ValueError: On an unknown target or a missing manifold.
    """
    t = t_sampler.sample(x0.shape[0], generator, device=x0.device, dtype=x0.dtype)
    s = schedule.heat_time(t)
    with torch.no_grad():
        xt = sampler(x0, s, generator)
        if callable(target):
            tgt = target(xt, x0, s)
        elif target == "exact":
            tgt = exact_score_fn(manifold)(xt, x0, s)
        elif target == "varadhan":
            if manifold is None:
                raise ValueError("the Varadhan target needs the manifold (for logmap)")
            tgt = manifold.logmap(xt, x0) / s[:, None]
        else:
            raise ValueError(
                f"DSM target must be 'exact', 'varadhan' or a callable, got {target!r} "
                "('tabulated' is built by pipeline.transition.make_score_target)"
            )
    pred = model(xt, t)
    lam = loss_weight(t, schedule, t_sampler, weighting)
    return 0.5 * (lam * (pred - tgt).pow(2).sum(-1)).mean()


def ism_loss(
    model: nn.Module,
    x0: Tensor,
    schedule: BetaSchedule,
    sampler: NoiseSampler,
    t_sampler: TimeSampler,
    generator: torch.Generator,
    *,
    manifold: Manifold,
    weighting: Weighting = "variance",
    divergence: DivergenceMethod = "exact",
) -> Tensor:
    r"""Implicit score matching loss :math:`E[\lambda(\tfrac12|s|^2 + \mathrm{div}_M s)]`.

    The divergence is the Riemannian one, :math:`\mathrm{tr}(P_x \partial s_\theta/\partial x)`,
    exact (D backward passes) or Hutchinson (one pass, tangent Gaussian probe); see
    :func:`pipeline.models.divergence.manifold_divergence`.

    Args:
        model: Score field, ``model(x (B, D), t (B,)) -> (B, D)`` tangent vectors.
        x0: Tensor, shape (B, D), data points.
        schedule: β schedule.
        sampler: Draws Brownian motion at heat time s from x0.
        t_sampler: Distribution of t.
        generator: Random generator on x0's device.
        manifold: The manifold (tangent projector).
        weighting: Loss weighting λ(t).
        divergence: ``"exact"`` or ``"hutchinson"``.

    Returns:
        Scalar tensor.
    """
    t = t_sampler.sample(x0.shape[0], generator, device=x0.device, dtype=x0.dtype)
    s = schedule.heat_time(t)
    with torch.no_grad():
        xt = sampler(x0, s, generator)
    v, div = manifold_divergence(
        lambda x: model(x, t),
        xt,
        manifold,
        method=divergence,
        generator=generator,
        create_graph=True,
    )
    lam = loss_weight(t, schedule, t_sampler, weighting)
    return (lam * (0.5 * v.pow(2).sum(-1) + div)).mean()


_LOSS_KEYS = {
    "kind",
    "target",
    "t_sampler",
    "eps",
    "weighting",
    "sampler",
    "grw_steps",
    "divergence",
}


def make_rsgm_loss(cfg: dict[str, Any], process: ForwardProcess) -> LossFn:
    """Build the trainer's loss function from a plain config dict.

    Keys (all optional): ``kind`` ``"dsm"`` | ``"ism"`` (default dsm for Brownian motion, ism
    otherwise: DSM needs the transition's score, which only Brownian motion has);
    ``target`` ``"exact"`` | ``"tabulated"`` (S²) | ``"varadhan"`` (DSM; default exact on
    S² and SO(3), else varadhan; see :func:`pipeline.transition.make_score_target`);
    ``t_sampler`` ``"log_uniform"`` | ``"uniform"`` (default log_uniform); ``eps`` (default
    1e-3); ``weighting`` ``"variance"`` | ``"likelihood"`` | ``"none"`` (default variance);
    ``sampler`` ``"exact"`` | ``"grw"`` (default exact for Brownian motion on S² and SO(3),
    else grw);
    ``grw_steps`` (default 20); ``divergence`` ``"exact"`` | ``"hutchinson"`` (ISM; default
    exact).

    Args:
        cfg: The config.
        process: The forward process (its manifold and β schedule).

    Returns:
        ``loss_fn(model, x0 (B, D), generator) -> scalar``.

    Raises:
        ValueError: On unknown keys or values.
    """
    unknown = set(cfg) - _LOSS_KEYS
    if unknown:
        raise ValueError(f"unknown loss config keys {sorted(unknown)}; known: {sorted(_LOSS_KEYS)}")
    manifold, schedule = process.manifold, process.schedule
    exact_ok = has_heat_kernel(manifold)
    brownian = isinstance(process, BrownianMotion)
    kind = cfg.get("kind", "dsm" if brownian else "ism")
    eps = float(cfg.get("eps", 1e-3))
    t_sampler = TimeSampler(cfg.get("t_sampler", "log_uniform"), eps, float(schedule.T))
    weighting: Weighting = cfg.get("weighting", "variance")
    sampler = make_noise_sampler(
        process,
        cfg.get("sampler", "exact" if is_bm_exact(process) else "grw"),
        grw_steps=int(cfg.get("grw_steps", 20)),
        eps=eps,
    )
    if kind == "dsm":
        if not brownian:
            raise ValueError(
                f"DSM needs the transition density's score, which {process!r} does not have in "
                "closed form; use loss kind: ism"
            )
        target: Target = cfg.get("target", "exact" if exact_ok else "varadhan")
        score_target = make_score_target(process, target, eps=eps)

        def dsm_fn(model: nn.Module, x0: Tensor, generator: torch.Generator) -> Tensor:
            return dsm_loss(
                model,
                x0,
                schedule,
                sampler,
                t_sampler,
                generator,
                manifold=manifold,
                weighting=weighting,
                target=score_target,
            )

        return dsm_fn
    if kind == "ism":
        divergence: DivergenceMethod = cfg.get("divergence", "exact")

        def ism_fn(model: nn.Module, x0: Tensor, generator: torch.Generator) -> Tensor:
            return ism_loss(
                model,
                x0,
                schedule,
                sampler,
                t_sampler,
                generator,
                manifold=manifold,
                weighting=weighting,
                divergence=divergence,
            )

        return ism_fn
    raise ValueError(f"loss kind must be 'dsm' or 'ism', got {kind!r}")
