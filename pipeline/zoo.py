"""The model variants of geosgm, built from plain config dicts.

One place maps a model name to its network, its training loss and the score field that the
sampler and the likelihood use:

| name | network input | training target | score field at heat time s |
|---|---|---|---|
| ``rsgm`` | x ∈ M, t | exact heat-kernel score (DSM) | P_x net(x, t) |
| ``ambient_raw`` | X = Z + σξ, σ | (Z − X)/σ² | tangent part at x, σ = √s |
| ``ambient_rb`` | π(X), σ | P_{π(X)}(Z − X)/σ² | tangent part at x, σ = √s |
| ``ambient_rb_corrected`` | ``ambient_rb`` weights | (not retrained) | ŝ − σ²(½W_H − Ric♯)ŝ |

A config dict has the keys ``manifold`` (``{"name": "sphere", "dim": 2}``), ``schedule``
(see :func:`pipeline.sde.make_schedule`), ``network`` (:class:`pipeline.models.MLPConfig`
fields), ``loss`` and, for ``rsgm``, ``score_scaling`` (``"none"``, or ``"inv_std"``: the
network output is divided by √s(t) so that it stays O(1) where the score is ~1/√s).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from pipeline.geometry import Euclidean, FlatTorus, Manifold, Sphere
from pipeline.kinds import MODEL_KINDS, TRAINED_FROM, check_kind
from pipeline.sde.schedules import BetaSchedule, make_schedule

# Serialises seeded initialisation (see build_network).
_INIT_LOCK = threading.RLock()

__all__ = [
    "MODEL_KINDS",
    "TRAINED_FROM",
    "build_loss",
    "build_manifold",
    "build_network",
    "build_schedule",
    "check_kind",
    "score_field",
]

ScoreFn = Callable[[Tensor, Tensor], Tensor]
LossFn = Callable[..., Tensor]


def build_manifold(cfg: Mapping[str, Any] | None) -> Manifold:
    """Manifold from ``{"name": "sphere"|"torus"|"euclidean", "dim": int}`` (default S²).

    Raises:
        ValueError: On an unknown name.
    """
    cfg = dict(cfg or {"name": "sphere", "dim": 2})
    name = str(cfg.get("name", "sphere"))
    dim = int(cfg.get("dim", 2))
    if name == "sphere":
        return Sphere(dim)
    if name == "torus":
        return FlatTorus(dim)
    if name == "euclidean":
        return Euclidean(dim)
    raise ValueError(f"unknown manifold {name!r}; known: sphere, torus, euclidean")


def build_schedule(cfg: Mapping[str, Any]) -> BetaSchedule:
    """β schedule from its config (see :func:`pipeline.sde.make_schedule`)."""
    return make_schedule(dict(cfg))


def build_network(
    kind: str, cfg: Mapping[str, Any], manifold: Manifold, seed: int | None = None
) -> nn.Module:
    """The trainable module of a model variant.

    Args:
        kind: A name of :data:`MODEL_KINDS`.
        cfg: Model config (uses ``network``).
        manifold: The manifold.
        seed: If given, the initial weights are drawn after ``torch.manual_seed(seed)``,
            under a lock: seeds built on threads of one process must not interleave draws
            from torch's global generator, or the weights would depend on the task runner.

    Returns:
        The module whose weights the trainer optimises and the checkpoints hold.
    """
    if seed is not None:
        with _INIT_LOCK:
            torch.manual_seed(seed)
            return build_network(kind, cfg, manifold)
    kind = check_kind(kind)
    network = dict(cfg.get("network", {}))
    if kind == "rsgm":
        from pipeline.models import build_score_model

        scaling = str(cfg.get("score_scaling", "none"))
        if scaling not in ("none", "inv_std"):
            raise ValueError(f"score_scaling must be 'none' or 'inv_std', got {scaling!r}")
        schedule = build_schedule(cfg["schedule"]) if scaling == "inv_std" else None
        return build_score_model(manifold, network, schedule)
    from pipeline.ambient.models import build_ambient_model

    return build_ambient_model(kind, manifold, network)


def build_loss(
    kind: str, cfg: Mapping[str, Any], manifold: Manifold, schedule: BetaSchedule
) -> LossFn:
    """Training loss ``loss_fn(model, x0 (B, D), generator) -> scalar`` of a variant.

    Raises:
        ValueError: For ``ambient_rb_corrected``, which is never trained.
    """
    kind = check_kind(kind)
    loss_cfg = dict(cfg.get("loss", {}))
    if kind == "rsgm":
        from pipeline.losses import make_rsgm_loss

        return make_rsgm_loss(loss_cfg, manifold, schedule)
    if kind == "ambient_rb_corrected":
        raise ValueError("ambient_rb_corrected is not trained: it reuses the ambient_rb weights")
    from pipeline.ambient.models import make_ambient_loss

    return make_ambient_loss(kind, loss_cfg, manifold, schedule)


def score_field(kind: str, net: nn.Module, manifold: Manifold, schedule: BetaSchedule) -> ScoreFn:
    """The Riemannian score field ``score_fn(x (B, D), t (B,)) -> (B, D)`` of a trained model.

    Args:
        kind: A name of :data:`MODEL_KINDS`.
        net: The trained module (from :func:`build_network` with the checkpoint loaded).
        manifold: The manifold.
        schedule: β schedule (ambient models are queried at σ = √s(t)).

    Returns:
        A callable, differentiable in x.
    """
    kind = check_kind(kind)
    if kind == "rsgm":
        return net
    from pipeline.ambient.models import AmbientScoreModel, ambient_score_field

    if not isinstance(net, AmbientScoreModel):
        raise TypeError(f"model {kind!r} needs an AmbientScoreModel, got {type(net).__name__}")
    return ambient_score_field(net, kind, manifold, schedule)
