r"""The von Mises-Fisher law on :math:`S^{D-1}`: normalisers, log-density, score, exact samplers.

vMF(μ, κ) has density :math:`q(z) = e^{\kappa\langle z, \mu\rangle}/\Psi_D(\kappa)` w.r.t. the
area of :math:`S^{D-1} \subset \mathbb{R}^D`, with
:math:`\Psi_D(a) = \int_{S^{D-1}} e^{a\langle e, z\rangle} dz = (2\pi)^{D/2}
I_{D/2-1}(a)/a^{D/2-1}` and mean resultant length
:math:`A_D(a) = E\langle z, \mu\rangle = I_{D/2}(a)/I_{D/2-1}(a)`.

* General D: :func:`log_vmf_partition`, :func:`vmf_mean_resultant`, :func:`vmf_kappa_from_mean`,
  :func:`vmf_score_sq_mean` (NumPy/SciPy float64), :func:`vmf_score` and :func:`sample_vmf`
  (torch; Wood 1994, inverse CDF on :math:`S^2`).
* :math:`S^2` (D = 3), where :math:`\Psi_3(\kappa) = 4\pi\sinh(\kappa)/\kappa` and the density is
  written :math:`\frac{\kappa}{2\pi(1 - e^{-2\kappa})}e^{\kappa(\langle x,\mu\rangle - 1)}`,
  stable for large κ: :func:`vmf_log_norm_s2` (float or Tensor), :func:`vmf_logp_s2` (NumPy),
  :func:`vmf_logp_s2_torch`, and the exact inverse-CDF samplers :func:`sample_vmf_s2` (NumPy,
  one concentration) and :func:`sample_vmf_rows` (torch, one concentration per row).
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy import special
from torch import Tensor

FloatArray = NDArray[np.float64]

#: Below this concentration :func:`log_vmf_partition` and :func:`vmf_mean_resultant` use their
#: series at 0 (and so should ratios such as :math:`A_D(a)/a \to 1/D`).
SMALL_CONCENTRATION = 1e-8


def log_vmf_partition(a: ArrayLike, D: int) -> FloatArray:
    """Log of :math:`\\Psi_D(a) = \\int_{S^{D-1}} e^{a\\langle e, z\\rangle} dz` (area measure).

    Args:
        a: Concentrations :math:`a \\ge 0`, any shape.
        D: Ambient dimension (the sphere is :math:`S^{D-1}`), D >= 2.

    Returns:
        Array of the same shape as ``a``.

    Raises:
        ValueError: If D < 2 or some a < 0.
    """
    if D < 2:
        raise ValueError(f"ambient dimension D must be >= 2, got {D}")
    a = np.asarray(a, dtype=np.float64)
    if np.any(a < 0):
        raise ValueError("concentrations must be >= 0")
    nu = 0.5 * D - 1.0
    log_area = math.log(2.0) + 0.5 * D * math.log(math.pi) - special.gammaln(0.5 * D)
    safe = np.maximum(a, SMALL_CONCENTRATION)
    big = (
        0.5 * D * math.log(2.0 * math.pi) + np.log(special.ive(nu, safe)) + safe - nu * np.log(safe)
    )
    # Series near 0: log Psi = log|S^{D-1}| + a^2 / (2D) + O(a^4).
    small = log_area + a * a / (2.0 * D)
    out: FloatArray = np.where(a < SMALL_CONCENTRATION, small, big)
    return out


def vmf_mean_resultant(a: ArrayLike, D: int) -> FloatArray:
    """Mean resultant length :math:`A_D(a) = I_{D/2}(a)/I_{D/2-1}(a) = E\\langle z, \\mu\\rangle`.

    Args:
        a: Concentrations :math:`a \\ge 0`, any shape.
        D: Ambient dimension (vMF on :math:`S^{D-1}`).

    Returns:
        Array of the same shape, values in [0, 1).
    """
    a = np.asarray(a, dtype=np.float64)
    safe = np.maximum(a, SMALL_CONCENTRATION)
    ratio = special.ive(0.5 * D, safe) / special.ive(0.5 * D - 1.0, safe)
    out: FloatArray = np.where(a < SMALL_CONCENTRATION, a / D, ratio)
    return out


def vmf_kappa_from_mean(mean: float, D: int) -> float:
    """Concentration κ whose vMF on :math:`S^{D-1}` has :math:`E\\langle z,\\mu\\rangle` = ``mean``.

    This is also the maximum-likelihood κ (known μ) of any law with that mean.

    Args:
        mean: Target mean of :math:`\\langle z, \\mu\\rangle`, in [0, 1).
        D: Ambient dimension.

    Returns:
        κ >= 0 (0 when mean <= 0).

    Raises:
        ValueError: If mean >= 1.
    """
    from scipy.optimize import brentq

    if mean >= 1.0:
        raise ValueError(f"mean of <z, mu> must be < 1, got {mean}")
    if mean <= 0.0:
        return 0.0
    hi = 1.0
    while float(vmf_mean_resultant(hi, D)) < mean:
        hi *= 2.0
    return float(brentq(lambda k: float(vmf_mean_resultant(k, D)) - mean, 0.0, hi, xtol=1e-13))


def vmf_score_sq_mean(kappa: float, d: int) -> float:
    """:math:`E|\\nabla_M \\log q|^2 = \\kappa^2(1 - E\\langle z,\\mu\\rangle^2)` under vMF(μ, κ)
    on S^d.

    On :math:`S^2` this is :math:`2\\kappa\\coth\\kappa - 2`. In general
    :math:`E\\langle z,\\mu\\rangle^2 = 1 - d A_D(\\kappa)/\\kappa`.

    Args:
        kappa: Concentration > 0.
        d: Sphere dimension.

    Returns:
        The expectation.
    """
    D = d + 1
    return float(kappa * d * vmf_mean_resultant(kappa, D))


def vmf_score(y: Tensor, mu: Tensor, kappa: float) -> Tensor:
    """Riemannian score :math:`\\nabla_M\\log q(y) = \\kappa P_y\\mu` of vMF(μ, κ).

    Args:
        y: Tensor, shape (B, D), points on the sphere.
        mu: Tensor, shape (D,), unit vector.
        kappa: Concentration.

    Returns:
        Tensor, shape (B, D).
    """
    m = (y * mu).sum(-1, keepdim=True)
    return kappa * (mu - m * y)


def sample_vmf(
    mu: Tensor, kappa: float, n: int, generator: torch.Generator | None = None
) -> Tensor:
    """Exact draws from vMF(μ, κ) on :math:`S^{D-1}` (Wood 1994; inverse CDF on :math:`S^2`).

    Args:
        mu: Tensor, shape (D,), unit mean direction (sets dtype and device).
        kappa: Concentration >= 0.
        n: Number of draws.
        generator: Random generator on mu's device.

    Returns:
        Tensor, shape (n, D).

    Raises:
        ValueError: If kappa < 0 or D < 2.
    """
    D = mu.shape[-1]
    if kappa < 0 or D < 2:
        raise ValueError(f"need kappa >= 0 and D >= 2, got kappa={kappa}, D={D}")
    dt, dev = mu.dtype, mu.device
    if kappa == 0:
        w = torch.randn(n, D, generator=generator, dtype=dt, device=dev)
        return w / w.norm(dim=-1, keepdim=True)
    if D == 3:
        u = torch.rand(n, generator=generator, dtype=dt, device=dev)
        w = 1.0 + torch.log(u + (1.0 - u) * math.exp(-2.0 * kappa)) / kappa
    else:
        dm1 = D - 1.0
        b = dm1 / (2.0 * kappa + math.sqrt(4.0 * kappa * kappa + dm1 * dm1))
        x0 = (1.0 - b) / (1.0 + b)
        c = kappa * x0 + dm1 * math.log(1.0 - x0 * x0)
        out = torch.empty(0, dtype=dt, device=dev)
        while out.shape[0] < n:
            k = 2 * (n - out.shape[0]) + 16
            zb = _beta_sample(0.5 * dm1, k, generator, mu)
            u = torch.rand(k, generator=generator, dtype=dt, device=dev)
            wk = (1.0 - (1.0 + b) * zb) / (1.0 - (1.0 - b) * zb)
            ok = kappa * wk + dm1 * torch.log(1.0 - x0 * wk) - c >= torch.log(u)
            out = torch.cat([out, wk[ok]])
        w = out[:n]
    v = torch.randn(n, D, generator=generator, dtype=dt, device=dev)
    v = v - (v @ mu)[:, None] * mu
    v = v / v.norm(dim=-1, keepdim=True)
    return w[:, None] * mu + torch.sqrt(torch.clamp(1.0 - w * w, min=0.0))[:, None] * v


def _beta_sample(a: float, n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
    """Symmetric Beta(a, a) draws from a seeded generator (via a chi-square ratio)."""
    k = max(1, round(2 * a))
    if abs(k - 2 * a) > 1e-12:
        raise ValueError(f"Beta(a, a) sampler needs 2a integer, got a={a}")
    g1 = torch.randn(n, k, generator=generator, dtype=like.dtype, device=like.device).pow(2).sum(-1)
    g2 = torch.randn(n, k, generator=generator, dtype=like.dtype, device=like.device).pow(2).sum(-1)
    return g1 / (g1 + g2)


@overload
def vmf_log_norm_s2(kappa: float) -> float: ...


@overload
def vmf_log_norm_s2(kappa: Tensor) -> Tensor: ...


def vmf_log_norm_s2(kappa: float | Tensor) -> float | Tensor:
    """Log of the vMF(κ) normaliser on S², :math:`\\log\\frac{\\kappa}{2\\pi(1 - e^{-2\\kappa})}`.

    This is :math:`\\log\\frac{\\kappa}{4\\pi\\sinh\\kappa} + \\kappa`, the normaliser of the
    density written as :math:`e^{\\kappa(\\langle x,\\mu\\rangle - 1)}`; stable for large κ.

    Args:
        kappa: Concentration > 0: a float, or a Tensor of any shape.

    Returns:
        A float for a float ``kappa`` (NumPy, ``log1p``), a Tensor of the same shape for a Tensor
        (torch, ``expm1``).
    """
    if isinstance(kappa, Tensor):
        return torch.log(kappa) - math.log(2 * math.pi) - torch.log(-torch.expm1(-2 * kappa))
    return float(np.log(kappa) - np.log(2.0 * np.pi) - np.log1p(-np.exp(-2.0 * kappa)))


def vmf_logp_s2(x: FloatArray, mu: FloatArray, kappa: float) -> FloatArray:
    """log-density of vMF(μ, κ) on S² w.r.t. area, stable for large κ.

    Args:
        x: Points, shape (N, 3).
        mu: Means, shape (K, 3).
        kappa: Concentration > 0.

    Returns:
        Array of shape (N, K).
    """
    # κ/(2π(1 − e^{−2κ})) · exp(κ(⟨x, μ⟩ − 1))
    return vmf_log_norm_s2(kappa) + kappa * (x @ mu.T - 1.0)


def vmf_logp_s2_torch(x: Tensor, mu: Tensor, kappa: Tensor) -> Tensor:
    """log-density of vMF(μ_k, κ_k) on S² w.r.t. area, per component, stable for large κ.

    Args:
        x: Tensor, shape (N, 3), points on S².
        mu: Tensor, shape (K, 3), mean directions.
        kappa: Tensor, shape (K,), concentrations > 0.

    Returns:
        Tensor, shape (N, K).
    """
    c = x @ mu.T
    return vmf_log_norm_s2(kappa) + kappa * (c - 1.0)


def sample_vmf_s2(mu: FloatArray, kappa: float, rng: np.random.Generator) -> FloatArray:
    """One vMF(μ_i, κ) draw per row of ``mu`` (exact inverse CDF of ⟨x, μ⟩).

    Args:
        mu: Means, shape (N, 3), unit vectors.
        kappa: Concentration > 0.
        rng: Random generator.

    Returns:
        Array of shape (N, 3) on S².
    """
    n = mu.shape[0]
    u = rng.uniform(size=n)
    # w = 1 + log(u + (1 − u) e^{−2κ}) / κ, written without cancellation for large κ.
    w = 1.0 + np.log(u + (1.0 - u) * np.exp(-2.0 * kappa)) / kappa
    w = np.clip(w, -1.0, 1.0)
    v = rng.normal(size=(n, 3))
    v -= np.sum(v * mu, axis=1, keepdims=True) * mu
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    x = w[:, None] * mu + np.sqrt(np.maximum(0.0, 1.0 - w**2))[:, None] * v
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def sample_vmf_rows(mu_rows: Tensor, kappa_rows: Tensor, generator: torch.Generator) -> Tensor:
    """One vMF(μ_i, κ_i) draw per row on S² (exact inverse CDF of ⟨x, μ⟩, uniform azimuth).

    Draws n uniforms, then an (n, 3) normal block, from ``generator``.

    Args:
        mu_rows: Tensor, shape (N, 3), unit mean directions (sets dtype and device).
        kappa_rows: Tensor, shape (N,), concentrations > 0.
        generator: Random generator on mu_rows' device.

    Returns:
        Tensor, shape (N, 3), points on S².
    """
    n = mu_rows.shape[0]
    dt, dev = mu_rows.dtype, mu_rows.device
    m, k = mu_rows, kappa_rows
    u = torch.rand(n, dtype=dt, device=dev, generator=generator)
    w = 1.0 + torch.log(u + (1.0 - u) * torch.exp(-2.0 * k)) / k  # ⟨x, μ⟩
    z = torch.randn(n, 3, dtype=dt, device=dev, generator=generator)
    z = z - (z * m).sum(-1, keepdim=True) * m
    z = z / z.norm(dim=-1, keepdim=True)
    return w[:, None] * m + torch.sqrt((1.0 - w * w).clamp_min(0.0))[:, None] * z
