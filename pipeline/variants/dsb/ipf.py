r"""Iterative proportional fitting (IPF) of a diffusion Schrödinger bridge on the engine.

Iteration 1 is the RSGM model of the given config: :math:`f_1 = 0` and :math:`b_1` the score
network fitted by :meth:`pipeline.variants.base.NetworkVariant.fit` (DSM with the exact heat-kernel
target on the config's horizon), bit-identical to ``fit_seed("rsgm", config, x_train, seed,
...)``.
Iteration n ≥ 2 alternates two half-steps:

1. simulate the backward process of :math:`b_{n-1}` from the uniform prior
   (``sim_paths`` walks of ``sim_steps`` steps, every state cached with its time) and fit
   :math:`f_n` against the frozen :math:`b_{n-1}`;
2. simulate the forward process of :math:`f_n` from the training data and fit :math:`b_n`
   against the frozen :math:`f_n`,

by the implicit divergence-form loss (``loss: implicit``, on the cached (x, t) rows) or DSB's
mean-matching regression (``loss: mean_matching``, on the cached steps); see
:mod:`pipeline.variants.dsb.losses`. Every field is trained by
:func:`pipeline.training.train` on the
cached rows, so it gets the trainer's checkpoints (safetensors), EMA and resume; the EMA
weights are what the next half-step and :class:`~pipeline.variants.dsb.model.BridgeModel` use.

Folders under ``out_dir``: ``ipf.json`` (the RSGM config, the IPF config and the training
data's SHA-256), ``iter01/backward`` (the ``fit_network`` folder), and for n ≥ 2
``iterNN/forward`` and ``iterNN/backward``, each a trainer checkpoint with a model card
(kind ``bridge_forward``/``bridge_backward``, config: the RSGM and IPF configs, the data's
hash and the iteration). A folder whose card and trainer config match and whose checkpoint
is finished is loaded, never retrained; one of another config is deleted and retrained; an
unfinished one resumes. A new RSGM config, seed or training set deletes every iteration
folder; ``n_iterations`` may grow (the earlier iterations are kept). What each field's fit
did (steps, loss history, seconds) is reported per field to ``run_ipf``'s ``on_field``
(:class:`FieldFit`). :class:`IPFConfig` lives in :mod:`pipeline.variants.dsb.config` (it is
the ``ipf:`` of a
``dsb`` model config) and is re-exported here, as are the folder's readers
(:mod:`pipeline.variants.dsb.fields`: :func:`load_bridge`, :class:`FieldFit`, :func:`field_dir`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pipeline.checkpoints import write_model_card
from pipeline.config.train import TrainConfig
from pipeline.devices import resolve_device
from pipeline.sde.brownian import BrownianMotion
from pipeline.training import train
from pipeline.variants.base import build_manifold, build_schedule, same_config
from pipeline.variants.dsb.config import RSGM_PART, IPFConfig
from pipeline.variants.dsb.fields import (
    MANIFEST_FILE,
    Direction,
    FieldFit,
    IPFRun,
    data_sha256,
    field_dir,
    field_finished,
    field_seed,
    load_bridge,
    load_field,
    loaded_fit,
    make_manifest,
    write_manifest,
)
from pipeline.variants.dsb.losses import make_implicit_loss, make_mean_matching_loss
from pipeline.variants.dsb.model import BridgeModel, simulate

__all__ = ["MANIFEST_FILE", "FieldFit", "IPFConfig", "field_dir", "load_bridge", "run_ipf"]


def _fit_field(
    run: IPFRun,
    iteration: int,
    direction: Direction,
    init: nn.Module | None,
    other: nn.Module | None,
    make_rows: Callable[[int], Tensor],
) -> tuple[nn.Module, FieldFit]:
    """Fit (or load) one field of iteration >= 2 against the frozen field ``other``.

    Returns:
        The field (EMA weights, frozen) and the record of what was done.
    """
    folder = field_dir(run.out_dir, iteration, direction)
    kind = f"bridge_{direction}"
    card = run.card(iteration)
    cfg = run.train_config(iteration, direction)
    if field_finished(folder, kind, card, cfg):
        record = loaded_fit(iteration, direction, folder)
    else:
        start = time.perf_counter()
        if folder.exists() and not same_config(folder, kind, card):
            shutil.rmtree(folder)  # a checkpoint of another config is never resumed
        write_model_card(folder, kind, card)
        seed = field_seed(run.ipf.seed, iteration, direction)
        net = RSGM_PART.network(run.config, run.manifold, seed=seed)
        if init is not None and run.ipf.warm_start:
            net.load_state_dict(init.state_dict())
        rows = make_rows(seed)
        schedule = build_schedule(run.config["schedule"])
        if run.ipf.loss == "implicit":
            loss_fn = make_implicit_loss(
                other, run.manifold, schedule, eps=run.eps, weighting=run.weighting
            )
        else:
            loss_fn = make_mean_matching_loss(
                other, direction, run.manifold, schedule, eps=run.eps, weighting=run.weighting
            )
        result = train(net, loss_fn, rows, cfg, folder, progress=run.progress, restart_damaged=True)
        record = FieldFit(
            iteration,
            direction,
            folder,
            result.steps,
            result.resumed_from,
            time.perf_counter() - start,
            list(result.loss_history),
        )
    return load_field(run.config, run.manifold, folder, run.device), record


def _generator(device: torch.device, seed: int) -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def _dtype(net: nn.Module) -> torch.dtype:
    return next(net.parameters()).dtype


def run_ipf(
    config_for_rsgm: dict[str, Any],
    ipf: IPFConfig,
    x_train: Tensor,
    out_dir: Path,
    *,
    progress: bool = False,
    on_field: Callable[[FieldFit], None] | None = None,
) -> BridgeModel:
    """Fit a Schrödinger bridge by IPF into ``out_dir``, resuming (see the module docstring).

    Args:
        config_for_rsgm: An ``rsgm`` model config (``manifold``, ``schedule``, ``network``,
            ``loss``, ``optim``, ``score_scaling``); its loss's ``eps`` and ``weighting`` are
            also the bridge's, and its network the architecture of every field.
        ipf: The IPF settings.
        x_train: Tensor, shape (N, D), training points on the config's manifold.
        out_dir: The bridge's folder.
        progress: Show the trainer's progress bars.
        on_field: Called with each field's :class:`FieldFit` once it is fitted or loaded, in
            IPF order (b_1, f_2, b_2, f_3, ...).

    Returns:
        The :class:`~pipeline.variants.dsb.model.BridgeModel` of all ``ipf.n_iterations``
        iterations (EMA weights, on the trainer's device).

    Raises:
        ValueError: On a bad config or data.
        pipeline.stopping.StopRequested: After SIGINT/SIGTERM, once the field checkpointed.
    """
    out_dir = Path(out_dir)
    config = RSGM_PART.resolve(config_for_rsgm, x_train)
    manifold = build_manifold(config.get("manifold"))
    schedule = build_schedule(config["schedule"])
    loss_cfg = dict(config.get("loss", {}))
    sha = data_sha256(x_train)
    field_cfg = TrainConfig.from_dict({**config.get("optim", {}), **ipf.train})
    write_manifest(out_dir, make_manifest(config, ipf, sha))
    run = IPFRun(
        config=config,
        ipf=ipf,
        data_sha256=sha,
        out_dir=out_dir,
        manifold=manifold,
        device=resolve_device(field_cfg.device),
        eps=float(loss_cfg.get("eps", 1e-3)),
        weighting=loss_cfg.get("weighting", "variance"),
        progress=progress,
    )
    first = field_dir(out_dir, 1, "backward")
    rsgm_cfg = TrainConfig.from_dict({**config.get("optim", {}), "seed": ipf.seed})
    if field_finished(first, "rsgm", config, rsgm_cfg):
        first_fit = loaded_fit(1, "backward", first)
    else:
        start = time.perf_counter()
        fitted = RSGM_PART.fit(
            config_for_rsgm, {"train": x_train}, ipf.seed, first, progress=progress
        )
        first_fit = FieldFit(
            1,
            "backward",
            first,
            int(fitted["steps"]),
            int(fitted["resumed_from"]),
            time.perf_counter() - start,
            [(int(a), float(b)) for a, b in fitted["loss_history"]],
        )
    report = on_field or (lambda record: None)
    report(first_fit)
    forwards: list[nn.Module | None] = [None]
    backwards: list[nn.Module] = [load_field(config, manifold, first, run.device)]
    implicit = ipf.loss == "implicit"
    reference = BrownianMotion(manifold, schedule)
    for n in range(2, ipf.n_iterations + 1):
        b_prev = backwards[-1]

        def backward_rows(seed: int, b_prev: nn.Module = b_prev) -> Tensor:
            gen = _generator(run.device, seed)
            y = reference.sample_reference(
                ipf.sim_paths, dtype=_dtype(b_prev), device=run.device, generator=gen
            )
            paths = simulate(
                b_prev, manifold, schedule, y, ipf.sim_steps, gen, direction="backward",
                eps=run.eps, increment="heat",
            )  # fmt: skip
            return paths.marginal_rows() if implicit else paths.step_rows()

        f_n, record = _fit_field(run, n, "forward", forwards[-1], b_prev, backward_rows)
        report(record)

        def forward_rows(seed: int, f_n: nn.Module = f_n) -> Tensor:
            gen = _generator(run.device, seed)
            data = x_train.to(device=run.device, dtype=_dtype(f_n))
            idx = torch.randint(data.shape[0], (ipf.sim_paths,), generator=gen, device=run.device)
            paths = simulate(
                f_n, manifold, schedule, data[idx], ipf.sim_steps, gen, direction="forward",
                eps=run.eps, increment="heat",
            )  # fmt: skip
            return paths.marginal_rows() if implicit else paths.step_rows()

        b_n, record = _fit_field(run, n, "backward", b_prev, f_n, forward_rows)
        report(record)
        forwards.append(f_n)
        backwards.append(b_n)
    return BridgeModel(manifold, schedule, forwards, backwards, run.eps, run.device)
