"""The ambient denoising score models as model variants (no torch at import: the registry
and the params schema read these declarations in every stage)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipeline.variants.base import LossFn, NetworkVariant, ScoreFn

if TYPE_CHECKING:
    from torch import nn

    from pipeline.config.schema import Section
    from pipeline.geometry import Manifold
    from pipeline.sde.schedules import BetaSchedule

__all__ = ["AmbientNetworkVariant"]

_NAMES = ("ambient_raw", "ambient_rb", "ambient_rb_corrected")


class AmbientNetworkVariant(NetworkVariant):
    """An ambient denoising score model as a model variant (``ambient_raw``, ``ambient_rb``,
    ``ambient_rb_corrected``): the network sees the ambient point and σ, the loss is its target's
    DSM, and the score field is the tangent part at x, σ = √s(t) (plus the curvature correction
    for ``ambient_rb_corrected``, which evaluates the ``ambient_rb`` weights and is not trained).

    Config keys: ``manifold``, ``schedule``, ``network``, ``optim`` and ``loss``
    (``t_sampler``, ``eps``, ``weighting``).
    """

    manifolds = ("sphere", "so3")

    def __init__(self, name: str, trained_from: str = "") -> None:
        if name not in _NAMES:
            raise ValueError(f"unknown ambient variant {name!r}; expected one of {_NAMES}")
        self.name = name
        self.trained_from = trained_from or name
        self.fitted_by = "train" if self.trained_from == name else "derive"
        super().__init__()

    def schema(self) -> Section:
        from pipeline.config.params_schema import AMBIENT_LOSS, network_model_schema
        from pipeline.config.schema import Section

        if self.fitted_by != "train":
            return super().schema()
        return Section({**network_model_schema().fields, "loss": AMBIENT_LOSS})

    def build_network(self, config: Mapping[str, Any], manifold: Manifold) -> nn.Module:
        from pipeline.ambient.models import build_ambient_model

        return build_ambient_model(self.name, manifold, dict(config.get("network", {})))

    def build_loss(
        self, config: Mapping[str, Any], manifold: Manifold, schedule: BetaSchedule
    ) -> LossFn:
        from pipeline.ambient.models import make_ambient_loss

        return make_ambient_loss(self.name, dict(config.get("loss", {})), manifold, schedule)

    def score_field(self, net: nn.Module, manifold: Manifold, schedule: BetaSchedule) -> ScoreFn:
        from pipeline.ambient.models import AmbientScoreModel, ambient_score_field

        if not isinstance(net, AmbientScoreModel):
            raise TypeError(
                f"model {self.name!r} needs an AmbientScoreModel, got {type(net).__name__}"
            )
        return ambient_score_field(net, self.name, manifold, schedule)
