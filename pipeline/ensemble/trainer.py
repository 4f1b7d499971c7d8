r"""The seed-ensemble trainer: K seeds of one config trained as one vectorised network.

:func:`train_ensemble` is :func:`pipeline.training.train` for K seeds at once. The K models'
parameters are stacked (:class:`~pipeline.ensemble.stack.SeedEnsemble`) and one Adam, one
learning-rate schedule (:func:`pipeline.train_config.lr_factor`) and one stacked EMA run over the
stacked tensors; all three are elementwise, so seed k's slice follows exactly the arithmetic
of its own optimiser, schedule and EMA. What stays per seed: the initial weights (from
``models[k]``), the training data, a ``torch.Generator`` seeded with ``seeds[k]`` that alone
draws seed k's batch indices, times and noise (in the single-seed trainer's order), the loss
(the sum of the per-seed mean losses is minimised, so gradients neither mix nor rescale),
gradient clipping (each seed's global norm), its loss history and its checkpoint folder.

Each seed's folder holds :func:`pipeline.checkpoints.save_checkpoint`'s files, written by
that function (safetensors weights and state, JSON metadata; its ``config`` is ``cfg`` with
``seed = seeds[k]``): :func:`pipeline.checkpoints.load_checkpoint_weights` and the single-seed
trainer read it as one of their own, and a run resumes when every seed's folder holds a
checkpoint of one step; an interrupted run continued with the same arguments ends with
bit-identical weights on CPU.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from pipeline.checkpoints import (
    CheckpointError,
    load_resume_state,
    read_checkpoint_meta,
    save_checkpoint,
)
from pipeline.devices import checks_are_free, resolve_device
from pipeline.ensemble.stack import SeedEnsemble
from pipeline.models.ema import EMA
from pipeline.stopping import StopRequested, stop_requested
from pipeline.train_config import TrainConfig, lr_factor
from pipeline.training import TrainingDivergedError, TrainResult

__all__ = ["EnsembleLossFn", "train_ensemble"]

EnsembleLossFn = Callable[[SeedEnsemble, Tensor, Sequence[torch.Generator]], Tensor]
"""``loss_fn(ensemble, x0 (K, B, D), generators) -> (K,)`` per-seed losses
(:class:`~pipeline.ensemble.loss.EnsembleDSMLoss`)."""
EnsembleCallback = Callable[[int, list[float]], None]


def _check_inputs(
    models: Sequence[nn.Module],
    train_data: Tensor | Sequence[Tensor],
    seeds: Sequence[int],
    out_dirs: Sequence[Path | str],
) -> tuple[list[Tensor], list[Path]]:
    k = len(models)
    if k < 1:
        raise ValueError("train_ensemble needs K >= 1 models, got 0")
    if len(seeds) != k or len(out_dirs) != k:
        raise ValueError(
            f"need one seed and one out_dir per model: K={k} models, {len(seeds)} seeds, "
            f"{len(out_dirs)} out_dirs"
        )
    if len(set(seeds)) != k:
        raise ValueError(f"the seeds must be distinct, got {list(seeds)}")
    dirs = [Path(d) for d in out_dirs]
    if len({d.resolve() for d in dirs}) != k:
        raise ValueError(f"the out_dirs must be distinct, got {[str(d) for d in dirs]}")
    datas = [train_data] * k if isinstance(train_data, Tensor) else list(train_data)
    if len(datas) != k:
        raise ValueError(f"need one training set per seed (or one shared): K={k}, {len(datas)}")
    for i, d in enumerate(datas):
        if d.dim() != 2 or d.shape[0] == 0:
            raise ValueError(
                f"train_data[{i}] must have shape (N, D) with N > 0, got {tuple(d.shape)}"
            )
    if len({int(d.shape[1]) for d in datas}) != 1:
        raise ValueError(f"training sets of different D: {[tuple(d.shape) for d in datas]}")
    return datas, dirs


def _seed_optimizer_state(state: dict[str, Any], k: int) -> dict[str, Any]:
    """Seed k's slice of the stacked Adam state, in a single-seed optimizer's layout."""
    return {
        "state": {
            i: {key: v if key == "step" else v[k] for key, v in entry.items()}
            for i, entry in state["state"].items()
        },
        "param_groups": copy.deepcopy(state["param_groups"]),
    }


def _stack_optimizer_states(states: list[dict[str, Any]], dirs: list[Path]) -> dict[str, Any]:
    """The per-seed Adam states stacked along the seed axis (their steps must agree)."""
    first = states[0]
    for state, d in zip(states[1:], dirs[1:], strict=True):
        if state["param_groups"] != first["param_groups"] or set(state["state"]) != set(
            first["state"]
        ):
            raise CheckpointError(f"{d}: optimizer settings differ from {dirs[0]}'s")
    stacked: dict[Any, dict[str, Any]] = {}
    for i, entry in first["state"].items():
        stacked[i] = {}
        for key, value in entry.items():
            values = [s["state"][i][key] for s in states]
            if key == "step":
                if any(not torch.equal(torch.as_tensor(v), torch.as_tensor(value)) for v in values):
                    raise CheckpointError(f"{dirs}: optimizer steps differ between seeds")
                stacked[i][key] = value
            else:
                stacked[i][key] = torch.stack(values)
    return {"state": stacked, "param_groups": first["param_groups"]}


def _clip_per_seed(params: list[Tensor], max_norm: float) -> None:
    """:func:`torch.nn.utils.clip_grad_norm_` applied to each seed's slices separately."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    k = grads[0].shape[0]
    norms = torch.stack([torch.linalg.vector_norm(g.reshape(k, -1), dim=1) for g in grads])
    total = torch.linalg.vector_norm(norms, dim=0)  # (K,)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.reshape(k, *([1] * (g.dim() - 1))).to(g.dtype))


def train_ensemble(
    models: Sequence[nn.Module],
    loss_fn: EnsembleLossFn,
    train_data: Tensor | Sequence[Tensor],
    cfg: TrainConfig,
    seeds: Sequence[int],
    out_dirs: Sequence[Path | str],
    *,
    progress: bool = True,
    callback: EnsembleCallback | None = None,
) -> list[TrainResult]:
    """Train K seeds of one architecture and config together, one checkpoint folder per seed.

    Seed k is what :func:`pipeline.training.train` does with ``models[k]``, the matching
    single-seed loss (:func:`pipeline.losses.make_rsgm_loss` of the config of an
    :class:`~pipeline.ensemble.loss.EnsembleDSMLoss`), ``train_data[k]`` and
    ``replace(cfg, seed=seeds[k])``: the same random draws in the same order, the same
    Adam/schedule/EMA/clipping arithmetic. It agrees with that run, and with seed k trained
    alone through this function (K = 1), to rounding, not bit for bit: the vmapped network's
    batched matrix products round differently (float64, 20 steps: at most 1.2e-16 in a weight;
    ``tests/test_ensemble.py`` asserts 1e-10).

    Args:
        models: K >= 1 models of one architecture, seed k's initial weights in ``models[k]``
            (moved to the resolved device; on return each holds its seed's raw weights, as
            :func:`~pipeline.training.train` leaves its model).
        loss_fn: ``loss_fn(ensemble, x0 (K, B, D), generators) -> (K,)`` per-seed losses.
        train_data: Tensor, shape (N, D), shared by every seed, or K tensors (N_k, D).
        cfg: Trainer config shared by the seeds (its ``seed`` is replaced by ``seeds[k]``).
        seeds: K distinct seeds of the per-seed generators.
        out_dirs: K distinct checkpoint folders, seed k's in ``out_dirs[k]``.
        progress: Show a tqdm bar (only when stderr is a terminal).
        callback: Called as ``callback(step, [loss_0, ..., loss_{K-1}])`` after each step; an
            exception raised there stops training (used to simulate interruption).

    Returns:
        One :class:`~pipeline.training.TrainResult` per seed (``wall_seconds`` is the
        ensemble's, shared by its seeds; ``ema_state`` seed k's EMA weights).

    Raises:
        ValueError: On K < 1, mismatched counts, duplicate seeds or folders, malformed data,
            or models of different architectures.
        CheckpointError: If a seed's checkpoint is unreadable, or the seeds' checkpoints are
            not all present at one step.
        TrainingDivergedError: If a seed's loss is NaN/inf (no checkpoint for that step).
        StopRequested: After a stop request, once every seed's checkpoint is written.
    """
    datas, dirs = _check_inputs(models, train_data, seeds, out_dirs)
    n_seeds = len(models)
    device = resolve_device(cfg.device)
    for model in models:
        model.to(device)
    ensemble = SeedEnsemble(models)
    datas = [d.to(device=device, dtype=ensemble.dtype) for d in datas]
    params = ensemble.parameters()
    fused = device.type in ("cpu", "cuda") and all(p.dtype.is_floating_point for p in params)
    optimizer = torch.optim.Adam(params, lr=cfg.lr, fused=fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: lr_factor(k, cfg))
    shadow = {name: p.detach().clone() for name, p in ensemble.params.items()}
    ema_updates = 0
    generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    step = 0
    elapsed = 0.0
    histories: list[list[tuple[int, float]]] = [[] for _ in range(n_seeds)]
    window = torch.zeros(n_seeds, dtype=torch.float64, device=device)
    window_n = 0
    metas = [read_checkpoint_meta(d) for d in dirs]
    if any(m is not None for m in metas):
        steps_seen = {
            str(d): None if m is None else int(m["step"]) for d, m in zip(dirs, metas, strict=True)
        }
        if len(set(steps_seen.values())) != 1:
            raise CheckpointError(
                f"the ensemble resumes only when every seed has a checkpoint of one step, got "
                f"{steps_seen}; train the seeds apart, or delete their folders to retrain"
            )
        template = ensemble.seed_module(0)
        template_ema = EMA(template, cfg.ema_decay)
        raws, emas, states = [], [], []
        for k, (d, meta) in enumerate(zip(dirs, metas, strict=True)):
            assert meta is not None
            states.append(load_resume_state(d, meta, template, template_ema))
            raws.append({n: v.clone() for n, v in template.state_dict().items()})
            emas.append({n: v.clone() for n, v in template_ema.state_dict().items()})
            histories[k] = [(int(a), float(b)) for a, b in meta["loss_history"]]
        ensemble.load_seed_state_dicts(raws)
        for name, value in shadow.items():
            value.copy_(torch.stack([e[name] for e in emas]))
        optimizer.load_state_dict(_stack_optimizer_states([s["optimizer"] for s in states], dirs))
        scheduler.load_state_dict(states[0]["scheduler"])
        for g, state in zip(generators, states, strict=True):
            g.set_state(state["generator"])
        ema_updates = int(states[0]["ema_num_updates"])
        meta0 = metas[0]
        assert meta0 is not None
        step = int(meta0["step"])
        elapsed = float(meta0.get("elapsed_seconds", 0.0))
        window = torch.tensor(
            [float(m["window_sum"]) for m in metas if m is not None], dtype=torch.float64
        ).to(device)
        window_n = int(meta0["window_n"])
    resumed_from = step
    check_each_step = checks_are_free(device)

    def check_window() -> None:
        if window_n and not bool(torch.isfinite(window).all()):
            bad = [
                int(s) for s, w in zip(seeds, window.tolist(), strict=True) if not math.isfinite(w)
            ]
            raise TrainingDivergedError(
                f"loss of seed(s) {bad} is not finite within steps {step - window_n + 1}-{step} "
                f"(last checkpoints in {[str(d) for d in dirs]} kept)"
            )

    def save_all() -> None:
        """Every seed's checkpoint, through the single-seed checkpoint writer."""
        opt_state = optimizer.state_dict()
        for k in range(n_seeds):
            module = ensemble.seed_module(k)
            ema = EMA(module, cfg.ema_decay)
            buffers = {n: b[k] for n, b in ensemble.buffers.items()}
            ema.load_state_dict({**{n: v[k] for n, v in shadow.items()}, **buffers})
            ema.num_updates = ema_updates
            seed_opt = torch.optim.Adam(module.parameters(), lr=cfg.lr, fused=fused)
            seed_opt.load_state_dict(_seed_optimizer_state(opt_state, k))
            meta: dict[str, Any] = {
                "step": step,
                "config": asdict(replace(cfg, seed=int(seeds[k]))),
                "loss_history": histories[k],
                "window_sum": float(window[k]),
                "window_n": window_n,
                "device": str(device),
            }
            if cfg.max_seconds is not None:
                meta["elapsed_seconds"] = elapsed
            save_checkpoint(dirs[k], module, ema, seed_opt, scheduler, generators[k], meta)

    def budget_left() -> bool:
        if step >= cfg.steps:
            return False
        return cfg.max_seconds is None or elapsed < cfg.max_seconds

    show = progress and sys.stderr.isatty()
    bar = tqdm(total=cfg.steps, initial=step, disable=not show, desc=f"train x{n_seeds}")
    t_start = time.perf_counter() - elapsed
    values: list[float] = []
    try:
        while budget_left():
            x0 = torch.stack(
                [
                    d[torch.randint(d.shape[0], (cfg.batch_size,), generator=g, device=device)]
                    for d, g in zip(datas, generators, strict=True)
                ]
            )
            losses = loss_fn(ensemble, x0, generators)
            if check_each_step or callback is not None:
                values = [float(v) for v in losses.detach().tolist()]
                bad = [int(s) for s, v in zip(seeds, values, strict=True) if not math.isfinite(v)]
                if bad:
                    raise TrainingDivergedError(
                        f"loss of seed(s) {bad} is not finite at step {step + 1} "
                        f"(last checkpoints in {[str(d) for d in dirs]} kept)"
                    )
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            if cfg.grad_clip is not None and cfg.grad_clip > 0:
                _clip_per_seed(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            with torch.no_grad():
                current = [p.detach() for p in params]
                torch._foreach_lerp_(list(shadow.values()), current, 1.0 - cfg.ema_decay)
            ema_updates += 1
            step += 1
            elapsed = time.perf_counter() - t_start
            window += losses.detach().to(torch.float64)
            window_n += 1
            if step % cfg.log_every == 0:
                check_window()
                for k in range(n_seeds):
                    histories[k].append((step, float(window[k]) / window_n))
                window.zero_()
                window_n = 0
            bar.update(1)
            if step % cfg.checkpoint_every == 0:
                check_window()
                save_all()
            if callback is not None:
                callback(step, values)
            if stop_requested():
                check_window()
                save_all()
                raise StopRequested(
                    f"training stopped at step {step} of {cfg.steps}; checkpoints in "
                    f"{[str(d) for d in dirs]}"
                )
    finally:
        bar.close()
    if window_n > 0:
        check_window()
        for k in range(n_seeds):
            histories[k].append((step, float(window[k]) / window_n))
        window.zero_()
        window_n = 0
    save_all()
    results = []
    for k, model in enumerate(models):
        model.load_state_dict(ensemble.seed_state_dict(k))
        buffers = {n: b[k].clone() for n, b in ensemble.buffers.items()}
        ema_state = {**{n: v[k].clone() for n, v in shadow.items()}, **buffers}
        results.append(
            TrainResult(
                steps=step,
                wall_seconds=elapsed,
                loss_history=histories[k],
                ema_state={n: ema_state[n] for n in model.state_dict()},
                out_dir=dirs[k],
                resumed_from=resumed_from,
            )
        )
    return results
