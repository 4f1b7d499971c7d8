"""``kde``: the incumbent, an adaptive kernel density (smoothed seismicity); see
:mod:`pipeline.variants.kde.density` for the density, the sampler, the score and the search.

Fitted by the train stage like any variant (``train@<catalogue>-kde``, params ``train.kde``:
the :class:`KDEConfig` keys; from ``train.common`` it takes ``manifold`` and ``schedule``, the
heat-time clock of its score field). A seed folder holds ``kde.safetensors``, ``meta.json``
(the chosen values and the validation NLL) and a model card whose config is ``{"manifold",
"schedule", "kde": chosen values}``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.variants.base import TrainedModel, Variant, build_manifold, build_schedule

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from pipeline.config.schema import Section
    from pipeline.variants.kde.density import KDEConfig

__all__ = ["VARIANT", "KernelDensityVariant", "kde_config"]

_SHARED = ("manifold", "schedule")


def kde_config(config: Mapping[str, Any], where: str = "train.kde") -> KDEConfig:
    """The :class:`KDEConfig` of a merged ``kde`` config (its keys but ``manifold`` and
    ``schedule``).

    Raises:
        KeyError: On an unknown key; ValueError: on a bad value (both named with ``where``).
    """
    from pipeline.variants.kde.density import KDEConfig

    return KDEConfig.from_dict({k: v for k, v in config.items() if k not in _SHARED}, where)


class KernelDensityVariant(Variant):
    """The adaptive kernel density: fitted in seconds by a validation search, exact density."""

    name = "kde"
    common_keys = _SHARED

    def schema(self) -> Section:
        from pipeline.config.params_schema import MANIFOLD, SCHEDULE
        from pipeline.config.schema import Field, Section

        grid = Field("list", items=Field("float", min=0.0))
        return Section(
            {
                "manifold": MANIFOLD,
                "schedule": SCHEDULE,
                "kernel": Field("str", choices=("vmf", "heat")),
                "k_grid": Field("list", items=Field("int", min=1)),
                "scale_grid": grid,
                "floor_deg_grid": grid,
                "broad_deg_grid": grid,
                "broad_weight_grid": grid,
                "sweeps": Field("int", min=1),
            }
        )

    def validate(self, config: Mapping[str, Any]) -> None:
        """The manifold must be S², the schedule must build, and the kde keys must check."""
        if "schedule" not in config:
            raise KeyError("the kde config needs a 'schedule:' (the clock of its score field)")
        self.check_keys(config)
        build_schedule(config["schedule"])
        if build_manifold(config.get("manifold")).ambient_dim != 3:
            raise ValueError("model 'kde' runs on S² only")
        kde_config(config)

    def fit(
        self,
        config: dict[str, Any],
        parts: Mapping[str, Tensor],
        seed: int,
        out_dir: Path,
        *,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Search the bandwidths on this seed's validation events and write the seed folder
        (deterministic: the same split gives the same files). Runs
        on a process's threads: the kernel sums are torch float64 blocks.

        Raises:
            ValueError: If the split has fewer than 2 training or 1 validation events.
        """
        from pipeline.checkpoints import write_model_card
        from pipeline.variants.kde.density import fit_kde, save_kde

        cfg = kde_config(config)
        train, val = parts["train"], parts["val"]
        if len(val) == 0 or len(train) < 2:
            raise ValueError(
                f"seed {seed} has {len(train)} training and {len(val)} validation events; "
                "kde needs >= 2 and >= 1"
            )
        start = time.perf_counter()
        fit = fit_kde(train.double().numpy(), val.double().numpy(), cfg)
        seconds = time.perf_counter() - start
        save_kde(Path(out_dir), fit, cfg)
        card = {k: config[k] for k in _SHARED if k in config}
        write_model_card(Path(out_dir), self.name, {**card, "kde": fit.chosen})
        chosen = ", ".join(f"{k} {v:g}" for k, v in fit.chosen.items())
        return {
            "seed": seed,
            "steps": 0,
            "train_seconds": seconds,
            "resumed_from": 0,
            "loss_history": [],
            "note": f"val NLL {fit.val_nll:+.3f} ({chosen}; {len(fit.search)} points searched)",
        }

    def load(self, model_dir: Path, config: dict[str, Any], device: torch.device) -> TrainedModel:
        """Exact density and sampler; the score field is the heat flow of the kernel mixture
        at heat time s(t). Always float64 on the CPU (a kernel sum)."""
        import torch
        from torch import nn

        from pipeline.variants.kde.density import load_kde

        density = load_kde(model_dir)
        manifold = build_manifold(config.get("manifold"))
        schedule = build_schedule(config["schedule"])

        def score_fn(x: Tensor, t: Tensor) -> Tensor:
            return density.score(x, schedule.heat_time(t))

        def sample(n: int, generator: torch.Generator) -> Tensor:
            return density.sample(n, generator)

        return TrainedModel(
            self.name,
            nn.Module(),
            score_fn,
            manifold,
            schedule,
            config,
            torch.device("cpu"),
            exact_log_prob=density.log_prob,
            exact_sample=sample,
            description="exact kernel sum",
        )


VARIANT = KernelDensityVariant()
