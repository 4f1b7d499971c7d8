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
from torchdiffeq import odeint

from pipeline.ensemble.stack import EnsembleField
from pipeline.likelihood import BaseLogp
from pipeline.models.divergence import DivergenceMethod, manifold_divergence
from pipeline.sde.process import ForwardProcess
from pipeline.stopping import check_stop

__all__ = ["ensemble_pf_ode_logp"]

#: torchdiffeq's adaptive methods (they take the ``norm`` option; fixed-grid ones do not).
ADAPTIVE_METHODS = frozenset({"dopri8", "dopri5", "bosh3", "fehlberg2", "adaptive_heun"})


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
    T = process.T
    if not 0.0 <= t0 < T:
        raise ValueError(f"need 0 <= t0 < T, got t0={t0}, T={T}")
    if divergence not in ("exact", "hutchinson"):
        raise ValueError(f"divergence must be 'exact' or 'hutchinson', got {divergence!r}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = x.shape[1]
    bs = n if batch_size is None else int(batch_size)
    out: list[Tensor] = []
    nfes: list[int] = []
    for start in range(0, n, max(bs, 1)):
        chunk = x[:, start : start + bs]
        lp, nfe = _solve(field, process, chunk, rtol, atol, method, t0, divergence, base, generator)
        out.append(lp)
        nfes.append(nfe)
    logp = torch.cat(out, dim=1) if out else x.new_zeros(x.shape[0], 0)
    if not torch.isfinite(logp).all():
        bad = (~torch.isfinite(logp)).sum(dim=1).tolist()
        raise RuntimeError(f"PF-ODE log-likelihood is not finite for {bad} points per seed")
    return logp, round(sum(nfes) / max(len(nfes), 1))


def _solve(
    field: EnsembleField,
    process: ForwardProcess,
    x: Tensor,
    rtol: float,
    atol: float,
    method: str,
    t0: float,
    divergence: DivergenceMethod,
    base: BaseLogp | None,
    generator: torch.Generator | None,
) -> tuple[Tensor, int]:
    """One stacked solve of x (K, n, D); returns logp (K, n) and the field evaluations."""
    n_seeds, n, dim = x.shape
    manifold = process.manifold

    def stacked_score(z: Tensor, t: Tensor) -> Tensor:
        return field(z.reshape(n_seeds, n, dim), t.reshape(n_seeds, n)).reshape(-1, dim)

    flow = process.reverse(stacked_score, probability_flow=True)
    nfe = 0
    probe_gen = generator
    if divergence == "hutchinson" and probe_gen is None:
        probe_gen = torch.Generator(device=x.device).manual_seed(0)
    probe_state = probe_gen.get_state() if divergence == "hutchinson" and probe_gen else None

    def rhs(t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        nonlocal nfe
        nfe += 1
        check_stop("PF-ODE")
        y = state[0].detach()
        tb = t.to(y.dtype).expand(y.shape[0])

        def drift(z: Tensor) -> Tensor:
            return flow.drift(manifold.projx(z), tb)

        if probe_gen is not None and probe_state is not None:
            probe_gen.set_state(probe_state)  # one probe along the whole path
        v, div = manifold_divergence(drift, y, manifold, method=divergence, generator=probe_gen)
        return v.detach(), div.detach()

    def per_seed_norm(state: tuple[Tensor, Tensor]) -> Tensor:
        """The largest of the seeds' own (mixed RMS) error norms."""
        ys, lps = state
        rms_y = ys.reshape(n_seeds, -1).pow(2).mean(-1).sqrt()
        rms_lp = lps.reshape(n_seeds, -1).pow(2).mean(-1).sqrt()
        return torch.maximum(rms_y, rms_lp).max()

    options = {"norm": per_seed_norm} if method in ADAPTIVE_METHODS else None
    ts = torch.tensor([t0, process.T], dtype=x.dtype, device=x.device)
    flat = manifold.projx(x.reshape(-1, dim).detach())
    state0 = (flat, torch.zeros(flat.shape[0], dtype=x.dtype, device=x.device))
    with torch.no_grad():
        xs, ints = odeint(rhs, state0, ts, rtol=rtol, atol=atol, method=method, options=options)
    x_T = manifold.projx(xs[-1])
    base_lp = process.reference_logp(x_T) if base is None else base(x_T)
    return (base_lp.to(x.dtype) + ints[-1]).reshape(n_seeds, n), nfe
