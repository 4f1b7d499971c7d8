r"""PF-ODE log-likelihood of K seeds in one adaptive ODE solve.

The same ODE as :func:`pipeline.likelihood.pf_ode_logp` (drift
:math:`\beta(t)(b(x) - \tfrac12 s_k(x, t))`, exact or Hutchinson manifold divergence, base
density at :math:`\pi(x_T)`), with the K seeds' states stacked into one state of K·N points
and the K score fields evaluated in one call (a vmapped
:class:`~pipeline.ensemble.stack.SeedEnsemble`), so one solve costs about the kernel launches
of one seed's.

Shared step control. One solver means one step sequence for all K seeds. torchdiffeq's
default norm over a stacked state would be the RMS over all K·N points, which can accept a
step too large for one seed when the others are smooth; this solve instead passes torchdiffeq
the norm :math:`\max_k \max(\mathrm{rms}(e^x_k), \mathrm{rms}(e^{\log p}_k))` of the scaled
error estimate, where the inner maximum is exactly the error norm of seed k's own
:func:`~pipeline.likelihood.pf_ode_logp` solve (torchdiffeq's mixed norm of its (points,
log-density) state). So a step is accepted only when every seed's own error test passes, and
the step size is set by the seed that needs the smallest steps: each seed's local error per
step stays within its own ``rtol``/``atol``, the hardest seed sets the number of field
evaluations, and the step sequence differs from a seed's own solve, so the results differ
from per-seed solves at the level of the tolerance (``tests/test_ensemble.py`` checks
1e-3 nats at the default 1e-5).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pipeline.ensemble.stack import EnsembleField
from pipeline.likelihood import BaseLogp, pf_ode_logp
from pipeline.models.divergence import DivergenceMethod
from pipeline.sde.process import ForwardProcess

__all__ = ["ensemble_pf_ode_logp"]


def ensemble_pf_ode_logp(
    field: EnsembleField,
    process: ForwardProcess,
    x: Tensor,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    method: str = "dopri5",
    t0: float = 1e-3,
    divergence: DivergenceMethod = "exact",
    base: BaseLogp | None = None,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, int]:
    r"""Log-density of points under each of K models, by one stacked probability-flow ODE.

    Arguments as :func:`pipeline.likelihood.pf_ode_logp`, with the K fields and K point sets
    stacked (see the module docstring for how the adaptive step is shared).

    Args:
        field: ``field(x (K, B, D), t (K, B)) -> (K, B, D)``, seed k's tangent score field on
            ``x[k]``, differentiable in x, points processed independently.
        process: The forward process shared by the seeds.
        x: Tensor, shape (K, N, D), seed k's points in ``x[k]`` (``x0.expand(K, N, D)`` to
            score one set under every seed); the dtype of the computation.
        rtol: Relative tolerance of the adaptive solver (each seed's own error test).
        atol: Absolute tolerance.
        method: torchdiffeq method name.
        t0: Start time (data side).
        divergence: ``"exact"`` or ``"hutchinson"`` (one probe of shape (K·B, D) per solve,
            so its draws differ from K separate solves').
        base: ``x (B, D) -> (B,)`` base log-density at :math:`x_T` (None: the reference's).
        batch_size: Points per seed per ODE solve (None: all N at once).
        generator: Generator for the Hutchinson probes.

    Returns:
        Tuple ``(logp, nfe)``: logp shape (K, N), nats w.r.t. the Riemannian volume; nfe the
        mean number of field evaluations (each of all K seeds) per solve, rounded.

    Raises:
        ValueError: On bad arguments.
        RuntimeError: If a result is not finite.
    """
    if x.dim() != 3 or x.shape[0] < 1:
        raise ValueError(f"x must have shape (K, N, D) with K >= 1, got {tuple(x.shape)}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_seeds, n, dim = x.shape
    bs = n if batch_size is None else int(batch_size)
    out: list[Tensor] = []
    nfes: list[int] = []

    def per_seed_norm(state: tuple[Tensor, Tensor]) -> Tensor:
        """The largest of the seeds' own (mixed RMS) error norms."""
        ys, lps = state
        rms_y = ys.reshape(n_seeds, -1).pow(2).mean(-1).sqrt()
        rms_lp = lps.reshape(n_seeds, -1).pow(2).mean(-1).sqrt()
        return torch.maximum(rms_y, rms_lp).max()

    for start in range(0, n, bs):
        chunk = x[:, start : start + bs]
        m = chunk.shape[1]

        def stacked_score(z: Tensor, t: Tensor, m: int = m) -> Tensor:
            return field(z.reshape(n_seeds, m, dim), t.reshape(n_seeds, m)).reshape(-1, dim)

        try:
            lp, nfe = pf_ode_logp(
                stacked_score, process, chunk.reshape(-1, dim), rtol=rtol, atol=atol,
                method=method, t0=t0, divergence=divergence, base=base, generator=generator,
                norm=per_seed_norm,
            )  # fmt: skip
        except RuntimeError as exc:
            raise RuntimeError(f"{exc} (the {n_seeds} seeds' points stacked)") from None
        out.append(lp.reshape(n_seeds, m))
        nfes.append(nfe)
    if not out:
        return x.new_zeros(n_seeds, 0), 0
    return torch.cat(out, dim=1), round(sum(nfes) / max(len(nfes), 1))
