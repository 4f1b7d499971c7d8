"""Exact log-likelihood by the probability-flow ODE on a manifold, and an S² quadrature grid."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from torchdiffeq import odeint

from pipeline.models.divergence import DivergenceMethod, manifold_divergence
from pipeline.sde.process import ForwardProcess
from pipeline.stopping import check_stop

ScoreFn = Callable[[Tensor, Tensor], Tensor]
BaseLogp = Callable[[Tensor], Tensor]
ErrorNorm = Callable[[tuple[Tensor, Tensor]], Tensor]

#: torchdiffeq's adaptive methods (they take the ``norm`` option; fixed-grid ones do not).
ADAPTIVE_METHODS = frozenset({"dopri8", "dopri5", "bosh3", "fehlberg2", "adaptive_heun"})


def pf_ode_logp(
    score_fn: ScoreFn,
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
    norm: ErrorNorm | None = None,
) -> tuple[Tensor, int]:
    r"""Log-density of points under the model, by the probability-flow ODE.

    The ODE :math:`\dot x = f(x, t) = \beta(t)(b(x) - \tfrac12 s_\theta(x, t))` (the
    process's :meth:`~pipeline.sde.process.ForwardProcess.reverse` with
    ``probability_flow=True``; b = 0 for Brownian motion) transports :math:`p_{t_0}` to
    :math:`p_T` and :math:`\tfrac{d}{dt}\log p_t(x_t) = -\mathrm{div}_M f`, so
    :math:`\log p_{t_0}(x) = \log p_T(x_T) + \int_{t_0}^T \mathrm{div}_M f(x_t, t)\,dt`
    with :math:`p_T` replaced by the process's reference density. The state is integrated in
    embedded coordinates; the field is evaluated at :math:`\pi(x)` (re-projection, which leaves the
    tangential derivatives and hence the divergence unchanged on M), and :math:`x_T` is
    re-projected before the base density.

    ``t0``: the model is trained on [eps, T], so the default starts at ``t0 = 1e-3``: the result
    is the density of the data smoothed by heat time s(t0) (≈1e-6 for β(0)=1e-3). An exact check
    against a known p_t must compare with :math:`p_{t_0}`; with a field defined at t = 0 (e.g. an
    analytic score), ``t0 = 0`` gives :math:`\log p_0` itself.

    Args:
        score_fn: ``score_fn(x (B, D), t (B,)) -> (B, D)`` tangent field, differentiable in x,
            processing points independently.
        process: The forward process (its manifold, its schedule: integration ends at its
            ``T``, and its reference law: the base density).
        x: Tensor, shape (N, D), points on M; the dtype of the computation.
        rtol: Relative tolerance of the adaptive solver.
        atol: Absolute tolerance.
        method: torchdiffeq method name.
        t0: Start time (data side).
        divergence: ``"exact"`` (D backward passes) or ``"hutchinson"`` (one probe, fixed along
            the path: drawn once per solve).
        base: A callable ``x (B, D) -> (B,)`` giving the base log-density at :math:`x_T`
            (None: ``process.reference_logp``).
        batch_size: Points per ODE solve (None: all at once).
        generator: Generator for the Hutchinson probes.
        norm: Error norm of the adaptive step control, ``(points (B, D), logp (B,)) ->
            scalar`` (None: torchdiffeq's mixed RMS norm; ignored by fixed-grid methods).
            (e.g. a per-block maximum for stacked solves).

    Returns:
        Tuple ``(logp, nfe)``: logp shape (N,), log-density in nats w.r.t. the Riemannian volume;
        nfe the mean number of field evaluations per ODE solve (rounded).

    Raises:
        ValueError: On bad arguments.
        RuntimeError: If the result is not finite.
    """
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, D), got {tuple(x.shape)}")
    T = process.T
    if not 0.0 <= t0 < T:
        raise ValueError(f"need 0 <= t0 < T, got t0={t0}, T={T}")
    if divergence not in ("exact", "hutchinson"):
        raise ValueError(f"divergence must be 'exact' or 'hutchinson', got {divergence!r}")
    bs = x.shape[0] if batch_size is None else int(batch_size)
    out: list[Tensor] = []
    nfes: list[int] = []
    for start in range(0, x.shape[0], max(bs, 1)):
        lp, nfe = _solve(
            score_fn, process, x[start : start + bs], rtol, atol, method, t0, T, divergence,
            base, generator, norm,
        )  # fmt: skip
        out.append(lp)
        nfes.append(nfe)
    logp = torch.cat(out) if out else x.new_zeros(0)
    if not torch.isfinite(logp).all():
        bad = int((~torch.isfinite(logp)).sum())
        raise RuntimeError(f"PF-ODE log-likelihood is not finite for {bad} of {x.shape[0]} points")
    return logp, round(sum(nfes) / max(len(nfes), 1))


def _solve(
    score_fn: ScoreFn,
    process: ForwardProcess,
    x: Tensor,
    rtol: float,
    atol: float,
    method: str,
    t0: float,
    T: float,
    divergence: DivergenceMethod,
    base: BaseLogp | None,
    generator: torch.Generator | None,
    norm: ErrorNorm | None,
) -> tuple[Tensor, int]:
    nfe = 0
    probe_gen = generator
    manifold = process.manifold
    flow = process.reverse(score_fn, probability_flow=True)

    def rhs(t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        nonlocal nfe
        nfe += 1
        check_stop("PF-ODE")  # Ctrl-C / SIGTERM: a solve can take minutes
        y = state[0].detach()
        tb = t.to(y.dtype).expand(y.shape[0])

        def field(z: Tensor) -> Tensor:
            return flow.drift(manifold.projx(z), tb)

        if divergence == "hutchinson" and probe_gen is not None:
            probe_gen.set_state(probe_state)
        v, div = manifold_divergence(field, y, manifold, method=divergence, generator=probe_gen)
        return v.detach(), div.detach()

    if divergence == "hutchinson":
        if probe_gen is None:
            probe_gen = torch.Generator(device=x.device)
            probe_gen.manual_seed(0)
        probe_state = probe_gen.get_state()
    ts = torch.tensor([t0, T], dtype=x.dtype, device=x.device)
    state0 = (manifold.projx(x.detach()), torch.zeros(x.shape[0], dtype=x.dtype, device=x.device))
    with torch.no_grad():
        options = {"norm": norm} if norm is not None and method in ADAPTIVE_METHODS else None
        xs, ints = odeint(rhs, state0, ts, rtol=rtol, atol=atol, method=method, options=options)
    x_T = manifold.projx(xs[-1])
    base_lp = process.reference_logp(x_T) if base is None else base(x_T)
    return base_lp.to(x.dtype) + ints[-1], nfe


def sphere_grid(
    n_lat: int,
    n_lon: int,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Product quadrature on S²: Gauss–Legendre in z = sin(lat) times the trapezoid rule in lon.

    Exact for spherical polynomials up to degree :math:`\min(2 n_{lat} - 1, n_{lon} - 1)`, so
    :math:`\sum_i w_i f(x_i) \approx \int_{S^2} f\,dA` (the weights sum to :math:`4\pi`).
    Use it to check that a model density is normalised:
    ``(w * logp.exp()).sum() ≈ 1``.

    Args:
        n_lat: Number of Gauss–Legendre nodes in z.
        n_lon: Number of equispaced longitudes.
        dtype: Dtype of the result.
        device: Device of the result.

    Returns:
        Tuple ``(xyz, weights)``: xyz shape (n_lat * n_lon, 3) unit vectors; weights shape
        (n_lat * n_lon,) area weights.

    Raises:
        ValueError: If a count is < 1.
    """
    if n_lat < 1 or n_lon < 1:
        raise ValueError(f"n_lat and n_lon must be >= 1, got {n_lat}, {n_lon}")
    z, wz = np.polynomial.legendre.leggauss(n_lat)
    lon = 2.0 * math.pi * (np.arange(n_lon) + 0.5) / n_lon
    zz, ll = np.meshgrid(z, lon, indexing="ij")
    r = np.sqrt(np.clip(1.0 - zz**2, 0.0, None))
    xyz = np.stack([r * np.cos(ll), r * np.sin(ll), zz], axis=-1).reshape(-1, 3)
    w = (wz[:, None] * np.full((1, n_lon), 2.0 * math.pi / n_lon)).reshape(-1)
    return (
        torch.as_tensor(xyz, dtype=dtype, device=device),
        torch.as_tensor(w, dtype=dtype, device=device),
    )
