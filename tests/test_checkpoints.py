"""Damaged checkpoints say what they are; a seed killed while saving trains to the same bytes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pipeline.checkpoints import (
    CheckpointError,
    load_checkpoint_weights,
    load_state,
    read_checkpoint_meta,
    save_state,
)
from tests.errors import raises_naming

ROOT = Path(__file__).resolve().parents[1]
FILES = ("model.safetensors", "ema.safetensors", "state.safetensors", "meta.json")

# A tiny run: 30 steps, checkpoints every 10 (the same set-up as tests/test_training.py).
TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    import test_training as t
    import pipeline.checkpoints as ck
    from pipeline.training import train

    kill_at = int(sys.argv[2])
    if kill_at:
        real = ck.save_file
        def dying_save_file(tensors, path, metadata=None):
            if metadata and metadata.get("step") == str(kill_at) and "ema" in path:
                Path(path).write_bytes(b"partial")  # half-written temporary file
                os._exit(9)
            return real(tensors, path, metadata=metadata)
        ck.save_file = dying_save_file
    model, data = t._setup()
    train(model, t.LOSS, data, t._cfg(), Path(sys.argv[1]), progress=False, restart_damaged=True)
    """
)


def _train(out: Path, kill_at: int = 0) -> int:
    script = TRAIN_SCRIPT.format(tests=str(ROOT / "tests"))
    proc = subprocess.run(
        [sys.executable, "-c", script, str(out), str(kill_at)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode


@pytest.mark.process  # trains in a subprocess
def test_kill_9_during_a_checkpoint_write_then_rerun_gives_identical_bytes(tmp_path: Path) -> None:
    assert _train(tmp_path / "ref") == 0
    # Killed while writing the step-20 checkpoint: model.safetensors already says step 20,
    # ema.safetensors and the rest still say 10, and a temporary file is left behind.
    assert _train(tmp_path / "run", kill_at=20) == 9
    assert read_checkpoint_meta(tmp_path / "run")["step"] == 10  # type: ignore[index]
    assert _train(tmp_path / "run") == 0
    for name in FILES:
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()


@pytest.mark.process  # trains in a subprocess
def test_truncated_weights_name_the_file_and_the_fix(tmp_path: Path) -> None:
    assert _train(tmp_path) == 0
    path = tmp_path / "ema.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with raises_naming(CheckpointError, str(path), "dvc pull"):
        load_checkpoint_weights(tmp_path, "ema")
    (tmp_path / "model.safetensors").unlink()
    with raises_naming(FileNotFoundError, "model.safetensors", "dvc pull"):
        load_checkpoint_weights(tmp_path, "model")


def test_corrupt_meta_and_model_card_are_one_line_errors(tmp_path: Path) -> None:
    from pipeline.evaluation import load_trained

    (tmp_path / "meta.json").write_text('{"step": 3')
    with raises_naming(CheckpointError, "meta.json", one_line=True):
        read_checkpoint_meta(tmp_path)
    (tmp_path / "meta.json").write_text("[]")
    with raises_naming(CheckpointError, "meta.json", "'step'", one_line=True):
        read_checkpoint_meta(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with raises_naming(CheckpointError, "model.json", one_line=True):
        load_trained(tmp_path, device="cpu")


@pytest.mark.process  # trains in a subprocess
def test_damaged_state_is_refused_without_restart(tmp_path: Path) -> None:
    import test_training as t

    from pipeline.training import train

    assert _train(tmp_path) == 0
    (tmp_path / "state.safetensors").write_bytes(b"\x00" * 16)
    model, data = t._setup()
    with raises_naming(CheckpointError, "state.safetensors", "delete the seed directory"):
        train(model, t.LOSS, data, t._cfg(steps=40), tmp_path, progress=False)


def test_state_round_trip_keeps_structure_and_int_keys(tmp_path: Path) -> None:
    state = {
        "optimizer": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 0.1}]},
        "generator": torch.Generator().manual_seed(1).get_state(),
        "step": 7,
        "betas": (0.9, 0.999),
    }
    save_state(state, tmp_path / "a.safetensors")
    save_state(state, tmp_path / "b.safetensors")
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    back = load_state(tmp_path / "a.safetensors")
    assert list(back["optimizer"]["state"]) == [0]
    assert torch.equal(back["optimizer"]["state"][0]["step"], torch.tensor(3.0))
    assert torch.equal(back["generator"], state["generator"])
    assert back["step"] == 7 and back["betas"] == [0.9, 0.999]
