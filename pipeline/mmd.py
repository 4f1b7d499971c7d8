"""Sample quality on S²: the kernel two-sample statistic (MMD) with the heat kernel.

The heat kernel of ½Δ on the unit sphere at heat time s,

    k_s(x, y) = Σ_l (2l + 1) / (4π) · exp(−l(l + 1) s / 2) · P_l(x · y),

is the transition density of Brownian motion (w.r.t. area), so it integrates to 1 in either
argument; every coefficient is positive, so it is a characteristic kernel on S² and
MMD_s(P, Q) = 0 only when P = Q. Its length scale is about √s radians (s = 0.01: ~6°;
s = 0.1: ~18°). The series is summed by the Legendre recurrence up to the degree where the
terms fall below ``1e-12`` of the first.

:func:`mmd2_unbiased` is the U-statistic estimate of MMD²; :func:`mmd_test` adds a
permutation p-value (the share of label permutations with a statistic at least as large).
Points are unit vectors, shape ``(N, 3)``; nothing here needs torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["MMDResult", "heat_kernel_matrix", "heat_kernel_s2", "mmd2_unbiased", "mmd_test"]

FloatArray = NDArray[np.float64]


def _max_degree(s: float, tol: float = 1e-12) -> int:
    """Smallest L with exp(−L(L + 1) s / 2) (2L + 1) < tol (at least 2)."""
    if s <= 0:
        raise ValueError(f"heat time must be > 0, got {s}")
    degree = 2
    while (2 * degree + 1) * math.exp(-degree * (degree + 1) * s / 2.0) >= tol:
        degree += 1
    return degree


def heat_kernel_s2(cos_angle: FloatArray, s: float) -> FloatArray:
    """k_s as a function of the cosine of the angle between the points.

    Args:
        cos_angle: ``x · y``, any shape, values in [−1, 1] (clipped).
        s: Heat time (> 0).

    Returns:
        The kernel values (per steradian), the same shape.
    """
    t = np.clip(np.asarray(cos_angle, dtype=np.float64), -1.0, 1.0)
    p_prev, p_cur = np.ones_like(t), t.copy()
    total = np.full_like(t, 1.0)  # l = 0
    total += 3.0 * math.exp(-s) * p_cur  # l = 1: exp(−1·2·s/2)
    for degree in range(2, _max_degree(s) + 1):
        p_prev, p_cur = p_cur, ((2 * degree - 1) * t * p_cur - (degree - 1) * p_prev) / degree
        total += (2 * degree + 1) * math.exp(-degree * (degree + 1) * s / 2.0) * p_cur
    return total / (4.0 * math.pi)


def heat_kernel_matrix(x: FloatArray, y: FloatArray, s: float) -> FloatArray:
    """``K[i, j] = k_s(x_i, y_j)`` for points of shapes ``(N, 3)`` and ``(M, 3)``."""
    return heat_kernel_s2(np.asarray(x, dtype=np.float64) @ np.asarray(y, dtype=np.float64).T, s)


def _mmd2_from_gram(gram: FloatArray, n: int) -> float:
    """Unbiased MMD² from the pooled Gram matrix, the first ``n`` rows being sample X."""
    kxx, kyy, kxy = gram[:n, :n], gram[n:, n:], gram[:n, n:]
    m = gram.shape[0] - n
    sum_xx = kxx.sum() - np.trace(kxx)
    sum_yy = kyy.sum() - np.trace(kyy)
    return float(sum_xx / (n * (n - 1)) + sum_yy / (m * (m - 1)) - 2.0 * kxy.mean())


def mmd2_unbiased(x: FloatArray, y: FloatArray, s: float) -> float:
    """Unbiased estimate of MMD²_s between the laws of two samples (can be slightly < 0).

    Args:
        x: Sample of P, shape ``(N, 3)``, N ≥ 2.
        y: Sample of Q, shape ``(M, 3)``, M ≥ 2.
        s: Heat time of the kernel.

    Raises:
        ValueError: On samples with fewer than two points or not of shape ``(·, 3)``.
    """
    x, y = _check(x, "x"), _check(y, "y")
    pooled = np.concatenate([x, y])
    return _mmd2_from_gram(heat_kernel_matrix(pooled, pooled, s), len(x))


@dataclass(frozen=True)
class MMDResult:
    """A two-sample test.

    Attributes:
        s: Heat time of the kernel.
        mmd2: Unbiased MMD² estimate.
        p_value: Permutation p-value, ``(1 + #{perm ≥ observed}) / (1 + n_permutations)``.
        n_permutations: Number of label permutations.
    """

    s: float
    mmd2: float
    p_value: float
    n_permutations: int


def mmd_test(
    x: FloatArray, y: FloatArray, s: float, n_permutations: int = 500, seed: int = 0
) -> MMDResult:
    """MMD² of two samples with a permutation p-value (H0: both come from one law).

    Args:
        x: Sample of P, shape ``(N, 3)``.
        y: Sample of Q, shape ``(M, 3)``.
        s: Heat time of the kernel.
        n_permutations: Label permutations for the null distribution.
        seed: Seed of the permutations.

    Returns:
        The :class:`MMDResult`.
    """
    x, y = _check(x, "x"), _check(y, "y")
    pooled = np.concatenate([x, y])
    gram = heat_kernel_matrix(pooled, pooled, s)
    n = len(x)
    observed = _mmd2_from_gram(gram, n)
    rng = np.random.default_rng(seed)
    exceed = 0
    for _ in range(n_permutations):
        perm = rng.permutation(len(pooled))
        if _mmd2_from_gram(gram[np.ix_(perm, perm)], n) >= observed:
            exceed += 1
    return MMDResult(s, observed, (1 + exceed) / (1 + n_permutations), n_permutations)


def _check(points: FloatArray, name: str) -> FloatArray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 2:
        raise ValueError(f"{name} must have shape (N, 3) with N >= 2, got {arr.shape}")
    return arr
