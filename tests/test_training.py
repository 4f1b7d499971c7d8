"""Tests of the trainer: schedule, checkpoints, bit-identical resume, divergence handling."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from pipeline.checkpoints import (
    CheckpointError,
    load_checkpoint_weights,
    load_state,
    read_checkpoint_meta,
)
from pipeline.config.train import TrainConfig
from pipeline.geometry import Sphere
from pipeline.losses import make_rsgm_loss
from pipeline.models import build_score_model
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.schedules import LinearBeta
from pipeline.training import (
    PlainProgress,
    TrainingDivergedError,
    progress_line,
    train,
)
from tests.errors import raises_naming

SPHERE = Sphere(2)
SCHED = LinearBeta(beta_0=1e-3, beta_1=5.0, T=1.0)


def _setup(seed: int = 0) -> tuple[nn.Module, Tensor]:
    torch.manual_seed(seed)
    model = build_score_model(SPHERE, {"hidden": 16, "depth": 2})
    data = SPHERE.random_uniform(200, generator=torch.Generator().manual_seed(123))
    return model, data


def _cfg(**kw: object) -> TrainConfig:
    base: dict[str, object] = dict(
        steps=30, batch_size=32, lr=1e-3, warmup_steps=5, lr_schedule="cosine",
        ema_decay=0.9, checkpoint_every=10, log_every=5, seed=7, device="cpu", grad_clip=1.0,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


LOSS = make_rsgm_loss({}, BrownianMotion(SPHERE, SCHED))


def test_train_writes_checkpoints_and_history(tmp_path: Path) -> None:
    model, data = _setup()
    res = train(model, LOSS, data, _cfg(), tmp_path, progress=False)
    assert res.steps == 30 and res.resumed_from == 0
    assert [s for s, _ in res.loss_history] == [5, 10, 15, 20, 25, 30]
    assert all(math.isfinite(v) for _, v in res.loss_history)
    for name in ("model.safetensors", "ema.safetensors", "state.safetensors", "meta.json"):
        assert (tmp_path / name).is_file()
    assert not list(tmp_path.glob("*.tmp"))
    ema = load_checkpoint_weights(tmp_path, "ema")
    assert set(ema) == set(model.state_dict())
    for k, v in res.ema_state.items():
        assert torch.equal(ema[k], v)
    raw = load_checkpoint_weights(tmp_path, "model")
    for k, v in model.state_dict().items():
        assert torch.equal(raw[k], v)
    assert not all(torch.equal(raw[k], ema[k]) for k in raw)
    meta = read_checkpoint_meta(tmp_path)
    assert meta is not None and meta["step"] == 30
    state = load_state(tmp_path / "state.safetensors")
    assert state["step"] == 30
    # calling again with the run complete does nothing and returns the same weights
    again = train(model, LOSS, data, _cfg(), tmp_path, progress=False)
    assert again.steps == 30 and again.resumed_from == 30
    with raises_naming(ValueError, "which", "'best'"):
        load_checkpoint_weights(tmp_path, "best")  # type: ignore[arg-type]


class Interrupt(Exception):
    pass


def test_resume_after_interruption_is_bit_identical(tmp_path: Path) -> None:
    model_a, data = _setup()
    res_a = train(model_a, LOSS, data, _cfg(), tmp_path / "a", progress=False)

    def kill_at_25(step: int, loss: float) -> None:
        if step == 25:
            raise Interrupt

    model_b, _ = _setup()
    with pytest.raises(Interrupt):
        train(model_b, LOSS, data, _cfg(), tmp_path / "b", progress=False, callback=kill_at_25)
    meta = read_checkpoint_meta(tmp_path / "b")
    assert meta is not None and meta["step"] == 20
    model_c, _ = _setup(seed=99)  # different init: everything must come from the checkpoint
    res_c = train(model_c, LOSS, data, _cfg(), tmp_path / "b", progress=False)
    assert res_c.resumed_from == 20 and res_c.steps == 30
    for k, v in model_a.state_dict().items():
        assert torch.equal(model_c.state_dict()[k], v), k
    for k, v in res_a.ema_state.items():
        assert torch.equal(res_c.ema_state[k], v), k
    assert res_c.loss_history == res_a.loss_history
    # Every file of the folder, byte for byte: DVC hashes the resumed run like a fresh one.
    for name in ("model.safetensors", "ema.safetensors", "state.safetensors", "meta.json"):
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes(), name


def test_stop_request_checkpoints_that_step_and_resume_is_byte_identical(tmp_path: Path) -> None:
    from pipeline.stopping import StopRequested, clear_stop, request_stop

    model_a, data = _setup()
    train(model_a, LOSS, data, _cfg(), tmp_path / "a", progress=False)

    def stop_at_13(step: int, loss: float) -> None:
        if step == 13:
            request_stop()

    model_b, _ = _setup()
    try:
        with raises_naming(StopRequested, "step 13 of 30", str(tmp_path / "b")):
            train(model_b, LOSS, data, _cfg(), tmp_path / "b", progress=False, callback=stop_at_13)
    finally:
        clear_stop()
    meta = read_checkpoint_meta(tmp_path / "b")
    assert meta is not None and meta["step"] == 13  # not the last periodic checkpoint (10)
    train(_setup(seed=99)[0], LOSS, data, _cfg(), tmp_path / "b", progress=False)
    for name in ("model.safetensors", "ema.safetensors", "state.safetensors", "meta.json"):
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes(), name


def test_nan_loss_raises_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    model, data = _setup()
    calls = {"n": 0}

    def bad_loss(m: nn.Module, x0: Tensor, g: torch.Generator) -> Tensor:
        calls["n"] += 1
        loss = LOSS(m, x0, g)
        return loss * float("nan") if calls["n"] == 15 else loss

    with raises_naming(TrainingDivergedError, "nan", "step 15"):
        train(model, bad_loss, data, _cfg(), tmp_path, progress=False)
    meta = read_checkpoint_meta(tmp_path)
    assert meta is not None and meta["step"] == 10
    weights = load_checkpoint_weights(tmp_path, "model")
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert json.loads((tmp_path / "meta.json").read_text())["step"] == 10


def test_wall_clock_budget_stops_early(tmp_path: Path) -> None:
    model, data = _setup()
    res = train(model, LOSS, data, _cfg(steps=10**9, max_seconds=0.3), tmp_path, progress=False)
    assert 0 < res.steps < 10**9
    assert res.wall_seconds >= 0.3
    # resuming with a larger budget continues from where it stopped
    res2 = train(model, LOSS, data, _cfg(steps=10**9, max_seconds=0.6), tmp_path, progress=False)
    assert res2.resumed_from == res.steps and res2.steps > res.steps
    assert res2.wall_seconds >= 0.6


def test_bad_data(tmp_path: Path) -> None:
    model, _ = _setup()
    with raises_naming(ValueError, "train_data", "(0, 3)"):
        train(model, LOSS, torch.zeros(0, 3), _cfg(), tmp_path, progress=False)


def test_resume_refuses_a_mixed_checkpoint(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    model, data = _setup()
    train(model, LOSS, data, _cfg(steps=10), tmp_path, progress=False)
    weights = load_file(str(tmp_path / "model.safetensors"))
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"step": "20"})
    with raises_naming(CheckpointError, str(tmp_path), "'model.safetensors': 20"):
        train(model, LOSS, data, _cfg(steps=30), tmp_path, progress=False)


# --- plain progress lines (stderr not a terminal) ---------------------------------------------


def test_progress_line_gives_the_eta_of_the_remaining_steps() -> None:
    # 18800 steps left at 41 steps/s: 458.5 s -> 7m39s (rounded to the second).
    line = progress_line("train seed 3", 1200, 20000, 41.0, 29.0)
    assert line == "train seed 3: step 1200/20000 (6%), 41 steps/s, ETA 7m39s"
    assert progress_line("t", 5, 10, 2.5, 2.0).endswith("(50%), 2.5 steps/s, ETA 2s")
    assert progress_line("t", 0, 10, 0.0, 0.0).endswith("ETA unknown")
    assert progress_line("t", 1, 100000, 1.0, 0.0).endswith("ETA 27h46m")


def test_progress_line_ends_at_the_time_budget_when_it_comes_first() -> None:
    # 18800 steps at 41/s need 458.5 s, but the budget has 300 - 29 = 271 s left.
    line = progress_line("train seed 0", 1200, 20000, 41.0, 29.0, max_seconds=300.0)
    assert line.endswith("ETA 4m31s (time budget)")
    # A generous budget does not bind.
    assert progress_line("t", 1200, 20000, 41.0, 29.0, max_seconds=1e6).endswith("ETA 7m39s")
    assert progress_line("t", 9, 10, 1.0, 61.0, done=True).endswith("done in 1m01s")


def test_plain_progress_writes_at_most_every_30_seconds_and_at_the_end() -> None:
    import io

    out = io.StringIO()
    # A resume from step 100 at 10 s: the rate counts this run's steps and seconds only.
    progress = PlainProgress("train seed 1", 1000, None, step=100, elapsed=10.0, stream=out)
    progress.update(150, 20.0)
    progress.update(300, 39.9)  # 29.9 s after the start: still quiet
    assert out.getvalue() == ""
    progress.update(310, 40.0)  # 210 steps in 30 s = 7 steps/s; 690 left = 98.6 s
    progress.update(320, 50.0)
    progress.update(700, 70.0)  # 600 steps in 60 s = 10 steps/s; 300 left
    progress.close(1000, 100.0)  # 900 steps in 90 s
    assert out.getvalue().splitlines() == [
        "train seed 1: step 310/1000 (31%), 7.0 steps/s, ETA 1m39s",
        "train seed 1: step 700/1000 (70%), 10 steps/s, ETA 30s",
        "train seed 1: step 1000/1000 (100%), 10 steps/s, done in 1m40s",
    ]


def test_training_to_a_log_file_ends_with_one_plain_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, data = _setup()
    train(model, LOSS, data, _cfg(steps=12), tmp_path, progress=True)  # stderr is captured
    err = capsys.readouterr().err
    assert err.startswith("train seed 7: step 12/12 (100%), ") and err.count("\n") == 1
    assert " steps/s, done in " in err
