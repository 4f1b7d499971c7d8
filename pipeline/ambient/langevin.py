"""Langevin equilibria on :math:`S^d` for zonal drifts, by quadrature.

A zonal drift is :math:`b(z) = \\varphi'(m) P_z\\mu` with :math:`m = \\langle z, \\mu\\rangle`;
since
:math:`\\nabla_M m = P_z\\mu` it is the gradient of :math:`\\Phi(m) = \\int_1^m \\varphi'`, so the
Langevin diffusion :math:`dZ = b\\,dt + \\sqrt2\\, dB^M` has the equilibrium
:math:`p(z) \\propto e^{\\Phi(m)}`, whose law in m is
:math:`\\propto e^{\\Phi(m)}(1 - m^2)^{(d-2)/2}` on [-1, 1] (one-dimensional quadrature).

The same equilibria by simulation: :mod:`pipeline.ambient.langevin_simulation`.

Drifts compared in seed 002 (vMF(μ, κ) data): the true score (:math:`\\varphi' = \\kappa`), the
Rao-Blackwellized target :math:`r_\\sigma` (:math:`\\varphi' = \\kappa g_\\sigma(m)`, see
:mod:`pipeline.ambient.posterior`) and its corrected form :math:`(1 - c\\sigma^2) r_\\sigma` with
:math:`c = 1 - d/2`. Also the heat-smoothed law (vMF run under :math:`\\tfrac12\\Delta` for heat
time :math:`s = \\sigma^2`), whose mean is exactly :math:`A_{d+1}(\\kappa)e^{-ds/2}`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.polynomial import chebyshev as cheb
from scipy import special
from torch import Tensor

from pipeline.ambient.posterior import FloatArray, fiber_moments, radial_quadrature
from pipeline.geometry.vmf import vmf_kappa_from_mean, vmf_mean_resultant


@dataclass(frozen=True)
class ZonalDrift:
    """Zonal gradient drift :math:`b(z) = \\varphi'(m) P_z\\mu`, with φ' a Chebyshev series on [-1,
    1].

    Attributes:
        coeffs: Array, shape (K,), Chebyshev coefficients of φ'.
        name: Label for reports.
    """

    coeffs: FloatArray
    name: str = ""
    # Tables of phi_prime_torch per (size, dtype, device), owned by this drift: a module-level
    # cache keyed on id(self) handed a freed drift's table to a new one that reused its id.
    _tables: dict[tuple[object, ...], Tensor] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_function(
        cls, f: Callable[[FloatArray], FloatArray], degree: int = 96, name: str = ""
    ) -> ZonalDrift:
        """Chebyshev interpolant of a smooth function φ' on [-1, 1].

        Args:
            f: Vectorised φ'(m).
            degree: Polynomial degree.
            name: Label.

        Returns:
            The drift.
        """
        poly = cheb.Chebyshev.interpolate(f, degree)
        return cls(np.asarray(poly.coef, dtype=np.float64), name)

    def phi_prime(self, m: FloatArray) -> FloatArray:
        """φ'(m), NumPy.

        Args:
            m: Array of values in [-1, 1].

        Returns:
            Array, same shape.
        """
        out: FloatArray = np.asarray(cheb.chebval(m, self.coeffs), dtype=np.float64)
        return out

    def potential(self, m: FloatArray) -> FloatArray:
        """:math:`\\Phi(m) = \\int_1^m \\varphi'(u) du`.

        Args:
            m: Array of values in [-1, 1].

        Returns:
            Array, same shape.
        """
        integ = cheb.chebint(self.coeffs)
        out: FloatArray = cheb.chebval(m, integ) - cheb.chebval(1.0, integ)
        return out

    def phi_prime_torch(self, m: Tensor, table_size: int = 4097) -> Tensor:
        """φ'(m) in torch, by linear interpolation in a table of the Chebyshev series.

        The table (``table_size`` uniform nodes on [-1, 1], kept by the drift per dtype and
        device) makes one evaluation a handful of tensor ops; the interpolation error is
        :math:`\\le \\max|\varphi''|\\,\\Delta^2/8` with :math:`\\Delta = 2/(\text{table\\_size} -
        1)`.

        Args:
            m: Tensor of values in [-1, 1], any shape.
            table_size: Number of table nodes.

        Returns:
            Tensor, same shape and dtype.
        """
        key = (table_size, m.dtype, m.device)
        table = self._tables.get(key)
        if table is None:
            grid = np.linspace(-1.0, 1.0, table_size)
            table = torch.as_tensor(self.phi_prime(grid), dtype=m.dtype, device=m.device)
            self._tables[key] = table
        pos = (m.clamp(-1.0, 1.0) + 1.0) * (0.5 * (table_size - 1))
        idx = pos.floor().clamp(max=table_size - 2)
        frac = pos - idx
        i = idx.long()
        return table[i] * (1.0 - frac) + table[i + 1] * frac

    def __call__(self, z: Tensor, mu: Tensor) -> Tensor:
        """Evaluate the drift vector.

        Args:
            z: Tensor, shape (B, D), points on the sphere.
            mu: Tensor, shape (D,).

        Returns:
            Tensor, shape (B, D), tangent vectors.
        """
        m = (z @ mu).clamp(-1.0, 1.0)
        return self.phi_prime_torch(m)[:, None] * (mu - m[:, None] * z)


def constant_drift(kappa: float, name: str = "true") -> ZonalDrift:
    """Drift of the true vMF score, :math:`\\varphi' = \\kappa`.

    Args:
        kappa: Concentration.
        name: Label.

    Returns:
        The drift.
    """
    return ZonalDrift(np.array([kappa], dtype=np.float64), name)


def rb_drift(
    kappa: float,
    sigma: float,
    d: int,
    corrected: bool,
    degree: int = 96,
    curvature_coeff: float | None = None,
) -> ZonalDrift:
    """Drift of the exact RB target :math:`r_\\sigma` (optionally corrected) for vMF(μ, κ) on S^d.

    Args:
        kappa: Concentration.
        sigma: Ambient noise level.
        d: Sphere dimension.
        corrected: Multiply by :math:`1 - c\\sigma^2` (the post-hoc correction).
        degree: Chebyshev degree of φ'.
        curvature_coeff: c (default :math:`1 - d/2`).

    Returns:
        The drift.
    """
    c = 1.0 - 0.5 * d if curvature_coeff is None else curvature_coeff
    rule = radial_quadrature(sigma, d, kappa)
    factor = 1.0 - c * sigma * sigma if corrected else 1.0

    def f(m: FloatArray) -> FloatArray:
        out: FloatArray = kappa * factor * fiber_moments(m, kappa, sigma, d, rule).g
        return out

    return ZonalDrift.from_function(f, degree, "rb_corrected" if corrected else "rb")


@dataclass(frozen=True)
class EquilibriumStats:
    """Summary of a zonal law on :math:`S^d`.

    Attributes:
        mean: :math:`E\\langle z,\\mu\\rangle`.
        second_moment: :math:`E\\langle z,\\mu\\rangle^2`.
        kappa_eff: Concentration of the vMF with the same mean (maximum-likelihood vMF fit).
    """

    mean: float
    second_moment: float
    kappa_eff: float


def zonal_stats(
    log_density: Callable[[FloatArray], FloatArray], d: int, n: int = 160
) -> EquilibriumStats:
    """Moments of the zonal law :math:`\\propto e^{\\ell(m)}(1-m^2)^{(d-2)/2}` by Gauss-Jacobi
    quadrature.

    Args:
        log_density: Unnormalised log density ℓ(m) w.r.t. the area (vectorised).
        d: Sphere dimension >= 1.
        n: Number of nodes.

    Returns:
        The statistics.
    """
    alpha = 0.5 * (d - 2)
    x, w = special.roots_jacobi(n, alpha, alpha)
    lp = log_density(x)
    p = w * np.exp(lp - lp.max())
    p = p / p.sum()
    mean = float(np.sum(p * x))
    return EquilibriumStats(mean, float(np.sum(p * x * x)), vmf_kappa_from_mean(mean, d + 1))


def equilibrium_quadrature(drift: ZonalDrift, d: int, n: int = 160) -> EquilibriumStats:
    """Exact equilibrium statistics of the Langevin diffusion with a zonal drift.

    Args:
        drift: The drift.
        d: Sphere dimension.
        n: Number of Gauss-Jacobi nodes.

    Returns:
        The statistics.
    """
    return zonal_stats(drift.potential, d, n)


def heat_smoothed_log_density(
    m: FloatArray, kappa: float, d: int, s: float, l_max: int = 200
) -> FloatArray:
    """Log density (up to a constant) of vMF(μ, κ) on :math:`S^d` after heat time s under ½Δ.

    Gegenbauer expansion, :math:`\\lambda = (d-1)/2`:
    :math:`e^{\\kappa m} \\propto \\sum_l (l+\\lambda) I_{l+\\lambda}(\\kappa) C^{\\lambda}_l(m)`
    and
    the degree-l part decays by :math:`e^{-l(l+d-1)s/2}` (for d = 1, cosines
    :math:`\\cos(l\\theta)`).

    Args:
        m: Array of values in [-1, 1].
        kappa: Concentration > 0.
        d: Sphere dimension >= 1.
        s: Heat time >= 0.
        l_max: Largest degree kept.

    Returns:
        Array, same shape as m.

    Raises:
        ValueError: If the truncated series is not positive at some m (l_max too small).
    """
    m = np.asarray(m, dtype=np.float64)
    ls = np.arange(l_max + 1)
    if d == 1:
        coef = special.ive(ls, kappa) * np.where(ls == 0, 1.0, 2.0)
        basis = np.cos(ls[:, None] * np.arccos(np.clip(m, -1.0, 1.0))[None, :].reshape(1, -1))
    else:
        lam = 0.5 * (d - 1)
        coef = (ls + lam) * special.ive(ls + lam, kappa)
        basis = np.stack([special.eval_gegenbauer(int(k), lam, m.ravel()) for k in ls])
    coef = coef * np.exp(-0.5 * ls * (ls + d - 1) * s)
    val = (coef[:, None] * basis).sum(0).reshape(m.shape)
    if np.any(val <= 0):
        raise ValueError("heat-smoothed vMF series is not positive; increase l_max")
    out: FloatArray = np.log(val)
    return out


def heat_smoothed_stats(kappa: float, d: int, s: float, n: int = 160) -> EquilibriumStats:
    """Statistics of the heat-smoothed vMF (the law whose score the corrected target approximates).

    Args:
        kappa: Concentration.
        d: Sphere dimension.
        s: Heat time (:math:`\\sigma^2`).
        n: Quadrature nodes.

    Returns:
        The statistics (the mean equals :math:`A_{d+1}(\\kappa)e^{-ds/2}` exactly).
    """
    return zonal_stats(lambda m: heat_smoothed_log_density(m, kappa, d, s), d, n)


def heat_smoothed_mean(kappa: float, d: int, s: float) -> float:
    """Closed form :math:`E_s\\langle z,\\mu\\rangle = A_{d+1}(\\kappa)e^{-ds/2}` (m is a Laplace
    eigenfunction).

    Args:
        kappa: Concentration.
        d: Sphere dimension.
        s: Heat time.

    Returns:
        The mean.
    """
    return float(vmf_mean_resultant(kappa, d + 1)) * math.exp(-0.5 * d * s)
