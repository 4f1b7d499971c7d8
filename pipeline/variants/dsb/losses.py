r"""The losses of a diffusion Schrödinger bridge (DSB) on a manifold, for the IPF half-steps.

Conventions (forward time t ∈ [eps, T], generator ½β(t)Δ of the Brownian reference): the
forward process is :math:`dX = F\,dt + \sqrt\beta\,dB`, the backward drift is
:math:`B = -F + \beta\nabla\log p_t` (Nelson: :math:`F + B = \beta\nabla\log p_t`), and both are
β times a tangent "score-like" field: :math:`F = \beta f_\theta`, :math:`B = \beta b_\phi`.

**Implicit (divergence-form) loss.** Given a process with drift F and marginals :math:`p_t`,

.. math:: b(t,\cdot) = \arg\min_r E_{x\sim p_t}\big[\tfrac12|r(x) + f(t, x)|^2
          + \mathrm{div}_M r(x)\big],

since by the divergence theorem :math:`E[\mathrm{div}_M r] = -E[r\cdot\nabla\log p_t]`, so the
objective is :math:`\tfrac12 E|r - (\nabla\log p_t - f)|^2` plus a constant. It is the seed's
:math:`E[\tfrac12|F + B|^2 + g^2\,\mathrm{div} B]` divided by β². With f = 0 it is implicit
score matching (:func:`pipeline.losses.ism_loss`, term for term), and the forward field given a
backward process is the same loss with the roles swapped. It is weighted by
:func:`pipeline.losses.loss_weight` λ(t) as the RSGM losses are.

**Mean matching** (DSB's original regression, the baseline) is derived in
:func:`mean_matching_target`.

Trainer rows: :func:`make_implicit_loss` trains on cached marginal states, rows
``[x (D), t]``; :func:`make_mean_matching_loss` on cached steps, rows
``[x_k (D), t_k, x_{k+1} (D), t_{k+1}]`` (forward-time order, whichever way the walk ran);
both have the trainer's signature ``loss_fn(model, rows, generator) -> scalar``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

from pipeline.geometry.manifold import Manifold
from pipeline.geometry.sphere import Sphere
from pipeline.losses import TimeSampler, Weighting, loss_weight
from pipeline.models.divergence import manifold_divergence
from pipeline.sde.schedules import BetaSchedule

__all__ = [
    "Field",
    "implicit_loss",
    "make_implicit_loss",
    "make_mean_matching_loss",
    "mean_matching_loss",
    "mean_matching_target",
    "transport",
]

Field = Callable[[Tensor, Tensor], Tensor]
"""A score-like field ``field(x (B, D), t (B,)) -> (B, D)`` tangent at x (the drift over β)."""
RowsLoss = Callable[[nn.Module, Tensor, torch.Generator], Tensor]


def transport(manifold: Manifold, x: Tensor, y: Tensor, v: Tensor) -> Tensor:
    r"""Move tangent vectors at x to the tangent space at y, along the geodesic on a sphere.

    On :math:`S^d` this is the parallel transport along the minimising geodesic,
    :math:`\tau v = v - \frac{\langle y, v\rangle}{1 + \langle x, y\rangle}(x + y)` (an
    isometry that maps :math:`\log_x y` to :math:`-\log_y x`); on other manifolds the tangent
    projection :math:`P_y v`, which agrees with it to :math:`O(|v|\,d(x, y)^2)`, below the
    order of the mean-matching approximation.

    Args:
        manifold: The manifold.
        x: Tensor, shape (B, D), start points.
        y: Tensor, shape (B, D), end points (not antipodal to x).
        v: Tensor, shape (B, D), tangent vectors at x.

    Returns:
        Tensor, shape (B, D), tangent vectors at y.
    """
    if isinstance(manifold, Sphere):
        c = (x * y).sum(-1, keepdim=True)
        coef = (y * v).sum(-1, keepdim=True) / (1.0 + c).clamp_min(1e-12)
        return v - coef * (x + y)
    return manifold.proju(y, v)


def implicit_loss(
    model: nn.Module | Field,
    other: Field | None,
    x: Tensor,
    t: Tensor,
    *,
    manifold: Manifold,
    schedule: BetaSchedule,
    t_sampler: TimeSampler,
    weighting: Weighting = "variance",
) -> Tensor:
    r"""Implicit loss :math:`E[\lambda(t)(\tfrac12|r + o|^2 + \mathrm{div}_M r)]` on (x, t) pairs.

    r = ``model`` is the field being fitted, o = ``other`` the frozen field of the process
    the points were drawn from (its forward field f when fitting the backward field b, or b
    when fitting f); ``other=None`` is the zero field, and then this is
    :func:`pipeline.losses.ism_loss` on the same (x, t) (the same operations in the same order,
    so the same value). The divergence is exact (D backward passes).

    Args:
        model: ``model(x (B, D), t (B,)) -> (B, D)`` tangent field, differentiable in x.
        other: The frozen field (evaluated without gradient), or None for zero.
        x: Tensor, shape (B, D), points on M, draws of the marginal at their times.
        t: Tensor, shape (B,), their times in [eps, T].
        manifold: The manifold (tangent projector of the divergence).
        schedule: β schedule (the weighting).
        t_sampler: The law of t (its density enters the ``"likelihood"`` weighting).
        weighting: λ(t), see :func:`pipeline.losses.loss_weight`.

    Returns:
        Scalar tensor (it can be negative: equal to a squared error up to a constant).
    """
    v, div = manifold_divergence(
        lambda y: model(y, t), x, manifold, method="exact", create_graph=True
    )
    lam = loss_weight(t, schedule, t_sampler, weighting)
    if other is None:
        sq = v.pow(2).sum(-1)
    else:
        with torch.no_grad():
            o = other(x.detach(), t)
        sq = (v + o).pow(2).sum(-1)
    return (lam * (0.5 * sq + div)).mean()


def _grid_sampler(schedule: BetaSchedule, eps: float) -> TimeSampler:
    """The law of the cached times: the walk's uniform grid on [eps, T]."""
    return TimeSampler("uniform", eps, float(schedule.T))


def make_implicit_loss(
    other: Field | None,
    manifold: Manifold,
    schedule: BetaSchedule,
    *,
    eps: float = 1e-3,
    weighting: Weighting = "variance",
    t_sampler: TimeSampler | None = None,
) -> RowsLoss:
    """The trainer's implicit loss on cached rows ``[x (D), t]`` (see :func:`implicit_loss`).

    Args:
        other: The frozen field of the simulated process (None: zero).
        manifold: The manifold.
        schedule: β schedule.
        eps: Smallest time (of the uniform default ``t_sampler``).
        weighting: λ(t).
        t_sampler: The law of the cached times (default uniform on [eps, T], the walk's grid).

    Returns:
        ``loss_fn(model, rows (B, D + 1), generator) -> scalar``.
    """
    sampler = _grid_sampler(schedule, eps) if t_sampler is None else t_sampler
    d = int(manifold.ambient_dim)

    def loss_fn(model: nn.Module, rows: Tensor, generator: torch.Generator) -> Tensor:
        x, t = _split_marginal(rows, d)
        return implicit_loss(
            model,
            other,
            x,
            t,
            manifold=manifold,
            schedule=schedule,
            t_sampler=sampler,
            weighting=weighting,
        )

    return loss_fn


def _split_marginal(rows: Tensor, d: int) -> tuple[Tensor, Tensor]:
    if rows.dim() != 2 or rows.shape[1] != d + 1:
        raise ValueError(f"marginal rows must have shape (B, {d + 1}), got {tuple(rows.shape)}")
    return rows[:, :d].contiguous(), rows[:, d].contiguous()


def mean_matching_target(
    other: Field | None,
    x_from: Tensor,
    t_from: Tensor,
    x_to: Tensor,
    t_to: Tensor,
    *,
    manifold: Manifold,
    schedule: BetaSchedule,
) -> Tensor:
    r"""Regression target of the reverse step's field at ``(x_to, t_to)`` (DSB mean matching).

    One simulated step went from :math:`(x_a, t_a)` to :math:`(x_c, t_c)` driven by the frozen
    score-like field o: :math:`x_c = \exp_{x_a}(u)`, :math:`u = \delta\,o(x_a, t_a) +
    \sqrt\delta Z`, δ the step's heat length :math:`|s(t_c) - s(t_a)|` (the walks of
    :func:`pipeline.variants.dsb.model.simulate`; :math:`\gamma\beta` to first order). The
    target for
    the field r of the opposite direction at :math:`(x_c, t_c)` is

    .. math:: \hat r = \frac{\log_{x_c} x_a}{\delta}
              + \tau_{a\to c}\,o(x_a, t_a) - o(x_c, t_a).

    Derivation. Euclidean DSB (De Bortoli et al. 2021, Prop. 3; generator Δ, step
    :math:`X_{k+1} = X_k + \gamma f(X_k) + \sqrt{2\gamma}Z`, maps :math:`F_k(x) = x + \gamma f(x)`,
    :math:`B_{k+1}(x) = x + \gamma b(x)`): :math:`B_{k+1}(x_{k+1}) \approx
    E[x_{k+1} + F_k(x_k) - F_k(x_{k+1}) \mid x_{k+1}]`, i.e. the target of :math:`\gamma b` is
    :math:`(x_k - x_{k+1}) + \gamma(f(x_k) - f(x_{k+1}))`. Reason: :math:`x_k + \gamma f(x_k) =
    x_{k+1} - \sqrt{2\gamma}Z` and Tweedie's formula for the Gaussian step gives
    :math:`E[-\sqrt{2\gamma}Z \mid x_{k+1}] \approx 2\gamma\nabla\log p_{k+1}(x_{k+1})`, so the
    conditional mean is :math:`\gamma(2\nabla\log p_{k+1} - f)(x_{k+1}) = \gamma b(x_{k+1})`.
    On M with generator ½βΔ the drifts are :math:`F = \beta f`, :math:`B = \beta b` and a step
    has heat length δ (noise variance δ, drift :math:`\int F\,dt \approx \delta f`), so in heat
    units the Euclidean identity reads: target of :math:`\delta b` =
    :math:`(x_k - x_{k+1}) + \delta(f(x_k) - f(x_{k+1}))`. The difference
    :math:`x_k - x_{k+1}` becomes :math:`\log_{x_{k+1}} x_k \in T_{x_{k+1}}M` and
    :math:`f(x_k) \in T_{x_k}M` is moved to :math:`T_{x_{k+1}}M` by the parallel transport τ
    along the step's geodesic. Since the geodesic :math:`\sigma \mapsto \exp_{x_k}(\sigma u)`
    has parallel velocity, :math:`\log_{x_{k+1}} x_k = -\tau u` exactly, hence
    :math:`\log_{x_{k+1}} x_k + \delta\,\tau f(x_k) = -\sqrt\delta\,\tau Z`, whose mean given
    :math:`x_{k+1}` is :math:`\delta\nabla\log p_{k+1}(x_{k+1})` to leading order (the manifold
    Tweedie/Varadhan limit, as in DSM's Varadhan target). So the target of
    :math:`\delta b(x_{k+1}, t_{k+1})` is :math:`\log_{x_{k+1}} x_k + \delta(\tau f(x_k, t_k) -
    f(x_{k+1}, t_k))`, with conditional mean :math:`\delta(\nabla\log p_{k+1} - f)(x_{k+1}) +
    O(\delta^2)`, i.e. :math:`\delta b(x_{k+1}) + O(\delta^2)` (Nelson: :math:`b = \nabla\log p
    - f`); dividing by δ gives the formula above for r = b (a = k, c = k+1). The frozen field
    enters with a plus at the old point and a **minus** at the new one (the two nearly cancel:
    the leading :math:`-f(x_{k+1})` of b comes from the log term); for f = 0 the target is
    :math:`\log_{x_{k+1}}x_k/\delta`, the Varadhan DSM target over one step. For the forward
    field given the backward chain (a step from :math:`(y_{k+1}, t_{k+1})` to
    :math:`(y_k, t_k)` driven by b at :math:`t_{k+1}`) the same formula with a = k+1, c = k is
    DSB's :math:`F_k(y_k) \approx E[y_k + B_{k+1}(y_{k+1}) - B_{k+1}(y_k) \mid y_k]`. τ is
    :func:`transport`.

    Args:
        other: The frozen field o that drove the step (None: zero).
        x_from: Tensor, shape (B, D), :math:`x_a`.
        t_from: Tensor, shape (B,), :math:`t_a`.
        x_to: Tensor, shape (B, D), :math:`x_c`.
        t_to: Tensor, shape (B,), :math:`t_c` (≠ :math:`t_a`).
        manifold: The manifold (its ``logmap``).
        schedule: β schedule (the heat length δ).

    Returns:
        Tensor, shape (B, D), tangent vectors at ``x_to`` (no gradient).
    """
    with torch.no_grad():
        delta = (schedule.heat_time(t_to) - schedule.heat_time(t_from)).abs()
        target = manifold.logmap(x_to, x_from) / delta[:, None]
        if other is not None:
            moved = transport(manifold, x_from, x_to, other(x_from, t_from))
            target = target + (moved - other(x_to, t_from))
        return manifold.proju(x_to, target)


def mean_matching_loss(
    model: nn.Module | Field,
    other: Field | None,
    x_from: Tensor,
    t_from: Tensor,
    x_to: Tensor,
    t_to: Tensor,
    *,
    manifold: Manifold,
    schedule: BetaSchedule,
    t_sampler: TimeSampler,
    weighting: Weighting = "variance",
) -> Tensor:
    r"""Mean-matching loss :math:`E[\tfrac12\lambda(t_c)|r(x_c, t_c) - \hat r|^2]`.

    :math:`\hat r` is :func:`mean_matching_target`; see there for the arguments' roles.

    Returns:
        Scalar tensor.
    """
    target = mean_matching_target(
        other, x_from, t_from, x_to, t_to, manifold=manifold, schedule=schedule
    )
    pred = model(x_to, t_to)
    lam = loss_weight(t_to, schedule, t_sampler, weighting)
    return 0.5 * (lam * (pred - target).pow(2).sum(-1)).mean()


def make_mean_matching_loss(
    other: Field | None,
    learn: Literal["forward", "backward"],
    manifold: Manifold,
    schedule: BetaSchedule,
    *,
    eps: float = 1e-3,
    weighting: Weighting = "variance",
) -> RowsLoss:
    """The trainer's mean-matching loss on cached step rows ``[x_k, t_k, x_{k+1}, t_{k+1}]``.

    Args:
        other: The frozen field of the simulated chain (None: zero).
        learn: ``"backward"``: the rows are forward steps k → k+1 (driven by f at t_k) and b is
            fitted at (x_{k+1}, t_{k+1}); ``"forward"``: the rows are backward steps k+1 → k
            (driven by b at t_{k+1}) and f is fitted at (x_k, t_k).
        manifold: The manifold.
        schedule: β schedule.
        eps: Smallest time (of the uniform law of the cached times).
        weighting: λ(t).

    Returns:
        ``loss_fn(model, rows (B, 2D + 2), generator) -> scalar``.

    Raises:
        ValueError: On an unknown ``learn``.
    """
    if learn not in ("forward", "backward"):
        raise ValueError(f"learn must be 'forward' or 'backward', got {learn!r}")
    sampler = _grid_sampler(schedule, eps)
    d = int(manifold.ambient_dim)

    def loss_fn(model: nn.Module, rows: Tensor, generator: torch.Generator) -> Tensor:
        if rows.dim() != 2 or rows.shape[1] != 2 * d + 2:
            raise ValueError(f"step rows must have shape (B, {2 * d + 2}), got {tuple(rows.shape)}")
        x_k, t_k = rows[:, :d].contiguous(), rows[:, d].contiguous()
        x_n, t_n = rows[:, d + 1 : 2 * d + 1].contiguous(), rows[:, 2 * d + 1].contiguous()
        if learn == "backward":
            x_from, t_from, x_to, t_to = x_k, t_k, x_n, t_n
        else:
            x_from, t_from, x_to, t_to = x_n, t_n, x_k, t_k
        return mean_matching_loss(
            model,
            other,
            x_from,
            t_from,
            x_to,
            t_to,
            manifold=manifold,
            schedule=schedule,
            t_sampler=sampler,
            weighting=weighting,
        )

    return loss_fn
