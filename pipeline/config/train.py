"""The trainer's settings (one ``optim:`` section of a model config) and its learning-rate schedule.

:class:`TrainConfig` maps one-to-one onto the keys of ``optim:`` (an unknown key is an error that
names the nearest known one); :func:`lr_factor` is the warm-up + constant/cosine/WSD schedule
that :func:`pipeline.training.train` follows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["TrainConfig", "lr_factor"]


@dataclass
class TrainConfig:
    """Trainer settings (maps one-to-one onto a ``params.yaml`` section).

    Attributes:
        steps: Maximum number of optimisation steps (also sets the decay's end).
        max_seconds: Optional wall-clock budget (seconds of training, summed over resumes);
            training stops at whichever of ``steps``/``max_seconds`` comes first. Not
            deterministic: use ``steps`` when bit-reproducibility matters.
        batch_size: Points per step (drawn with replacement).
        lr: Peak learning rate of Adam.
        warmup_steps: Linear warm-up length.
        lr_schedule: ``"constant"``, ``"cosine"`` (decay to 0 at ``steps``) or ``"wsd"``
            (warm-up, stable, decay: constant, then linear to 0 over the last
            ``decay_fraction`` of ``steps``).
        decay_fraction: The share of ``steps`` that ``"wsd"`` decays over, in (0, 1].
        ema_decay: EMA decay.
        grad_clip: Max global gradient norm (None or <= 0 disables).
        checkpoint_every: Steps between checkpoints (a final one is always written).
        log_every: Steps averaged into one loss-history entry.
        seed: Seed of the initialisation-independent randomness (batches, noise, t).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
    """

    steps: int = 10_000
    max_seconds: float | None = None
    batch_size: int = 512
    lr: float = 5e-4
    warmup_steps: int = 100
    lr_schedule: Literal["cosine", "constant", "wsd"] = "constant"
    decay_fraction: float = 0.2
    ema_decay: float = 0.999
    grad_clip: float | None = None
    checkpoint_every: int = 1000
    log_every: int = 100
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name, low in (
            ("steps", 0),
            ("batch_size", 1),
            ("checkpoint_every", 1),
            ("log_every", 1),
            ("warmup_steps", 0),
        ):
            if getattr(self, name) < low:
                raise ValueError(
                    f"trainer key {name!r}: expected >= {low}, got {getattr(self, name)}"
                )
        if not self.lr > 0:
            raise ValueError(f"trainer key 'lr': expected a number > 0, got {self.lr}")
        if self.lr_schedule not in ("cosine", "constant", "wsd"):
            raise ValueError(
                f"lr_schedule must be 'cosine', 'constant' or 'wsd', got {self.lr_schedule!r}"
            )
        if not 0.0 < self.decay_fraction <= 1.0:
            raise ValueError(
                f"trainer key 'decay_fraction': expected a number in (0, 1], "
                f"got {self.decay_fraction}"
            )

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> TrainConfig:
        """Build from a plain dict, rejecting unknown keys.

        Args:
            cfg: Mapping of field names to values.

        Returns:
            The config.

        Raises:
            ValueError: On an unknown key.
        """
        fields = cls.__dataclass_fields__
        values: dict[str, Any] = {}
        for key, value in cfg.items():
            if key not in fields:
                from pipeline.config.schema import did_you_mean

                raise ValueError(f"unknown trainer key {key!r}; {did_you_mean(key, list(fields))}")
            values[key] = _coerce(key, value, fields[key].default)
        return cls(**values)


def _coerce(key: str, value: Any, default: Any) -> Any:
    """``value`` as the type of the field's default (numbers may come as YAML strings)."""
    if value is None or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(default, int):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if isinstance(default, float) or default is None:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"trainer key {key!r}: expected a number, got {value!r}") from None
    return value


def lr_factor(step: int, cfg: TrainConfig, elapsed: float = 0.0) -> float:
    """Learning-rate multiplier at a step: linear warm-up, then constant, cosine to 0, or
    constant until the last ``decay_fraction`` of the run and linear to 0 over it (wsd).

    The run's progress is the larger of its step fraction and, when ``cfg.max_seconds`` is
    set, its time fraction ``elapsed / max_seconds``: a run stopped by its time budget anneals
    over the end of that budget as a run stopped by ``steps`` does over its last steps.

    Args:
        step: Optimiser step index (0-based).
        cfg: Trainer config.
        elapsed: Training seconds so far (summed over resumes); read only with
            ``cfg.max_seconds``.

    Returns:
        Multiplier in [0, 1].
    """
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    time_left = 1.0
    if cfg.max_seconds is not None and cfg.max_seconds > 0:
        time_left = min(max(1.0 - elapsed / cfg.max_seconds, 0.0), 1.0)
    if cfg.lr_schedule == "wsd":
        decay_steps = max(round(cfg.decay_fraction * cfg.steps), 1)
        left = cfg.steps - step  # steps still to take, this one included
        by_steps = 1.0 if left > decay_steps else max(left, 0) / decay_steps
        by_time = min(time_left / cfg.decay_fraction, 1.0) if cfg.decay_fraction > 0 else 1.0
        return min(by_steps, by_time)
    span = max(cfg.steps - cfg.warmup_steps, 1)
    progress = min(max(step - cfg.warmup_steps, 0) / span, 1.0)
    progress = max(progress, 1.0 - time_left)
    return 0.5 * (1.0 + math.cos(math.pi * progress))
