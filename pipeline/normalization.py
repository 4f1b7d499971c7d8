"""Importance-sampled normalisation of a density on S², for densities too sharp for a grid.

A latitude/longitude grid misses peaks narrower than its spacing. Here Z = ∫ p dA is
estimated as the mean of p(x)/q(x) over x ~ q, with a proposal q that puts mass where p does:
a mixture of the uniform law and von Mises–Fisher laws centred on given points (the training
events) at several concentrations. The estimate is unbiased for any q > 0 and comes with its
standard error. The vMF pieces (normaliser, sampler) are :mod:`pipeline.geometry.vmf`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipeline.geometry.vmf import sample_vmf_s2, vmf_log_norm_s2

FloatArray = NDArray[np.float64]

#: ``logp_fn(xyz (N, 3) float64) -> log-density (N,)`` w.r.t. the area measure.
LogDensityFn = Callable[[FloatArray], FloatArray]


def proposal_logq(
    x: FloatArray,
    centers: FloatArray,
    kappas: Sequence[float],
    uniform_weight: float,
    chunk: int = 2048,
) -> FloatArray:
    """log-density of the proposal ``w·uniform + (1 − w)·mean_κ mean_k vMF(centers_k, κ)``.

    Args:
        x: Points, shape (N, 3).
        centers: vMF centres, shape (K, 3).
        kappas: Concentrations, equally weighted.
        uniform_weight: Weight w of the uniform component.
        chunk: Rows of ``x`` per block (bounds memory at ``chunk × K``).

    Returns:
        Array of shape (N,).
    """
    log_w = np.log((1.0 - uniform_weight) / len(kappas))
    out = np.empty(x.shape[0])
    for start in range(0, x.shape[0], chunk):
        # ⟨x, μ_k⟩ − 1 once per block, shared by every κ.
        cos_m1 = x[start : start + chunk] @ centers.T - 1.0
        parts = [np.full(cos_m1.shape[0], np.log(uniform_weight) - np.log(4.0 * np.pi))]
        for kappa in kappas:
            lk = float(kappa) * cos_m1
            m = lk.max(axis=1)
            mix = m + np.log(np.exp(lk - m[:, None]).mean(axis=1))
            parts.append(log_w + vmf_log_norm_s2(float(kappa)) + mix)
        out[start : start + chunk] = np.logaddexp.reduce(np.stack(parts), axis=0)
    return out


@dataclass(frozen=True)
class ImportanceEstimate:
    """Z = ∫ p dA estimated by importance sampling.

    Attributes:
        z: The estimate.
        stderr: Its standard error.
        n: Number of proposal draws.
        ess: Effective sample size of the weights (n for a perfect proposal).
    """

    z: float
    stderr: float
    n: int
    ess: float


def importance_normalization(
    logp_fn: LogDensityFn,
    centers: FloatArray,
    n: int,
    kappas: Sequence[float] = (30.0, 300.0, 3000.0, 30000.0),
    uniform_weight: float = 0.2,
    seed: int = 0,
) -> ImportanceEstimate:
    """Estimate ∫_{S²} p dA with a uniform + vMF-at-centres mixture proposal.

    Args:
        logp_fn: Log-density of the law to check, points of shape (N, 3) -> (N,).
        centers: Proposal centres, shape (K, 3) (e.g. the training events).
        n: Proposal draws (each costs one ``logp_fn`` evaluation).
        kappas: vMF concentrations of the proposal, equally weighted.
        uniform_weight: Weight of the uniform component in (0, 1]; keeps q > 0 everywhere.
        seed: Random seed.

    Returns:
        The estimate with its standard error and effective sample size.

    Raises:
        ValueError: On empty centres, ``n < 2`` or a weight outside (0, 1].
    """
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != 3 or centers.shape[0] == 0:
        raise ValueError(f"centers must have shape (K, 3) with K > 0, got {centers.shape}")
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    if not 0.0 < uniform_weight <= 1.0:
        raise ValueError(f"uniform_weight must be in (0, 1], got {uniform_weight}")
    rng = np.random.default_rng(seed)
    n_comp = len(kappas)
    comp = rng.choice(
        n_comp + 1, size=n, p=[uniform_weight] + [(1 - uniform_weight) / n_comp] * n_comp
    )
    x = rng.normal(size=(n, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # uniform draws (component 0)
    for j, kappa in enumerate(kappas, start=1):
        idx = np.flatnonzero(comp == j)
        if idx.size:
            mu = centers[rng.integers(centers.shape[0], size=idx.size)]
            x[idx] = sample_vmf_s2(mu, float(kappa), rng)
    log_q = proposal_logq(x, centers, kappas, uniform_weight)
    log_p = np.asarray(logp_fn(x), dtype=np.float64)
    if log_p.shape != (n,):
        raise ValueError(f"logp_fn returned shape {log_p.shape}, expected ({n},)")
    w = np.exp(log_p - log_q)
    z = float(w.mean())
    stderr = float(w.std(ddof=1) / np.sqrt(n))
    ess = float(w.sum() ** 2 / np.sum(w**2)) if np.any(w > 0) else 0.0
    return ImportanceEstimate(z=z, stderr=stderr, n=n, ess=ess)
