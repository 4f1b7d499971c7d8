"""Checkpoint files: weights, training state, metadata and the model card, and their checks.

A checkpoint directory holds ``model.safetensors`` and ``ema.safetensors`` (weights),
``state.safetensors`` (optimizer, scheduler, step, the training generator's state),
``meta.json`` (step, config, loss history) and ``model.json`` (the model card). No file is a
pickle: the training state's tensors go into safetensors and the rest of its structure into
the file's JSON metadata (:func:`save_state`), which also makes the bytes a function of the
values only, so an identical run gives identical files and the same DVC hash. Every file is
written to a temporary name and moved into place with :func:`os.replace`; ``meta.json`` is
written last, so a checkpoint is complete exactly when every file names the same step; a
resume checks this and refuses a mixed directory with a :class:`CheckpointError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from pipeline.atomic import atomic_write
from pipeline.models.ema import EMA

__all__ = [
    "EMA_FILE",
    "META_FILE",
    "MODEL_CARD_FILE",
    "MODEL_FILE",
    "STATE_FILE",
    "CheckpointError",
    "load_checkpoint_weights",
    "load_resume_state",
    "load_state",
    "read_checkpoint_meta",
    "save_checkpoint",
    "save_state",
    "write_model_card",
]

MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "state.safetensors"
META_FILE = "meta.json"


MODEL_CARD_FILE = "model.json"
"""The model card beside a checkpoint: the model name and the config it was built from."""


def write_model_card(model_dir: Path, kind: str, config: dict[str, Any]) -> None:
    """Record the model name and config next to its checkpoint (``model.json``, atomic).

    Args:
        model_dir: The checkpoint directory.
        kind: Model name (see :mod:`pipeline.variants`).
        config: The plain config dict the model was built from.
    """
    text = json.dumps({"kind": kind, "config": config}, indent=2) + "\n"
    atomic_write(model_dir / MODEL_CARD_FILE, lambda p: p.write_text(text, encoding="utf-8"))


class CheckpointError(ValueError):
    """A checkpoint directory is unreadable or inconsistent; the message names the path and
    what to do."""


def _cpu_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def save_checkpoint(
    out_dir: Path,
    model: nn.Module,
    ema: EMA,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
    meta: dict[str, Any],
) -> None:
    """Write a complete checkpoint atomically (weights, state, then meta last).

    Args:
        out_dir: Directory (created if needed).
        model: The trained model.
        ema: Its EMA.
        optimizer: The optimizer.
        scheduler: The LR scheduler.
        generator: The training random generator.
        meta: JSON-serialisable metadata; must include ``step``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = {"step": str(int(meta["step"]))}
    atomic_write(
        out_dir / MODEL_FILE,
        lambda p: save_file(_cpu_state(model.state_dict()), str(p), metadata=tag),
    )
    atomic_write(
        out_dir / EMA_FILE, lambda p: save_file(_cpu_state(ema.state_dict()), str(p), metadata=tag)
    )
    state = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": int(meta["step"]),
        "generator": generator.get_state(),
        "ema_num_updates": ema.num_updates,
    }
    # Not torch's global RNG: every draw of the trainer and the losses uses ``generator``, and
    # the global state is shared by the seeds on threads, so saving it would make the bytes
    # depend on which seed's initialisation ran last.
    atomic_write(out_dir / STATE_FILE, lambda p: save_state(state, p))
    atomic_write(out_dir / META_FILE, lambda p: p.write_text(json.dumps(meta, indent=1)))


def load_checkpoint_weights(
    out_dir: Path, which: Literal["ema", "model"] = "ema"
) -> dict[str, Tensor]:
    """Read the weights saved in a checkpoint directory.

    Args:
        out_dir: Checkpoint directory.
        which: ``"ema"`` (the averaged weights, what is evaluated) or ``"model"`` (raw weights).

    Returns:
        A state dict on CPU.

    Raises:
        FileNotFoundError: If the weights file is missing.
        ValueError: On an unknown ``which``.
    """
    if which not in ("ema", "model"):
        raise ValueError(f"which must be 'ema' or 'model', got {which!r}")
    path = Path(out_dir) / (EMA_FILE if which == "ema" else MODEL_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {which} weights; {_RECOVER}")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for a damaged header
        raise CheckpointError(f"{path}: unreadable weights ({exc}); {_RECOVER}") from exc


_RECOVER = "run `dvc pull` to fetch the tracked weights, or `dvc repro` to retrain"


def _weights_step(path: Path) -> int | None:
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable weights ({exc}); {_RECOVER}") from exc
    return int(md["step"]) if "step" in md else None


def read_checkpoint_meta(out_dir: Path) -> dict[str, Any] | None:
    """Return a checkpoint directory's ``meta.json`` content, or None when there is none.

    Args:
        out_dir: Checkpoint directory.

    Returns:
        The metadata dict or None.

    Raises:
        CheckpointError: If the file is not a JSON object with a ``step``.
    """
    path = Path(out_dir) / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc}); {_RECOVER}") from exc
    if not isinstance(meta, dict) or "step" not in meta:
        raise CheckpointError(f"{path}: not a checkpoint record (no 'step'); {_RECOVER}")
    return meta


def load_resume_state(
    out_dir: Path, meta: dict[str, Any], model: nn.Module, ema: EMA
) -> dict[str, Any]:
    """Load a checkpoint's weights into ``model``/``ema`` and return its training state.

    Args:
        out_dir: Checkpoint directory.
        meta: Its ``meta.json`` content.
        model: Receives the raw weights.
        ema: Receives the EMA weights.

    Returns:
        The state dict written by :func:`save_checkpoint` (optimizer, scheduler, step,
        generator state, EMA update count).

    Raises:
        CheckpointError: If a file is missing, unreadable, or names another step.
    """
    state_path = out_dir / STATE_FILE
    try:
        state = load_state(state_path)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{state_path}: missing; {_INCONSISTENT}") from exc
    except Exception as exc:  # a truncated file: safetensors and torch raise several types
        raise CheckpointError(f"{state_path}: unreadable ({exc}); {_INCONSISTENT}") from exc
    steps_seen = {
        META_FILE: int(meta["step"]),
        state_path.name: int(state["step"]),
        MODEL_FILE: _weights_step(out_dir / MODEL_FILE)
        if (out_dir / MODEL_FILE).is_file()
        else None,
        EMA_FILE: _weights_step(out_dir / EMA_FILE) if (out_dir / EMA_FILE).is_file() else None,
    }
    if len(set(steps_seen.values())) != 1:
        raise CheckpointError(
            f"{out_dir}: inconsistent checkpoint (interrupted while saving?): steps "
            f"{steps_seen}; {_INCONSISTENT}"
        )
    model.load_state_dict(load_checkpoint_weights(out_dir, "model"))
    ema.load_state_dict(load_checkpoint_weights(out_dir, "ema"))
    return state


_INCONSISTENT = "delete the seed directory to retrain it, or restore it with `dvc checkout`"


def _flatten(obj: Any, tensors: dict[str, Tensor], path: str) -> Any:
    """JSON skeleton of ``obj`` with its tensors moved into ``tensors`` (keyed by path)."""
    if isinstance(obj, Tensor):
        tensors[path] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": path}
    if isinstance(obj, dict):
        # Pairs, not an object: optimizer state is keyed by int, and JSON keys are strings.
        return {"__dict__": [[k, _flatten(v, tensors, f"{path}/{k}")] for k, v in obj.items()]}
    if isinstance(obj, list | tuple):
        return [_flatten(v, tensors, f"{path}/{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {path} in a checkpoint state")


def _unflatten(obj: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(obj, dict) and "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if isinstance(obj, dict) and "__dict__" in obj:
        return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_state(state: dict[str, Any], path: str | Path) -> None:
    """Write a nested training state (dicts, lists, tensors, numbers, strings) as safetensors.

    Tuples come back as lists (Adam reads its ``betas`` either way).

    Args:
        state: The state (e.g. an optimizer's ``state_dict()`` inside a dict).
        path: Destination file.
    """
    tensors: dict[str, Tensor] = {}
    skeleton = _flatten(state, tensors, "")
    text = json.dumps(skeleton, sort_keys=True, separators=(",", ":"))
    # One metadata key: safetensors writes its metadata map in hash order, so two keys would
    # come out in either order and change the bytes.
    save_file(tensors, str(path), metadata={"skeleton": text})


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a state written by :func:`save_state` (no pickle)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with safe_open(str(path), framework="pt") as f:
        md = f.metadata() or {}
    tensors = load_file(str(path))
    state: dict[str, Any] = _unflatten(json.loads(md["skeleton"]), tensors)
    return state
