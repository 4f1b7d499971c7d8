"""Noise-conditional ambient score models (seed 002) and their use as Riemannian score fields.

Three variants, trained with the RSGM trainer (``loss_fn(model, x0, generator)``):

* ``ambient_raw``: network input the noisy ambient point X and σ; regression target
  :math:`(Z - X)/\\sigma^2`. Parameterised as :math:`\\hat s(X, \\sigma) = \\mathrm{net}(X,
  c(\\sigma))/\\sigma`
  (noise prediction: with the default σ²-weighting the loss is :math:`\\tfrac12|\\mathrm{net} +
  \\xi|^2`).
* ``ambient_rb``: input :math:`\\pi(X)` and σ; target the Rao-Blackwellized tangent vector
  :math:`P_{\\pi(X)}(Z - X)/\\sigma^2`. Parameterised as
  :math:`\\hat s(y, \\sigma) = P_y\\, \\mathrm{net}(y, c(\\sigma))` (O(1) output: its regression
  function :math:`r_\\sigma` is O(1) although the target has variance :math:`d/\\sigma^2`).
* ``ambient_rb_corrected``: the ``ambient_rb`` weights, with the post-hoc curvature correction
  :math:`\\hat s - \\sigma^2(\\tfrac12W_H - \\mathrm{Ric}^\\sharp)\\hat s = (1 - c\\sigma^2)\\hat
  s` applied
  at use, c = ``manifold.curvature_operator_coeff`` (zero on S², so identical to ``ambient_rb``
  there).

Noise levels follow the RSGM heat times: t is drawn like the RSGM t-sampler on [eps, T] and
:math:`\\sigma = \\sqrt{s(t)}`. The network is conditioned on :math:`c(\\sigma) =
\\tfrac14\\log\\sigma`
(EDM's noise conditioning; in about [-1.7, 0.1] for σ from 1e-3 to 1.5), not on t, so a trained
model does not depend on the schedule it was trained with.

For sampling and likelihood, :class:`AmbientScoreField` turns a model into
``score_fn(x, t)``: at heat time s = s(t) it evaluates the model at σ = √s on the manifold point
x and returns the tangent part (they agree with :math:`\\nabla_M \\log p_s` to first order in s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn

from pipeline.ambient.targets import add_ambient_noise, raw_target, rb_target
from pipeline.geometry.manifold import Manifold
from pipeline.losses import TimeSampler, Weighting, loss_weight
from pipeline.models.mlp import MLP, MLPConfig
from pipeline.sde.schedules import BetaSchedule

AmbientVariant = Literal["ambient_raw", "ambient_rb", "ambient_rb_corrected"]
AmbientTarget = Literal["raw", "rb"]
AMBIENT_VARIANTS: tuple[str, ...] = ("ambient_raw", "ambient_rb", "ambient_rb_corrected")
LossFn = Callable[[nn.Module, Tensor, torch.Generator], Tensor]

_LOSS_KEYS = {"t_sampler", "eps", "weighting"}


def variant_target(variant: str) -> AmbientTarget:
    """Which regression target a variant is trained on.

    Args:
        variant: One of :data:`AMBIENT_VARIANTS`.

    Returns:
        ``"raw"`` or ``"rb"``.

    Raises:
        ValueError: On an unknown variant.
    """
    if variant == "ambient_raw":
        return "raw"
    if variant in ("ambient_rb", "ambient_rb_corrected"):
        return "rb"
    raise ValueError(f"unknown ambient variant {variant!r}; expected one of {AMBIENT_VARIANTS}")


def noise_condition(sigma: Tensor) -> Tensor:
    """Network conditioning input :math:`c(\\sigma) = \\tfrac14\\log\\sigma`.

    Args:
        sigma: Tensor, shape (B,), noise levels > 0.

    Returns:
        Tensor, shape (B,).
    """
    return 0.25 * torch.log(sigma)


class AmbientScoreModel(nn.Module):
    """Noise-conditional ambient score model :math:`(x, \\sigma) \\mapsto \\hat s` (see module
    docstring).

    Args:
        net: Module mapping (x (B, D), c (B,)) to (B, D), e.g. :class:`pipeline.models.mlp.MLP`.
        manifold: The embedded manifold (π = ``projx``, tangent projector ``proju``).
        target: ``"raw"`` (input X, ambient output net/σ) or ``"rb"`` (input π(X), output
            :math:`P_{\\pi(X)}` net/σ).

    Raises:
        ValueError: On an unknown target.
    """

    def __init__(self, net: nn.Module, manifold: Manifold, target: AmbientTarget) -> None:
        super().__init__()
        if target not in ("raw", "rb"):
            raise ValueError(f"ambient target must be 'raw' or 'rb', got {target!r}")
        self.net = net
        self.manifold = manifold
        self.target: AmbientTarget = target

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        """Evaluate the model.

        Args:
            x: Tensor, shape (B, D): noisy ambient points (``raw``) or points on M (``rb``; any
                ambient point is first projected with π).
            sigma: Tensor, shape (B,) or scalar, noise levels > 0.

        Returns:
            Tensor, shape (B, D): the ambient score estimate (``raw``) or a tangent vector at
            π(x) (``rb``).
        """
        if sigma.dim() == 0:
            sigma = sigma.expand(x.shape[0])
        sigma = sigma.to(x.dtype)
        cond = noise_condition(sigma)
        if self.target == "raw":
            return self.net(x, cond) / sigma[:, None]
        y = self.manifold.projx(x)
        # Divided by σ like the raw model: the RB target's mean is ~1/σ near sharp data, and the
        # network output stays O(1) (preconditioning; same as the rsgm score_scaling).
        return self.manifold.proju(y, self.net(y, cond)) / sigma[:, None]


def build_ambient_model(
    variant: str, manifold: Manifold, cfg: MLPConfig | dict[str, Any]
) -> AmbientScoreModel:
    """MLP-based ambient model for a variant.

    Args:
        variant: One of :data:`AMBIENT_VARIANTS`.
        manifold: The manifold (``ambient_dim`` sets the input/output size).
        cfg: :class:`pipeline.models.mlp.MLPConfig` or dict of its fields.

    Returns:
        The model (``ambient_rb`` and ``ambient_rb_corrected`` build the same network).
    """
    D = int(manifold.ambient_dim)
    return AmbientScoreModel(MLP.from_config(D, D, cfg), manifold, variant_target(variant))


def make_ambient_loss(
    kind: str, cfg: dict[str, Any], manifold: Manifold, schedule: BetaSchedule
) -> LossFn:
    """Ambient DSM loss for the trainer, ``loss_fn(model, x0 (B, D), generator) -> scalar``.

    Draws t from the RSGM t-sampler on [eps, T], sets :math:`\\sigma = \\sqrt{s(t)}`, corrupts
    :math:`X = x_0 + \\sigma\\xi` and returns
    :math:`\\mathrm{mean}\\,\\tfrac12\\lambda(t)|\\hat s - \\mathrm{target}|^2` with λ as in
    :func:`pipeline.losses.loss_weight` (default ``"variance"``: λ = s = σ²).

    Config keys (optional): ``t_sampler`` (``"log_uniform"`` | ``"uniform"``, default
    log_uniform), ``eps`` (default 1e-3), ``weighting`` (``"variance"`` | ``"likelihood"`` |
    ``"none"``, default variance).

    Args:
        kind: Variant name (``ambient_rb_corrected`` trains exactly like ``ambient_rb``).
        cfg: The config.
        manifold: The manifold.
        schedule: β schedule (heat times s(t)).

    Returns:
        The loss function; its model must be an :class:`AmbientScoreModel` of the matching target.

    Raises:
        ValueError: On unknown keys or an unknown variant.
    """
    unknown = set(cfg) - _LOSS_KEYS
    if unknown:
        raise ValueError(
            f"unknown ambient loss keys {sorted(unknown)}; known: {sorted(_LOSS_KEYS)}"
        )
    target = variant_target(kind)
    t_sampler = TimeSampler(
        cfg.get("t_sampler", "log_uniform"), float(cfg.get("eps", 1e-3)), float(schedule.T)
    )
    weighting: Weighting = cfg.get("weighting", "variance")

    def loss_fn(model: nn.Module, x0: Tensor, generator: torch.Generator) -> Tensor:
        if not isinstance(model, AmbientScoreModel) or model.target != target:
            raise TypeError(f"loss for {kind!r} needs an AmbientScoreModel with target {target!r}")
        t = t_sampler.sample(x0.shape[0], generator, device=x0.device, dtype=x0.dtype)
        s = schedule.heat_time(t)
        sigma = torch.sqrt(s)
        with torch.no_grad():
            x = add_ambient_noise(x0, sigma, generator)
            if target == "raw":
                inp, tgt = x, raw_target(x0, x, sigma)
            else:
                inp, tgt = rb_target(manifold, x0, x, sigma)
        pred = model(inp, sigma)
        lam = loss_weight(t, schedule, t_sampler, weighting)
        return 0.5 * (lam * (pred - tgt).pow(2).sum(-1)).mean()

    return loss_fn


class AmbientScoreField:
    """Riemannian score field ``score_fn(x, t)`` from an ambient model, at σ = √s(t).

    ``raw`` models are evaluated at the manifold point x itself (X = x) and their output is
    projected onto :math:`T_xM`; ``rb`` models are evaluated at x (= π(x)). With
    ``corrected=True`` the output is multiplied by :math:`1 - c\\sigma^2`,
    c = ``manifold.curvature_operator_coeff`` (the seed's post-hoc correction; it is derived for
    the RB target: on the raw model's tangent part at x the extrinsic term is absent to first order,
    see the ``geometry`` stage report).

    Args:
        net: A trained :class:`AmbientScoreModel`.
        manifold: The manifold.
        schedule: β schedule giving s(t).
        corrected: Apply the post-hoc curvature correction.
        sigma_min: Lower clamp of σ (the raw model divides by σ; t = 0 would give σ = 0).
    """

    def __init__(
        self,
        net: AmbientScoreModel,
        manifold: Manifold,
        schedule: BetaSchedule,
        corrected: bool,
        sigma_min: float = 1e-4,
    ) -> None:
        self.net = net
        self.manifold = manifold
        self.schedule = schedule
        self.corrected = bool(corrected)
        self.sigma_min = float(sigma_min)

    def sigma(self, t: Tensor) -> Tensor:
        """Noise level :math:`\\sqrt{s(t)}`, clamped below at ``sigma_min``.

        Args:
            t: Tensor, shape (B,).

        Returns:
            Tensor, shape (B,).
        """
        return torch.sqrt(self.schedule.heat_time(t)).clamp_min(self.sigma_min)

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        """Tangent score at heat time s(t).

        Args:
            x: Tensor, shape (B, D), points on M.
            t: Tensor, shape (B,) or scalar.

        Returns:
            Tensor, shape (B, D), tangent vectors at x.
        """
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        sigma = self.sigma(t.to(x.dtype))
        out = self.manifold.proju(x, self.net(x, sigma))
        if self.corrected:
            c = float(self.manifold.curvature_operator_coeff)
            out = (1.0 - c * sigma * sigma)[:, None] * out
        return out


def ambient_score_field(
    model: AmbientScoreModel, variant: str, manifold: Manifold, schedule: BetaSchedule
) -> AmbientScoreField:
    """The score field of a trained variant (``ambient_rb_corrected`` gets the correction).

    Args:
        model: Trained model (its target must match the variant).
        variant: One of :data:`AMBIENT_VARIANTS`.
        manifold: The manifold.
        schedule: β schedule.

    Returns:
        The field.

    Raises:
        ValueError: If the model's target does not match the variant.
    """
    if model.target != variant_target(variant):
        raise ValueError(
            f"model has target {model.target!r}, "
            f"variant {variant!r} needs {variant_target(variant)!r}"
        )
    return AmbientScoreField(model, manifold, schedule, corrected=variant == "ambient_rb_corrected")
