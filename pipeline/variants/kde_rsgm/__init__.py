"""``kde_rsgm``: the validation-weighted mixture w·p_kde + (1 − w)·p_rsgm, w per seed.

Fitted by ``ensemble@<catalogue>-kde_rsgm`` on the members' stored per-event scores
(:mod:`pipeline.variants.kde_rsgm.mixture`); a seed folder holds a copy of each member's seed
folder and a model card ``{"members": [...], "weights": [...]}``. Its log-density is the
weighted log-sum-exp of its members' (each by its own method) and it is sampled by drawing the
member first.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.variants.base import TrainedModel, Variant
from pipeline.variants.kde_rsgm.mixture import choose_weight, mixture_logp

if TYPE_CHECKING:
    import torch

__all__ = ["VARIANT", "choose_weight", "mixture_logp"]


class MixtureVariant(Variant):
    """A mixture of two fitted variants; the first member gets weight w, the second 1 − w."""

    name = "kde_rsgm"
    fitted_by = "ensemble"
    members = ("kde", "rsgm")

    @staticmethod
    def choose_weight(val_a: Any, val_b: Any, n_grid: int = 101) -> tuple[float, float]:
        """The first member's weight with the lowest validation NLL (:func:`choose_weight`)."""
        return choose_weight(val_a, val_b, n_grid=n_grid)

    @staticmethod
    def mixture_logp(logp_a: Any, logp_b: Any, w: float) -> Any:
        """log(w p_a + (1 − w) p_b) per event (:func:`mixture_logp`)."""
        return mixture_logp(logp_a, logp_b, w)

    def load(self, model_dir: Path, config: dict[str, Any], device: torch.device) -> TrainedModel:
        """The members' folders inside ``model_dir``, with the card's weights.

        Raises:
            pipeline.checkpoints.CheckpointError: If the card's members and weights do not
                match.
        """
        from torch import nn

        from pipeline.checkpoints import CheckpointError
        from pipeline.evaluation import load_trained

        names = list(config.get("members", []))
        weights = [float(w) for w in config.get("weights", [])]
        if not names or len(names) != len(weights) or abs(sum(weights) - 1.0) > 1e-9:
            raise CheckpointError(
                f"{model_dir}: an ensemble card needs members and weights summing to 1"
            )
        members = tuple(
            (w, load_trained(Path(model_dir) / name, device=device))
            for name, w in zip(names, weights, strict=True)
        )
        lead = members[-1][1]  # the score model: its field drives the map's PF-ODE diagnostics
        return TrainedModel(
            self.name,
            nn.ModuleList([m.net for _, m in members]),
            lead.score_fn,
            lead.manifold,
            lead.schedule,
            config,
            lead.device,
            lead.process,
            members=members,
            description="validation-weighted mixture of "
            + " and ".join(f"{n} ({w:.2f})" for n, w in zip(names, weights, strict=True)),
        )


VARIANT = MixtureVariant()
