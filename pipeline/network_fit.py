"""One score network of a model variant fitted to one training set, for one seed.

The decisions around the trainer for a variant that is one network (every kind but ``dsb``):
the data-dependent config values are resolved from the training points, a checkpoint of
another config is discarded (never resumed), the model card is written before training, and
the network and loss come from :mod:`pipeline.zoo`. The trainer's own resume makes an
interrupted seed continue from its last checkpoint. :func:`pipeline.fit.fit_seed` calls this
for those kinds; the Schrödinger bridge (:mod:`pipeline.bridge.ipf`) calls it for its
iteration 1, so that iteration is bit-identical to the ``rsgm`` model of its config.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from torch import Tensor

from pipeline import zoo
from pipeline.training import MODEL_CARD_FILE, TrainConfig, train, write_model_card

__all__ = ["fit_network", "same_config"]


def same_config(model_dir: Path, kind: str, config: dict[str, Any]) -> bool:
    """Whether ``model_dir`` holds a model card of this kind and exactly this config."""
    card = Path(model_dir) / MODEL_CARD_FILE
    if not card.is_file():
        return False
    saved = json.loads(card.read_text())
    return bool(saved.get("kind") == kind and saved.get("config") == config)


def fit_network(
    kind: str,
    config: dict[str, Any],
    x_train: Tensor,
    seed: int,
    out_dir: Path,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Train one seed of a one-network variant into ``out_dir`` (checkpoint + card), resuming.

    Args:
        kind: A trained model name of :data:`pipeline.zoo.MODEL_KINDS` other than ``dsb``.
        config: The variant's config (``manifold``, ``schedule``, ``network``, ``loss``,
            ``optim``, ...); data-dependent values are resolved from ``x_train``.
        x_train: Tensor, shape (N, D), training points on the config's manifold.
        seed: Seeds the initial weights, the data order and the noise.
        out_dir: The seed's model folder.
        progress: Show a progress bar.

    Returns:
        ``{"seed", "steps", "train_seconds", "resumed_from", "loss_history"}``.

    Raises:
        ValueError: On a bad config or data.
        pipeline.stopping.StopRequested: After SIGINT/SIGTERM, once the seed checkpointed.
    """
    out_dir = Path(out_dir)
    # Data-dependent values (a Langevin reference's centre and scale) from this training set.
    config = zoo.resolve_config(kind, config, x_train)
    if out_dir.exists() and not same_config(out_dir, kind, config):
        # A checkpoint of another config must not be resumed.
        shutil.rmtree(out_dir)
    write_model_card(out_dir, kind, config)
    manifold = zoo.build_manifold(config.get("manifold"))
    schedule = zoo.build_schedule(config["schedule"])
    net = zoo.build_network(kind, config, manifold, seed=seed)
    loss_fn = zoo.build_loss(kind, config, manifold, schedule)
    cfg = TrainConfig.from_dict({**config.get("optim", {}), "seed": seed})
    result = train(net, loss_fn, x_train, cfg, out_dir, progress=progress, restart_damaged=True)
    return {
        "seed": seed,
        "steps": result.steps,
        "train_seconds": result.wall_seconds,
        "resumed_from": result.resumed_from,
        "loss_history": [[int(s), float(v)] for s, v in result.loss_history],
    }
