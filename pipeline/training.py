"""The trainer: Adam, warm-up + cosine/constant learning rate, EMA, atomic resumable checkpoints.

A checkpoint directory holds ``model.safetensors`` and ``ema.safetensors`` (weights),
``state.pt`` (optimizer, scheduler, step, RNG states; read with ``weights_only=True``) and
``meta.json`` (step, elapsed seconds, config, loss history). Every file is written to a temporary
name and moved into place with :func:`os.replace`; ``meta.json`` is written last, so a checkpoint
is complete exactly when every file names the same step (the safetensors metadata ``step``,
``state.pt``'s ``step`` and ``meta.json``'s); a resume checks this and refuses a mixed directory.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from tqdm import tqdm

from pipeline.atomic import atomic_write
from pipeline.models.ema import EMA

LossFn = Callable[[nn.Module, Tensor, torch.Generator], Tensor]
StepCallback = Callable[[int, float], None]

MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "state.pt"
META_FILE = "meta.json"


MODEL_CARD_FILE = "model.json"
"""The model card beside a checkpoint: the model name and the config it was built from."""


def write_model_card(model_dir: Path, kind: str, config: dict[str, Any]) -> None:
    """Record the model name and config next to its checkpoint (``model.json``, atomic).

    Args:
        model_dir: The checkpoint directory.
        kind: Model name (see :mod:`pipeline.zoo`).
        config: The plain config dict the model was built from.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / (MODEL_CARD_FILE + ".tmp")
    tmp.write_text(json.dumps({"kind": kind, "config": config}, indent=2) + "\n")
    tmp.replace(model_dir / MODEL_CARD_FILE)


class TrainingDivergedError(RuntimeError):
    """Raised when the loss becomes NaN or infinite; the last good checkpoint is left intact."""


@dataclass
class TrainConfig:
    """Trainer settings (maps one-to-one onto a ``params.yaml`` section).

    Attributes:
        steps: Maximum number of optimisation steps (also sets the cosine period).
        max_seconds: Optional wall-clock budget (seconds of training, summed over resumes);
            training stops at whichever of ``steps``/``max_seconds`` comes first. Not
            deterministic: use ``steps`` when bit-reproducibility matters.
        batch_size: Points per step (drawn with replacement).
        lr: Peak learning rate of Adam.
        warmup_steps: Linear warm-up length.
        lr_schedule: ``"cosine"`` (decay to 0 at ``steps``) or ``"constant"``.
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
    lr_schedule: Literal["cosine", "constant"] = "constant"
    ema_decay: float = 0.999
    grad_clip: float | None = None
    checkpoint_every: int = 1000
    log_every: int = 100
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError(f"invalid TrainConfig: {self}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(
                f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}"
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
        unknown = set(cfg) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {sorted(unknown)}")
        return cls(**cfg)


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        steps: Steps done in total (including those before a resume).
        wall_seconds: Training seconds in total (including before a resume).
        loss_history: ``(step, mean loss over the preceding log window)`` pairs.
        ema_state: The final EMA weights (a model state dict, on the training device).
        out_dir: The checkpoint directory.
        resumed_from: Step the run resumed from (0 for a fresh run).
    """

    steps: int
    wall_seconds: float
    loss_history: list[tuple[int, float]]
    ema_state: dict[str, Tensor]
    out_dir: Path
    resumed_from: int = 0


def resolve_device(device: str) -> torch.device:
    """Map ``"auto"`` to CUDA when available, else CPU.

    Args:
        device: ``"auto"`` or a torch device string.

    Returns:
        The device.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Learning-rate multiplier at a step: linear warm-up, then constant or cosine to 0.

    Args:
        step: Optimiser step index (0-based).
        cfg: Trainer config.

    Returns:
        Multiplier in [0, 1].
    """
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    span = max(cfg.steps - cfg.warmup_steps, 1)
    progress = min(max(step - cfg.warmup_steps, 0) / span, 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


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
        "torch_rng": torch.get_rng_state(),
        "ema_num_updates": ema.num_updates,
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    atomic_write(out_dir / STATE_FILE, lambda p: torch.save(state, p))
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
        raise FileNotFoundError(f"no {which} weights at {path}")
    return load_file(str(path))


def _weights_step(path: Path) -> int | None:
    with safe_open(str(path), framework="pt") as f:
        md = f.metadata() or {}
    return int(md["step"]) if "step" in md else None


def read_checkpoint_meta(out_dir: Path) -> dict[str, Any] | None:
    """Return a checkpoint directory's ``meta.json`` content, or None when there is none.

    Args:
        out_dir: Checkpoint directory.

    Returns:
        The metadata dict or None.
    """
    path = Path(out_dir) / META_FILE
    if not path.is_file():
        return None
    meta: dict[str, Any] = json.loads(path.read_text())
    return meta


def train(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: Tensor,
    cfg: TrainConfig,
    out_dir: Path,
    progress: bool = True,
    callback: StepCallback | None = None,
) -> TrainResult:
    """Train ``model`` by minimising ``loss_fn`` on random batches of ``train_data``.

    Resumes from the checkpoint in ``out_dir`` when there is one (weights, optimizer, scheduler,
    EMA, RNG states and loss history), so an interrupted run continued with the same config ends
    with bit-identical weights on CPU. Adam (fused kernel) with linear warm-up then constant or
    cosine LR; EMA after every step; optional gradient clipping; periodic atomic checkpoints and a
    final one.

    Args:
        model: Module to train (moved to the resolved device, parameters kept in their dtype).
        loss_fn: ``loss_fn(model, x0 (B, D), generator) -> scalar``.
        train_data: Tensor, shape (N, D), training points.
        cfg: Trainer config.
        out_dir: Checkpoint directory.
        progress: Show a tqdm bar (only when stderr is a terminal).
        callback: Called as ``callback(step, loss)`` after each step (step counts steps done);
            an exception raised there stops training (used to simulate interruption).

    Returns:
        The :class:`TrainResult`; ``model`` keeps its raw weights, ``result.ema_state`` holds the
        EMA weights (also on disk as ``ema.safetensors``).

    Raises:
        TrainingDivergedError: If a loss is NaN/inf (no checkpoint is written for that step).
        ValueError: On empty or malformed data.
    """
    out_dir = Path(out_dir)
    if train_data.dim() != 2 or train_data.shape[0] == 0:
        raise ValueError(
            f"train_data must have shape (N, D) with N > 0, got {tuple(train_data.shape)}"
        )
    device = resolve_device(cfg.device)
    model.to(device)
    data = train_data.to(device=device, dtype=next(model.parameters()).dtype)
    n = data.shape[0]

    params = list(model.parameters())
    fused = device.type in ("cpu", "cuda") and all(p.dtype.is_floating_point for p in params)
    optimizer = torch.optim.Adam(params, lr=cfg.lr, fused=fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: lr_factor(k, cfg))
    ema = EMA(model, cfg.ema_decay)
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.seed)

    step = 0
    elapsed = 0.0
    history: list[tuple[int, float]] = []
    window_sum, window_n = 0.0, 0
    meta = read_checkpoint_meta(out_dir)
    if meta is not None:
        model.load_state_dict(load_checkpoint_weights(out_dir, "model"))
        ema.load_state_dict(load_checkpoint_weights(out_dir, "ema"))
        state = torch.load(out_dir / STATE_FILE, weights_only=True, map_location="cpu")
        steps_seen = {
            "meta.json": int(meta["step"]),
            STATE_FILE: int(state["step"]),
            MODEL_FILE: _weights_step(out_dir / MODEL_FILE),
            EMA_FILE: _weights_step(out_dir / EMA_FILE),
        }
        if len(set(steps_seen.values())) != 1:
            raise RuntimeError(
                f"inconsistent checkpoint in {out_dir} (interrupted while saving?): steps "
                f"{steps_seen}; delete the directory or restore a consistent copy"
            )
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        ema.num_updates = int(state["ema_num_updates"])
        step = int(meta["step"])
        elapsed = float(meta["elapsed_seconds"])
        history = [(int(a), float(b)) for a, b in meta["loss_history"]]
        window_sum, window_n = float(meta["window_sum"]), int(meta["window_n"])
    resumed_from = step

    def make_meta() -> dict[str, Any]:
        return {
            "step": step,
            "elapsed_seconds": elapsed,
            "config": asdict(cfg),
            "loss_history": history,
            "window_sum": window_sum,
            "window_n": window_n,
            "device": str(device),
        }

    def budget_left() -> bool:
        if step >= cfg.steps:
            return False
        return cfg.max_seconds is None or elapsed < cfg.max_seconds

    show = progress and sys.stderr.isatty()
    bar = tqdm(total=cfg.steps, initial=step, disable=not show, desc="train", dynamic_ncols=True)
    model.train()
    t_start = time.perf_counter() - elapsed
    try:
        while budget_left():
            idx = torch.randint(n, (cfg.batch_size,), generator=generator, device=device)
            loss = loss_fn(model, data[idx], generator)
            loss_val = float(loss.detach())
            if not math.isfinite(loss_val):
                raise TrainingDivergedError(
                    f"loss is {loss_val} at step {step + 1} (last checkpoint in {out_dir} kept)"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None and cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            ema.update()
            step += 1
            elapsed = time.perf_counter() - t_start
            window_sum += loss_val
            window_n += 1
            if step % cfg.log_every == 0:
                history.append((step, window_sum / window_n))
                window_sum, window_n = 0.0, 0
                bar.set_postfix(loss=f"{history[-1][1]:.4f}")
            bar.update(1)
            if step % cfg.checkpoint_every == 0:
                save_checkpoint(out_dir, model, ema, optimizer, scheduler, generator, make_meta())
            if callback is not None:
                callback(step, loss_val)
    finally:
        bar.close()
    if window_n > 0:
        history.append((step, window_sum / window_n))
        window_sum, window_n = 0.0, 0
    save_checkpoint(out_dir, model, ema, optimizer, scheduler, generator, make_meta())
    return TrainResult(
        steps=step,
        wall_seconds=elapsed,
        loss_history=history,
        ema_state={k: v.detach().clone() for k, v in ema.state_dict().items()},
        out_dir=out_dir,
        resumed_from=resumed_from,
    )
