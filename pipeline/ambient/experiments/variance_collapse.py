"""Variance collapse on S² (issue 4a): the raw target's second moment vs the RB target's."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np
import torch
from numpy.polynomial import chebyshev as cheb
from scipy import special

from pipeline.ambient.experiments.fits import loglog_slope
from pipeline.ambient.posterior import FloatArray, fiber_moments
from pipeline.ambient.targets import add_ambient_noise, rb_target
from pipeline.geometry.sphere import Sphere
from pipeline.geometry.vmf import sample_vmf, vmf_score_sq_mean

__all__ = ["HEADLINE_KEYS", "headline", "variance_collapse"]

#: Keys of a :func:`variance_collapse` result that are its headline numbers.
HEADLINE_KEYS = (
    "slope_t_sq_small_sigma",
    "slope_t_sq_small_sigma_mc",
    "sigma2_t_sq_at_sigma_min",
    "r_sq_at_sigma_min",
    "r_sq_extrapolated_to_0",
    "score_sq_mean_true",
)


def _g_of_m(m: FloatArray, kappa: float, sigma: float, d: int) -> FloatArray:
    return fiber_moments(m, kappa, sigma, d).g


def variance_collapse(
    kappa: float = 2.0,
    sigma_min: float = 0.02,
    sigma_max: float = 0.5,
    n_sigma: int = 13,
    n_mc: int = 20000,
    n_nodes: int = 96,
    slope_sigma_max: float = 0.1,
    seed: int = 0,
) -> dict[str, Any]:
    """Variance collapse on S² under vMF(μ, κ) (issue 4a).

    For every σ on a log grid: the exact :math:`E|T_\\sigma|^2` and :math:`E|r_\\sigma(\\pi(X))|^2`
    (quadrature over the law of π(X) of the fiber moments, :math:`r_\\sigma` by posterior
    quadrature, no network) and Monte Carlo estimates from ``n_mc`` draws of (Z, X).

    Args:
        kappa: Concentration.
        sigma_min: Smallest σ.
        sigma_max: Largest σ.
        n_sigma: Grid size.
        n_mc: Monte Carlo draws per σ.
        n_nodes: Gauss-Jacobi nodes in m.
        slope_sigma_max: The log-log slope of :math:`E|T_\\sigma|^2` is fitted for σ <= this.
        seed: Random seed.

    Returns:
        Dict with per-σ lists and the summary numbers.
    """
    d = 2
    sigmas = np.exp(np.linspace(math.log(sigma_min), math.log(sigma_max), n_sigma))
    x, w = special.roots_jacobi(n_nodes, 0.0, 0.0)  # S²: dy = 2π dm
    gen = torch.Generator().manual_seed(seed)
    mu = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    manifold = Sphere(2)
    rows: dict[str, list[float]] = {
        k: [] for k in ("sigma", "t_sq", "r_sq", "t_sq_mc", "t_sq_mc_se", "r_sq_mc", "mass")
    }
    for sigma in sigmas:
        mom = fiber_moments(x, kappa, float(sigma), d)
        dens = 2.0 * math.pi * w * np.exp(mom.log_density)
        r_sq = kappa**2 * (1.0 - x * x) * mom.g**2
        rows["sigma"].append(float(sigma))
        rows["mass"].append(float(dens.sum()))
        rows["t_sq"].append(float(np.sum(dens * mom.t_sq)))
        rows["r_sq"].append(float(np.sum(dens * r_sq)))
        z = sample_vmf(mu, kappa, n_mc, gen)
        xn = add_ambient_noise(z, torch.tensor(float(sigma), dtype=torch.float64), gen)
        y, tgt = rb_target(manifold, z, xn, torch.tensor(float(sigma), dtype=torch.float64))
        t2 = tgt.pow(2).sum(-1).numpy()
        rows["t_sq_mc"].append(float(t2.mean()))
        rows["t_sq_mc_se"].append(float(t2.std() / math.sqrt(n_mc)))
        m = (y @ mu).numpy()
        g_fit = cheb.Chebyshev.interpolate(
            partial(_g_of_m, kappa=kappa, sigma=float(sigma), d=d), 64
        )
        g = g_fit(m)
        rows["r_sq_mc"].append(float(np.mean(kappa**2 * (1.0 - m * m) * g**2)))
    small = [i for i, s in enumerate(rows["sigma"]) if s <= slope_sigma_max + 1e-12]
    s0, s1 = rows["sigma"][0], rows["sigma"][1]
    r0, r1 = rows["r_sq"][0], rows["r_sq"][1]
    extrap = r0 - (r1 - r0) / (s1**2 - s0**2) * s0**2  # linear in sigma^2 to sigma = 0
    return {
        "kappa": kappa,
        "d": d,
        **rows,
        "slope_t_sq_small_sigma": loglog_slope(
            [rows["sigma"][i] for i in small], [rows["t_sq"][i] for i in small]
        ),
        "slope_t_sq_small_sigma_mc": loglog_slope(
            [rows["sigma"][i] for i in small], [rows["t_sq_mc"][i] for i in small]
        ),
        "slope_sigma_max": slope_sigma_max,
        "sigma2_t_sq_at_sigma_min": rows["t_sq"][0] * s0**2,
        "score_sq_mean_true": vmf_score_sq_mean(kappa, d),
        "score_sq_mean_closed_form_s2": 2.0 * kappa / math.tanh(kappa) - 2.0,
        "r_sq_at_sigma_min": r0,
        "r_sq_extrapolated_to_0": float(extrap),
    }


def headline(res: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a :func:`variance_collapse` result (``summary.json``).

    Args:
        res: The result.

    Returns:
        The values of :data:`HEADLINE_KEYS`, in that order.
    """
    return {k: res[k] for k in HEADLINE_KEYS}
