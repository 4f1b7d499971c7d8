"""Fit one model variant to one training set, for one seed: the train stage's entry point.

The train stage (S² catalogues) and the SO(3) benchmark stage both call :func:`fit_seed`. A
one-network variant is fitted by :func:`pipeline.network_fit.fit_network` (data-dependent
values resolved from the training points, a checkpoint of another config discarded, the model
card written before training, the trainer's resume). ``dsb``, the diffusion Schrödinger
bridge, is fitted by :func:`pipeline.bridge.ipf.run_ipf` in the seed folder itself (its
``ipf.json`` and ``iterNN/{forward,backward}`` field folders), beside a ``dsb`` model card
and a summary ``meta.json`` (steps and loss history over every field), so that
:func:`pipeline.evaluation.load_trained` and the evaluate stage read it as any other seed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from torch import Tensor

from pipeline import zoo
from pipeline.atomic import atomic_write
from pipeline.bridge.ipf import FieldFit, run_ipf
from pipeline.checkpoints import META_FILE, MODEL_CARD_FILE, write_model_card
from pipeline.network_fit import fit_network, same_config

__all__ = ["fit_seed", "same_config"]


def fit_seed(
    kind: str,
    config: dict[str, Any],
    x_train: Tensor,
    seed: int,
    out_dir: Path,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Train one seed of a variant into ``out_dir`` (checkpoints + model card), resuming.

    Args:
        kind: A trained model name of :data:`pipeline.zoo.MODEL_KINDS`.
        config: The variant's config (``manifold``, ``schedule``, ``network``, ``loss``,
            ``optim``, ...; for ``dsb`` also ``ipf``); data-dependent values are resolved
            from ``x_train``.
        x_train: Tensor, shape (N, D), training points on the config's manifold.
        seed: Seeds the initial weights, the data order and the noise (for ``dsb``: the IPF
            seed).
        out_dir: The seed's model folder.
        progress: Show a progress bar.

    Returns:
        ``{"seed", "steps", "train_seconds", "resumed_from", "loss_history"}``; for ``dsb``
        see :func:`_fit_bridge` (totals over the fields).

    Raises:
        ValueError: On a bad config or data.
        pipeline.stopping.StopRequested: After SIGINT/SIGTERM, once the seed checkpointed.
    """
    if zoo.check_kind(kind) == "dsb":
        return _fit_bridge(config, x_train, seed, Path(out_dir), progress=progress)
    return fit_network(kind, config, x_train, seed, out_dir, progress=progress)


def _holds_kind(model_dir: Path, kind: str) -> bool:
    card = model_dir / MODEL_CARD_FILE
    if not card.is_file():
        return False
    try:
        return bool(json.loads(card.read_text(encoding="utf-8")).get("kind") == kind)
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return False


def _fit_bridge(
    config: dict[str, Any], x_train: Tensor, seed: int, out_dir: Path, *, progress: bool
) -> dict[str, Any]:
    """Fit one seed of ``dsb`` by IPF into ``out_dir``, with run_ipf's resume.

    A folder without a ``dsb`` model card is deleted first. A ``dsb`` folder of another
    config is handed to :func:`~pipeline.bridge.ipf.run_ipf` as it is: a new rsgm part, seed
    or training set deletes every iteration, a new ``ipf`` refits the fields of iterations
    >= 2, a larger ``n_iterations`` keeps the earlier ones. Iteration folders beyond
    ``n_iterations`` are deleted afterwards (the folder then holds what a fresh fit writes).

    Returns:
        ``{"seed", "steps", "train_seconds", "resumed_from", "loss_history"}``: ``steps``
        and ``resumed_from`` summed over the fields (b_1, f_2, b_2, ...), ``train_seconds``
        this call's seconds over them (walk simulation included; 0 for a field loaded
        finished), and ``loss_history`` the fields' histories concatenated in IPF order,
        each field's steps offset by the steps of the fields before it (so the step axis
        counts training steps over the whole bridge; each field's losses are on their own
        scale: DSM for b_1, the IPF loss after). ``steps`` and ``loss_history`` are also
        written to ``out_dir/meta.json`` (with the per-field step counts), the record the
        evaluate stage reads.
    """
    rsgm_config, _ = zoo.dsb_parts(config)
    ipf = zoo.ipf_config(config, seed)
    config = zoo.resolve_config("dsb", config, x_train)
    if out_dir.exists() and not _holds_kind(out_dir, "dsb"):
        shutil.rmtree(out_dir)  # another kind's folder (or no card): nothing to resume
    (out_dir / META_FILE).unlink(missing_ok=True)  # written again once every field is done
    write_model_card(out_dir, "dsb", config)
    fields: list[FieldFit] = []
    run_ipf(rsgm_config, ipf, x_train, out_dir, progress=progress, on_field=fields.append)
    for folder in sorted(out_dir.glob("iter[0-9][0-9]")):
        if int(folder.name[4:]) > ipf.n_iterations:
            shutil.rmtree(folder)
    history: list[list[float | int]] = []
    offset = 0
    for record in fields:
        history += [[offset + int(s), float(v)] for s, v in record.loss_history]
        offset += record.steps
    summary = {
        "step": offset,
        "loss_history": history,
        "fields": [
            {"iteration": r.iteration, "direction": r.direction, "steps": r.steps} for r in fields
        ],
    }
    text = json.dumps(summary, indent=1)
    atomic_write(out_dir / META_FILE, lambda p: p.write_text(text, encoding="utf-8"))
    return {
        "seed": seed,
        "steps": offset,
        "train_seconds": float(sum(r.seconds for r in fields)),
        "resumed_from": int(sum(r.resumed_from for r in fields)),
        "loss_history": history,
    }
