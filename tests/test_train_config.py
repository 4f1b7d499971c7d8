"""The trainer's settings and learning-rate schedule (pipeline/train_config.py)."""

from __future__ import annotations

import pytest

from pipeline.train_config import TrainConfig, lr_factor


def test_lr_factor_wsd_is_stable_then_linear_to_zero() -> None:
    cfg = TrainConfig(steps=100, warmup_steps=10, lr_schedule="wsd", decay_fraction=0.2)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert [lr_factor(k, cfg) for k in (10, 50, 80)] == [1.0, 1.0, 1.0]
    # The last 20 steps decay linearly: 20/20 at step 80 ... 1/20 at the last step (99).
    assert lr_factor(90, cfg) == pytest.approx(0.5)
    assert lr_factor(99, cfg) == pytest.approx(0.05)
    assert lr_factor(100, cfg) == 0.0
    with pytest.raises(ValueError, match="decay_fraction"):
        TrainConfig(lr_schedule="wsd", decay_fraction=0.0)


def test_lr_factor_warmup_cosine_constant() -> None:
    cfg = TrainConfig(steps=110, warmup_steps=10, lr_schedule="cosine")
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(60, cfg) == pytest.approx(0.5)
    assert lr_factor(110, cfg) == pytest.approx(0.0)
    assert lr_factor(500, TrainConfig(steps=110, warmup_steps=10, lr_schedule="constant")) == 1.0


def test_from_dict_names_a_bad_key_or_value() -> None:
    with pytest.raises(ValueError, match="unknown trainer key 'epochs'"):
        TrainConfig.from_dict({"epochs": 3})
    with pytest.raises(ValueError, match="did you mean 'lr_schedule'"):
        TrainConfig.from_dict({"lr_shedule": "cosine"})
    with pytest.raises(ValueError, match="'steps': expected a number, got 'abc'"):
        TrainConfig.from_dict({"steps": "abc"})
    with pytest.raises(ValueError, match="'batch_size': expected >= 1, got 0"):
        TrainConfig.from_dict({"batch_size": 0})
    assert TrainConfig.from_dict({"lr": "1e-3", "steps": 5.0}).lr == 1e-3
