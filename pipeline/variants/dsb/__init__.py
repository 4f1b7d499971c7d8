"""``dsb``: the diffusion Schrödinger bridge on a manifold (IPF on the RSGM engine).

:mod:`pipeline.variants.dsb.losses` (implicit divergence-form loss, mean-matching baseline),
:mod:`pipeline.variants.dsb.model` (the fields of every iteration, walks, sampler, PF-ODE
likelihood), :mod:`pipeline.variants.dsb.ipf` (:func:`run_ipf`, resumable, and :func:`load_bridge`),
:mod:`pipeline.variants.dsb.config` (the ``ipf:`` settings).

A ``dsb`` config is an ``rsgm`` config (iteration 1, and the architecture, horizon, ``eps`` and
``weighting`` of every later field) plus one key ``ipf``: the :class:`IPFConfig` fields but
``seed``, which is the training seed. A seed folder holds ``ipf.json`` and the
``iterNN/{forward,backward}`` field folders, beside a ``dsb`` model card and a summary
``meta.json`` (steps and loss history over every field). Its likelihood is the bridge's
probability-flow ODE (effective score b − f) and its sampler the backward walk of b. It runs on
the sphere only.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.variants.base import TrainedModel, Variant, read_model_card
from pipeline.variants.dsb.config import DSB_IPF_KEY, RSGM_PART, dsb_parts, ipf_config

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from pipeline.config.schema import Section

__all__ = ["VARIANT", "BridgeVariant"]


class BridgeVariant(Variant):
    """The Schrödinger bridge: several fields fitted by iterative proportional fitting."""

    name = "dsb"

    def schema(self) -> Section:
        from pipeline.config.params_schema import IPF, score_network_schema
        from pipeline.config.schema import Section

        return Section({**score_network_schema().fields, DSB_IPF_KEY: IPF})

    def validate(self, config: Mapping[str, Any]) -> None:
        """Its ``rsgm`` part as that model, and :meth:`IPFConfig.from_dict` of ``ipf``."""
        rsgm, _ = dsb_parts(config)
        RSGM_PART.validate(rsgm)
        ipf_config(config, seed=0)

    def fit(
        self,
        config: dict[str, Any],
        parts: Mapping[str, Tensor],
        seed: int,
        out_dir: Path,
        *,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Fit one seed by IPF into ``out_dir``, with :func:`run_ipf`'s resume.

        A folder without a ``dsb`` model card is deleted first. A ``dsb`` folder of another
        config is handed to :func:`run_ipf` as it is: a new rsgm part, seed or training set
        deletes every iteration, a new ``ipf`` refits the fields of iterations >= 2, a larger
        ``n_iterations`` keeps the earlier ones. Iteration folders beyond ``n_iterations`` are
        deleted afterwards (the folder then holds what a fresh fit writes).

        Returns:
            ``steps`` and ``resumed_from`` summed over the fields (b_1, f_2, b_2, ...),
            ``train_seconds`` this call's seconds over them, and ``loss_history`` the fields'
            histories concatenated in IPF order, each field's steps offset by the steps of the
            fields before it (each on its own scale: DSM for b_1, the IPF loss after).
            ``steps`` and ``loss_history`` also go to ``out_dir/meta.json``.
        """
        from pipeline.atomic import atomic_write
        from pipeline.checkpoints import META_FILE, write_model_card
        from pipeline.variants.dsb.ipf import FieldFit, run_ipf

        out_dir = Path(out_dir)
        x_train = parts["train"].float()  # the fields train in float32
        rsgm_config, _ = dsb_parts(config)
        ipf = ipf_config(config, seed)
        if out_dir.exists() and not _holds_kind(out_dir, self.name):
            shutil.rmtree(out_dir)  # another kind's folder (or no card): nothing to resume
        (out_dir / META_FILE).unlink(missing_ok=True)  # written again once every field is done
        write_model_card(out_dir, self.name, dict(config))
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
                {"iteration": r.iteration, "direction": r.direction, "steps": r.steps}
                for r in fields
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

    def load(self, model_dir: Path, config: dict[str, Any], device: torch.device) -> TrainedModel:
        """Iteration ``ipf.n_iterations`` of the card.

        Raises:
            FileNotFoundError: If the bridge has fewer finished iterations than its card asks.
        """
        from torch import nn

        from pipeline.variants.dsb.ipf import load_bridge

        n_iterations = ipf_config(config, seed=0).n_iterations
        bridge = load_bridge(model_dir, device=device)
        if bridge.n_iterations < n_iterations:
            raise FileNotFoundError(
                f"{model_dir}: {bridge.n_iterations} of {n_iterations} IPF iterations finished "
                "(run the train stage again to resume)"
            )
        fields: list[nn.Module] = [bridge.backward_field(1)]
        for k in range(2, n_iterations + 1):
            f_k = bridge.forward_field(k)
            fields += [bridge.backward_field(k)] if f_k is None else [f_k, bridge.backward_field(k)]
        return TrainedModel(
            self.name,
            nn.ModuleList(fields),
            bridge.effective_score_fn(n_iterations),
            bridge.manifold,
            bridge.schedule,
            config,
            device,
            bridge.process,
            sample_score_fn=bridge.backward_field(n_iterations),
        )


def _holds_kind(model_dir: Path, kind: str) -> bool:
    try:
        return bool(read_model_card(model_dir)["kind"] == kind)
    except (FileNotFoundError, ValueError):
        return False


VARIANT = BridgeVariant()
