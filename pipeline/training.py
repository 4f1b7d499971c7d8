"""The trainer: Adam, warm-up + constant/cosine/WSD learning rate, EMA, resumable checkpoints.

Its settings and learning-rate schedule are :mod:`pipeline.config.train`, its device choice
:mod:`pipeline.devices`, checkpoints (their files and checks) :mod:`pipeline.checkpoints`.
Nothing in a checkpoint holds a wall-clock value (the training seconds are returned in
:class:`TrainResult`, for a ``cache: false`` timings file), so an identical retrain gives
identical bytes and DVC skips what depends on it; only a run with ``max_seconds`` records its
elapsed seconds, since its resume needs them. A stop request (:mod:`pipeline.stopping`) is
polled after every step: the trainer writes a checkpoint of that step and raises
:class:`~pipeline.stopping.StopRequested`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from pipeline.checkpoints import (
    EMA_FILE,
    META_FILE,
    MODEL_FILE,
    STATE_FILE,
    CheckpointError,
    load_resume_state,
    read_checkpoint_meta,
    save_checkpoint,
)
from pipeline.config.train import TrainConfig, lr_factor
from pipeline.devices import checks_are_free, resolve_device
from pipeline.models.ema import EMA
from pipeline.stopping import StopRequested, stop_requested

__all__ = ["PlainProgress", "TrainResult", "TrainingDivergedError", "progress_line", "train"]

LossFn = Callable[[nn.Module, Tensor, torch.Generator], Tensor]
StepCallback = Callable[[int, float], None]


class TrainingDivergedError(RuntimeError):
    """Raised when the loss becomes NaN or infinite; the last good checkpoint is left intact."""


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


def _duration(seconds: float) -> str:
    """``45s``, ``7m40s`` or ``2h05m``."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


def progress_line(
    label: str,
    step: int,
    total: int,
    rate: float,
    elapsed: float,
    max_seconds: float | None = None,
    done: bool = False,
) -> str:
    """One plain progress line, e.g. ``train seed 3: step 1200/20000 (6%), 41 steps/s, ETA 7m40s``.

    The ETA is the sooner of the two stops of :func:`train`: the remaining steps at the
    measured rate, or what is left of the ``max_seconds`` budget (then marked "time budget").

    Args:
        label: What is training, e.g. ``train seed 3``.
        step: Steps done.
        total: Steps asked for (``cfg.steps``).
        rate: Measured steps per second (0 when unknown).
        elapsed: Training seconds so far (resumes included), as the budget counts them.
        max_seconds: The time budget, or None.
        done: The final line: the total time instead of an ETA.

    Returns:
        The line, without a newline.
    """
    pct = 100 * step // total if total > 0 else 100
    speed = f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}"
    head = f"{label}: step {step}/{total} ({pct}%), {speed} steps/s"
    if done:
        return f"{head}, done in {_duration(elapsed)}"
    by_steps = (total - step) / rate if rate > 0 else math.inf
    by_budget = math.inf if max_seconds is None else max(0.0, max_seconds - elapsed)
    if math.isinf(by_steps) and math.isinf(by_budget):
        return f"{head}, ETA unknown"
    if by_budget < by_steps:
        return f"{head}, ETA {_duration(by_budget)} (time budget)"
    return f"{head}, ETA {_duration(by_steps)}"


class PlainProgress:
    """Progress for a log file: one :func:`progress_line` at most every ``every`` seconds.

    Driven by the trainer's own ``elapsed`` seconds (no clock of its own), so a test can feed
    it any times. The rate is measured over this run only (a resume starts it afresh).

    Args:
        label: Prefix of each line, e.g. ``train seed 3``.
        total: Steps asked for.
        max_seconds: The trainer's time budget, or None.
        step: Step at the start (a resume's).
        elapsed: Training seconds at the start.
        stream: Where lines go (default: ``sys.stderr`` at creation).
        every: Least seconds between two lines.
    """

    def __init__(
        self,
        label: str,
        total: int,
        max_seconds: float | None,
        step: int,
        elapsed: float,
        stream: Any = None,
        every: float = 30.0,
    ) -> None:
        self.label, self.total, self.max_seconds, self.every = label, total, max_seconds, every
        self.stream = sys.stderr if stream is None else stream
        self.start_step, self.start_elapsed = step, elapsed
        self.last = elapsed

    def _rate(self, step: int, elapsed: float) -> float:
        seconds = elapsed - self.start_elapsed
        return (step - self.start_step) / seconds if seconds > 0 else 0.0

    def _write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def update(self, step: int, elapsed: float) -> None:
        """Writes a line when ``every`` seconds have passed since the last one."""
        if elapsed - self.last < self.every:
            return
        self.last = elapsed
        rate = self._rate(step, elapsed)
        self._write(progress_line(self.label, step, self.total, rate, elapsed, self.max_seconds))

    def close(self, step: int, elapsed: float) -> None:
        """Writes the final line (nothing when this run did no step)."""
        if step > self.start_step:
            rate = self._rate(step, elapsed)
            self._write(progress_line(self.label, step, self.total, rate, elapsed, done=True))


def train(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: Tensor,
    cfg: TrainConfig,
    out_dir: Path,
    progress: bool = True,
    callback: StepCallback | None = None,
    restart_damaged: bool = False,
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
        progress: Show a tqdm bar when stderr is a terminal; otherwise (a log file) a plain
            :class:`PlainProgress` line at most every 30 s and at the end.
        callback: Called as ``callback(step, loss)`` after each step (step counts steps done);
            an exception raised there stops training (used to simulate interruption).
        restart_damaged: On a damaged checkpoint in ``out_dir`` (a process killed while it
            was being written, a truncated file), warn on stderr, delete it and train from
            step 0 instead of raising :class:`CheckpointError`. Training is deterministic, so
            the result is what the interrupted run would have produced; only time is lost.

    Returns:
        The :class:`TrainResult`; ``model`` keeps its raw weights, ``result.ema_state`` holds the
        EMA weights (also on disk as ``ema.safetensors``).

    Raises:
        TrainingDivergedError: If a loss is NaN/inf (no checkpoint is written for that step).
        StopRequested: After a stop request (SIGINT/SIGTERM), once the checkpoint is written.
        CheckpointError: If the checkpoint in ``out_dir`` is unreadable or inconsistent.
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
    elapsed = 0.0
    # Reads `elapsed` (below) when called: a max_seconds run anneals over its time budget.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: lr_factor(k, cfg, elapsed))
    ema = EMA(model, cfg.ema_decay)
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg.seed)

    step = 0
    elapsed = 0.0
    history: list[tuple[int, float]] = []
    window_sum, window_n = 0.0, 0
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        meta = read_checkpoint_meta(out_dir)
        state = None if meta is None else load_resume_state(out_dir, meta, model, ema)
    except CheckpointError as exc:
        if not restart_damaged:
            raise
        print(f"warning: {exc}; training this seed again from step 0", file=sys.stderr)
        for name in (META_FILE, STATE_FILE, MODEL_FILE, EMA_FILE):
            (out_dir / name).unlink(missing_ok=True)
        model.load_state_dict(initial)  # a partial load may have touched the weights
        ema = EMA(model, cfg.ema_decay)
        meta = state = None
    if meta is not None and state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        ema.num_updates = int(state["ema_num_updates"])
        step = int(meta["step"])
        elapsed = float(meta.get("elapsed_seconds", 0.0))
        history = [(int(a), float(b)) for a, b in meta["loss_history"]]
        window_sum, window_n = float(meta["window_sum"]), int(meta["window_n"])
    resumed_from = step
    # The loss window is summed on the device in float64 (the same additions as Python floats),
    # so a step needs no host sync; on CPU a float() costs nothing and each step is checked.
    window = torch.tensor(window_sum, dtype=torch.float64, device=device)
    check_each_step = checks_are_free(device)

    def check_window() -> None:
        """Raise if a loss since the last check was NaN/inf (they poison the window's sum)."""
        if window_n and not math.isfinite(float(window)):
            raise TrainingDivergedError(
                f"loss is not finite within steps {step - window_n + 1}-{step} "
                f"(last checkpoint in {out_dir} kept)"
            )

    def make_meta() -> dict[str, Any]:
        meta = {
            "step": step,
            "config": asdict(cfg),
            "loss_history": history,
            "window_sum": float(window),
            "window_n": window_n,
            "device": str(device),
        }
        if cfg.max_seconds is not None:  # the budget spans resumes
            meta["elapsed_seconds"] = elapsed
        return meta

    def budget_left() -> bool:
        if step >= cfg.steps:
            return False
        return cfg.max_seconds is None or elapsed < cfg.max_seconds

    show = progress and sys.stderr.isatty()
    bar = tqdm(total=cfg.steps, initial=step, disable=not show, desc="train", dynamic_ncols=True)
    # Nobody sees a bar in a log file: a readable line every 30 s instead.
    plain = (
        PlainProgress(f"train seed {cfg.seed}", cfg.steps, cfg.max_seconds, step, elapsed)
        if progress and not show
        else None
    )
    model.train()
    t_start = time.perf_counter() - elapsed
    try:
        while budget_left():
            idx = torch.randint(n, (cfg.batch_size,), generator=generator, device=device)
            loss = loss_fn(model, data[idx], generator)
            if check_each_step or callback is not None:
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
            window += loss.detach().to(torch.float64)
            window_n += 1
            if step % cfg.log_every == 0:
                check_window()
                history.append((step, float(window) / window_n))
                window.zero_()
                window_n = 0
                bar.set_postfix(loss=f"{history[-1][1]:.4f}")
            bar.update(1)
            if plain is not None:
                plain.update(step, elapsed)
            if step % cfg.checkpoint_every == 0:
                check_window()
                save_checkpoint(out_dir, model, ema, optimizer, scheduler, generator, make_meta())
            if callback is not None:
                callback(step, loss_val)
            if stop_requested():
                check_window()
                save_checkpoint(out_dir, model, ema, optimizer, scheduler, generator, make_meta())
                raise StopRequested(
                    f"training stopped at step {step} of {cfg.steps}; checkpoint in {out_dir}"
                )
    finally:
        bar.close()
    if plain is not None:
        plain.close(step, elapsed)
    if window_n > 0:
        check_window()
        history.append((step, float(window) / window_n))
        window.zero_()
        window_n = 0
    save_checkpoint(out_dir, model, ema, optimizer, scheduler, generator, make_meta())
    return TrainResult(
        steps=step,
        wall_seconds=elapsed,
        loss_history=history,
        ema_state={k: v.detach().clone() for k, v in ema.state_dict().items()},
        out_dir=out_dir,
        resumed_from=resumed_from,
    )
