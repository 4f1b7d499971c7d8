"""The trainer's settings and learning-rate schedule (pipeline/config/train.py)."""

from __future__ import annotations

import pytest

from pipeline.config.train import TrainConfig, lr_factor
from tests.errors import raises_naming


def test_lr_factor_wsd_is_stable_then_linear_to_zero() -> None:
    cfg = TrainConfig(steps=100, warmup_steps=10, lr_schedule="wsd", decay_fraction=0.2)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert [lr_factor(k, cfg) for k in (10, 50, 80)] == [1.0, 1.0, 1.0]
    # The last 20 steps decay linearly: 20/20 at step 80 ... 1/20 at the last step (99).
    assert lr_factor(90, cfg) == pytest.approx(0.5)
    assert lr_factor(99, cfg) == pytest.approx(0.05)
    assert lr_factor(100, cfg) == 0.0
    with raises_naming(ValueError, "'decay_fraction'", "0.0"):
        TrainConfig(lr_schedule="wsd", decay_fraction=0.0)


def test_lr_factor_warmup_cosine_constant() -> None:
    cfg = TrainConfig(steps=110, warmup_steps=10, lr_schedule="cosine")
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(60, cfg) == pytest.approx(0.5)
    assert lr_factor(110, cfg) == pytest.approx(0.0)
    assert lr_factor(500, TrainConfig(steps=110, warmup_steps=10, lr_schedule="constant")) == 1.0


def test_from_dict_names_a_bad_key_or_value() -> None:
    with raises_naming(ValueError, "'epochs'"):
        TrainConfig.from_dict({"epochs": 3})
    with raises_naming(ValueError, "'lr_shedule'", "'lr_schedule'"):
        TrainConfig.from_dict({"lr_shedule": "cosine"})
    with raises_naming(ValueError, "'steps'", "'abc'"):
        TrainConfig.from_dict({"steps": "abc"})
    with raises_naming(ValueError, "'batch_size'", "0"):
        TrainConfig.from_dict({"batch_size": 0})
    assert TrainConfig.from_dict({"lr": "1e-3", "steps": 5.0}).lr == 1e-3


def test_lr_factor_anneals_over_the_time_budget() -> None:
    """A run bounded by max_seconds decays over the last decay_fraction of its seconds."""
    cfg = TrainConfig(
        steps=10**9, warmup_steps=10, lr_schedule="wsd", decay_fraction=0.2, max_seconds=100.0
    )
    assert lr_factor(50, cfg, elapsed=10.0) == 1.0
    assert lr_factor(50, cfg, elapsed=80.0) == pytest.approx(1.0)
    assert lr_factor(50, cfg, elapsed=90.0) == pytest.approx(0.5)
    assert lr_factor(50, cfg, elapsed=99.0) == pytest.approx(0.05)
    assert lr_factor(50, cfg, elapsed=150.0) == 0.0
    # Steps still bound it too: whichever end comes first.
    both = TrainConfig(steps=100, warmup_steps=0, lr_schedule="wsd", max_seconds=1e6)
    assert lr_factor(90, both, elapsed=1.0) == pytest.approx(0.5)
    cosine = TrainConfig(steps=10**9, warmup_steps=0, lr_schedule="cosine", max_seconds=100.0)
    assert lr_factor(5, cosine, elapsed=50.0) == pytest.approx(0.5)
    # Without max_seconds the clock is not read.
    plain = TrainConfig(steps=100, warmup_steps=0, lr_schedule="wsd")
    assert lr_factor(10, plain, elapsed=1e9) == 1.0


def test_a_time_bounded_run_ends_annealed(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a fake clock (1 s per reading), training by max_seconds ends at learning rate ~0."""
    import torch

    from pipeline import training

    clock = iter(float(k) for k in range(10**6))
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(clock))
    net = torch.nn.Linear(3, 3)
    lrs: list[float] = []

    def loss_fn(model: torch.nn.Module, batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return model(batch).square().mean()

    def record(step: int, loss: float) -> None:
        lrs.append(optimizer_lr())

    cfg = TrainConfig(
        steps=10**6,
        batch_size=4,
        warmup_steps=0,
        lr_schedule="wsd",
        decay_fraction=0.5,
        max_seconds=40.0,
        checkpoint_every=10**6,
        log_every=5,
        device="cpu",
        lr=1e-2,
    )
    holder: dict[str, torch.optim.Optimizer] = {}
    real_adam = torch.optim.Adam

    def adam(*args, **kwargs):  # type: ignore[no-untyped-def]
        holder["opt"] = real_adam(*args, **kwargs)
        return holder["opt"]

    def optimizer_lr() -> float:
        return float(holder["opt"].param_groups[0]["lr"])

    monkeypatch.setattr(training.torch.optim, "Adam", adam)
    data = torch.randn(32, 3)
    result = training.train(net, loss_fn, data, cfg, tmp_path, progress=False, callback=record)
    assert 10 < result.steps < 60  # stopped by the fake clock, not by steps
    assert lrs[0] == pytest.approx(1e-2)
    assert lrs[-1] < 0.15 * 1e-2  # the last steps ran annealed
    tail = lrs[len(lrs) // 2 :]
    assert all(b <= a + 1e-15 for a, b in zip(tail[:-1], tail[1:], strict=True))
