r"""The RSGM denoising score-matching loss of K seeds, with one vectorised network evaluation.

Seed k draws its times and its noisy points from its own generator, in the order
:func:`pipeline.losses.dsm_loss` draws them (t, then :math:`x_t`), so with the same generator
state its loss is :func:`pipeline.losses.make_rsgm_loss`'s for that seed, up to rounding; the
deterministic parts (heat time, the regression target, the weight) and the network run once
over all K seeds. The loss is returned per seed: the trainer minimises their sum, whose
gradient with respect to seed k's stacked slice is the gradient of seed k's own mean loss
(seeds neither mix nor rescale each other's gradients).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from pipeline.ensemble.stack import EnsembleField
from pipeline.losses import TimeSampler, Weighting, loss_weight, make_rsgm_loss
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.process import ForwardProcess
from pipeline.transition import has_heat_kernel, is_bm_exact, make_noise_sampler, make_score_target

__all__ = ["EnsembleDSMLoss"]


class EnsembleDSMLoss:
    r"""DSM loss of K seeds: ``loss(field, x0 (K, B, D), generators) -> (K,)``.

    Built from the same loss config as :func:`pipeline.losses.make_rsgm_loss` (which checks
    it first: unknown keys, values) with the same defaults; only the DSM kind of Brownian
    motion is vectorised (``rsgm``), since the ISM loss needs the divergence of each seed's
    field inside the loss.

    Args:
        cfg: The loss config (``target``, ``t_sampler``, ``eps``, ``weighting``, ``sampler``,
            ``grw_steps``; ``kind`` if given must be ``"dsm"``).
        process: Brownian motion on its manifold (its schedule gives s(t) and β(t)).

    Raises:
        ValueError: On a config ``make_rsgm_loss`` refuses, or one that is not DSM.
    """

    def __init__(self, cfg: Mapping[str, Any], process: ForwardProcess) -> None:
        cfg = dict(cfg)
        make_rsgm_loss(cfg, process)  # the config's checks, in one place
        brownian = isinstance(process, BrownianMotion)
        kind = cfg.get("kind", "dsm" if brownian else "ism")
        if kind != "dsm":
            raise ValueError(
                f"the seed ensemble trains the DSM loss of Brownian motion (rsgm) only, got loss "
                f"kind {kind!r} for {process!r}; train ISM models one seed at a time"
            )
        self.schedule = process.schedule
        eps = float(cfg.get("eps", 1e-3))
        self.t_sampler = TimeSampler(cfg.get("t_sampler", "log_uniform"), eps, float(process.T))
        self.weighting: Weighting = cfg.get("weighting", "variance")
        self.sampler = make_noise_sampler(
            process,
            cfg.get("sampler", "exact" if is_bm_exact(process) else "grw"),
            grw_steps=int(cfg.get("grw_steps", 20)),
            eps=eps,
        )
        target = cfg.get("target", "exact" if has_heat_kernel(process.manifold) else "varadhan")
        self.target = make_score_target(process, target, eps=eps)

    def __call__(
        self, field: EnsembleField, x0: Tensor, generators: Sequence[torch.Generator]
    ) -> Tensor:
        r"""Per-seed batch means of :math:`\tfrac12\lambda(t)|s_k(x_t, t) - y|^2`, y the DSM target.

        Args:
            field: The K score fields, e.g. a :class:`~pipeline.ensemble.stack.SeedEnsemble`.
            x0: Tensor, shape (K, B, D), seed k's data batch in ``x0[k]``.
            generators: K generators on x0's device; seed k draws only from ``generators[k]``.

        Returns:
            Tensor, shape (K,), seed k's mean loss in entry k.

        Raises:
            ValueError: On a shape other than (K, B, D) or a generator count other than K.
        """
        if x0.dim() != 3:
            raise ValueError(f"x0 must have shape (K, B, D), got {tuple(x0.shape)}")
        n_seeds, batch, dim = x0.shape
        if len(generators) != n_seeds:
            raise ValueError(f"need one generator per seed: K={n_seeds}, got {len(generators)}")
        t = torch.stack(
            [self.t_sampler.sample(batch, g, device=x0.device, dtype=x0.dtype) for g in generators]
        )
        s = self.schedule.heat_time(t)
        with torch.no_grad():
            xt = torch.stack([self.sampler(x0[k], s[k], g) for k, g in enumerate(generators)])
            flat = (xt.reshape(-1, dim), x0.reshape(-1, dim), s.reshape(-1))
            tgt = self.target(*flat).reshape(n_seeds, batch, dim)
        pred = field(xt, t)
        lam = loss_weight(t, self.schedule, self.t_sampler, self.weighting)
        return 0.5 * (lam * (pred - tgt).pow(2).sum(-1)).mean(-1)
