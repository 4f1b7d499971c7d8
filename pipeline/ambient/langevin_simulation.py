"""Langevin equilibria on :math:`S^d` for zonal drifts, by simulation.

The simulation runs the geodesic random walk
:math:`Z \\leftarrow \\exp_Z(h\\, b(Z) + \\sqrt{2h}\\,\\xi)`, :math:`\\xi \\sim N(0, P_Z)`, whose
stationary law has an O(h) bias; it is removed by a linear fit in h over several step sizes.
The drifts and the exact equilibria they are checked against (by quadrature):
:mod:`pipeline.ambient.langevin`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pipeline.ambient.langevin import ZonalDrift
from pipeline.geometry.manifold import Manifold
from pipeline.geometry.vmf import sample_vmf


@dataclass(frozen=True)
class SimulationResult:
    """Langevin simulation estimate of :math:`E\\langle z,\\mu\\rangle` at equilibrium.

    Attributes:
        step_sizes: Step sizes h used.
        means: Time-and-chain averages for each h.
        std_errors: Their standard errors (over independent chains).
        extrapolated: Intercept of the weighted linear fit in h (h -> 0).
        extrapolated_se: Its standard error.
    """

    step_sizes: list[float]
    means: list[float]
    std_errors: list[float]
    extrapolated: float
    extrapolated_se: float


def langevin_mean(
    drift: ZonalDrift,
    manifold: Manifold,
    mu: Tensor,
    init: Tensor,
    h: float,
    t_burn: float,
    t_avg: float,
    generator: torch.Generator,
) -> tuple[float, float]:
    """Time-averaged :math:`\\langle Z,\\mu\\rangle` of the geodesic-random-walk Langevin chain.

    Args:
        drift: Zonal drift b.
        manifold: The sphere (``expmap``, ``random_normal_tangent``).
        mu: Tensor, shape (D,).
        init: Tensor, shape (N, D), initial points of N independent chains.
        h: Step size.
        t_burn: Burn-in time (discarded).
        t_avg: Averaging time.
        generator: Random generator on mu's device.

    Returns:
        ``(mean, standard error)`` over chains.
    """
    z = init.clone()
    n_burn = math.ceil(t_burn / h)
    n_avg = max(1, math.ceil(t_avg / h))
    acc = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    sqrt2h = math.sqrt(2.0 * h)
    for k in range(n_burn + n_avg):
        step = h * drift(z, mu) + sqrt2h * manifold.random_normal_tangent(z, generator)
        z = manifold.projx(manifold.expmap(z, step))
        if k >= n_burn:
            acc += z @ mu
    chain_means = acc / n_avg
    mean = float(chain_means.mean())
    se = float(chain_means.std() / math.sqrt(chain_means.shape[0]))
    return mean, se


def langevin_equilibrium(
    drift: ZonalDrift,
    manifold: Manifold,
    kappa_init: float,
    step_sizes: list[float],
    n_chains: int,
    t_burn: float,
    t_avg: float,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
) -> SimulationResult:
    """Equilibrium mean of :math:`\\langle z,\\mu\\rangle` by simulation, extrapolated to h -> 0.

    Chains start from vMF(μ, ``kappa_init``) draws (μ the last basis vector), independent of the
    drift's equilibrium, and run for ``t_burn`` before averaging over ``t_avg``.

    Args:
        drift: Zonal drift.
        manifold: Sphere S^d.
        kappa_init: Concentration of the initial law.
        step_sizes: Step sizes (at least two).
        n_chains: Independent chains per step size.
        t_burn: Burn-in time.
        t_avg: Averaging time.
        generator: Random generator (CPU).
        dtype: Float dtype.

    Returns:
        The result.

    Raises:
        ValueError: With fewer than two step sizes.
    """
    if len(step_sizes) < 2:
        raise ValueError("step-size extrapolation needs at least two step sizes")
    D = int(manifold.ambient_dim)
    mu = torch.zeros(D, dtype=dtype)
    mu[-1] = 1.0
    means: list[float] = []
    ses: list[float] = []
    for h in step_sizes:
        init = sample_vmf(mu, kappa_init, n_chains, generator)
        mean, se = langevin_mean(drift, manifold, mu, init, h, t_burn, t_avg, generator)
        means.append(mean)
        ses.append(se)
    hs = np.asarray(step_sizes, dtype=np.float64)
    w = 1.0 / np.asarray(ses) ** 2
    design = np.stack([np.ones_like(hs), hs], axis=1)
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    coef = cov @ design.T @ (w * np.asarray(means))
    return SimulationResult(
        list(map(float, hs)), means, ses, float(coef[0]), float(math.sqrt(cov[0, 0]))
    )
