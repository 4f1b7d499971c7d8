"""Rao-Blackwellized target :math:`r_\\sigma` for a von Mises-Fisher prior on :math:`S^d`, by
quadrature.

Setting (seed 002): :math:`Z \\sim q = \\mathrm{vMF}(\\mu, \\kappa)` on :math:`S^d \\subset
\\mathbb{R}^D`
(D = d + 1, density w.r.t. area), :math:`X = Z + \\sigma\\xi`, :math:`y = \\pi(X) = X/|X|` and the
tangent target :math:`T_\\sigma = P_y(Z - X)/\\sigma^2 = P_y Z/\\sigma^2` (since :math:`P_y X = 0`).

Reduction used here. Write :math:`X = \\rho y` (:math:`\\rho > 0`, Jacobian :math:`\\rho^d`).

* Given X, the posterior of Z is again von Mises-Fisher, with natural parameter
  :math:`v = \\kappa\\mu + X/\\sigma^2`, so :math:`E[Z | X] = A_D(|v|)\\, v/|v|` with
  :math:`A_D(a) = I_{D/2}(a)/I_{D/2-1}(a)` and :math:`E[ZZ^T|X]` is known in closed form.
* Given the direction y, the radius has density
  :math:`p(\\rho | y) \\propto \\rho^d e^{-\\rho^2/(2\\sigma^2)}\\, \\Psi_D(|v_\\rho|)` with
  :math:`v_\\rho = \\kappa\\mu + \\rho y/\\sigma^2` and
  :math:`\\Psi_D(a) = \\int_{S^d} e^{a\\langle e, z\\rangle} dz = (2\\pi)^{D/2}
  I_{D/2-1}(a)/a^{D/2-1}`.

Hence, with :math:`m = \\langle y, \\mu \\rangle` and :math:`P_y v_\\rho = \\kappa P_y \\mu`,

.. math:: r_\\sigma(y) = E[T_\\sigma | \\pi(X) = y] = \\kappa P_y\\mu \\; g_\\sigma(m),
   \\qquad g_\\sigma(m) = \\sigma^{-2} E_{\\rho | y}[A_D(a_\\rho)/a_\\rho],

a one-dimensional quadrature in ρ (composite Gauss-Legendre), exact up to quadrature error. It
is a gradient field: :math:`r_\\sigma = \\nabla_M \\Phi(m)` with :math:`\\Phi' = \\kappa g_\\sigma`.
The same ρ-integral gives :math:`E[|T_\\sigma|^2 | y]` and the density of π(X) on :math:`S^d`.

The vMF law itself (:math:`\\Psi_D`, :math:`A_D`, score, exact sampler) is
:mod:`pipeline.geometry.vmf`. The quadrature here is NumPy/SciPy float64 (reference computations,
not model code); :func:`rb_target_vmf` and the torus/circle helpers take and return torch tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy import special
from torch import Tensor

from pipeline.geometry.vmf import SMALL_CONCENTRATION, log_vmf_partition, vmf_mean_resultant
from pipeline.numerics import composite_gauss_legendre

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class RadialQuadrature:
    """Composite Gauss-Legendre rule on :math:`\\rho \\in [0, \\rho_{hi}]` for the fiber integral.

    Attributes:
        nodes: Array, shape (Q,).
        weights: Array, shape (Q,).
    """

    nodes: FloatArray
    weights: FloatArray


def radial_quadrature(
    sigma: float, d: int, kappa: float, panels_per_sigma: float = 2.0, order: int = 8
) -> RadialQuadrature:
    """Quadrature for :math:`\\int_0^\\infty (\\cdot)\\, d\\rho` against :math:`p(\\rho | y)`.

    The radius posterior peaks near :math:`\\rho^* = (1 + \\sqrt{1 + 4d\\sigma^2})/2` with width
    about σ; the rule covers :math:`[0, \\rho^* + \\kappa\\sigma^2 + 14\\sigma]` with panels of
    width
    σ / ``panels_per_sigma`` and ``order`` Gauss-Legendre nodes each.

    Args:
        sigma: Noise level > 0.
        d: Sphere dimension.
        kappa: vMF concentration (shifts the peak by at most κσ²).
        panels_per_sigma: Panels per σ.
        order: Nodes per panel.

    Returns:
        The rule.

    Raises:
        ValueError: If sigma <= 0.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    rho_star = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * d * sigma * sigma))
    hi = rho_star + abs(kappa) * sigma * sigma + 14.0 * sigma
    n_panels = max(4, math.ceil(hi / (sigma / panels_per_sigma)))
    nodes, weights = composite_gauss_legendre(np.linspace(0.0, hi, n_panels + 1), order)
    return RadialQuadrature(nodes.ravel(), weights.ravel())


@dataclass(frozen=True)
class FiberMoments:
    """Conditional moments of the vMF ambient-noise model given :math:`\\pi(X) = y`.

    All arrays have the shape of the ``m`` that was passed.

    Attributes:
        m: :math:`\\langle y, \\mu \\rangle`.
        g: :math:`g_\\sigma(m)`, with :math:`r_\\sigma(y) = \\kappa g_\\sigma(m) P_y\\mu`.
        t_sq: :math:`E[|T_\\sigma|^2 | \\pi(X) = y]`.
        log_density: log density of π(X) at y w.r.t. the area of :math:`S^d`.
    """

    m: FloatArray
    g: FloatArray
    t_sq: FloatArray
    log_density: FloatArray


def fiber_moments(
    m: ArrayLike, kappa: float, sigma: float, d: int, rule: RadialQuadrature | None = None
) -> FiberMoments:
    """Posterior quadrature over the fiber :math:`\\{\\rho y\\}` (see the module docstring).

    Args:
        m: :math:`\\langle y, \\mu\\rangle` values in [-1, 1], any shape.
        kappa: vMF concentration >= 0.
        sigma: Ambient noise level > 0.
        d: Sphere dimension >= 1.
        rule: Radial quadrature (default :func:`radial_quadrature`).

    Returns:
        The moments.

    Raises:
        ValueError: If d < 1 or m is outside [-1, 1].
    """
    if d < 1:
        raise ValueError(f"sphere dimension must be >= 1, got {d}")
    m_arr = np.asarray(m, dtype=np.float64)
    if np.any(np.abs(m_arr) > 1.0 + 1e-12):
        raise ValueError("m = <y, mu> must lie in [-1, 1]")
    m_arr = np.clip(m_arr, -1.0, 1.0)
    D = d + 1
    q = rule if rule is not None else radial_quadrature(sigma, d, kappa)
    s2 = sigma * sigma
    rho = q.nodes.reshape((1,) * m_arr.ndim + (-1,))
    mm = m_arr[..., None]
    # |v_rho|^2 with v_rho = kappa mu + rho y / sigma^2.
    a2 = kappa * kappa + 2.0 * kappa * rho * mm / s2 + (rho / s2) ** 2
    a = np.sqrt(np.maximum(a2, 0.0))
    # log p(rho, y) w.r.t. d rho x area(y) (normalised joint density of (|X|, pi(X))).
    log_joint = (
        d * np.log(rho)
        - 0.5 * D * math.log(2.0 * math.pi * s2)
        - (rho * rho + 1.0) / (2.0 * s2)
        + log_vmf_partition(a, D)
        - float(log_vmf_partition(kappa, D))
    )
    log_w = log_joint + np.log(q.weights)
    top = np.max(log_w, axis=-1, keepdims=True)
    w = np.exp(log_w - top)
    norm = np.sum(w, axis=-1)
    w = w / norm[..., None]
    log_density: FloatArray = np.log(norm) + top[..., 0]
    A = vmf_mean_resultant(a, D)
    a_safe = np.maximum(a, SMALL_CONCENTRATION)
    ratio = np.where(a < SMALL_CONCENTRATION, 1.0 / D, A / a_safe)  # A_D(a)/a, -> 1/D at 0
    g: FloatArray = np.sum(w * ratio, axis=-1) / s2
    # E[|P_y Z|^2 | X] = d A/a + (1 - <n, y>^2)(1 - D A/a), 1 - <n,y>^2 = kappa^2 (1-m^2)/a^2.
    perp = np.where(a2 > 0, kappa * kappa * (1.0 - mm * mm) / np.maximum(a2, 1e-300), 0.0)
    pz2 = d * ratio + perp * (1.0 - D * ratio)
    t_sq: FloatArray = np.sum(w * pz2, axis=-1) / (s2 * s2)
    return FiberMoments(m_arr, g, t_sq, log_density)


def rb_target_vmf(
    y: Tensor, mu: Tensor, kappa: float, sigma: float, rule: RadialQuadrature | None = None
) -> Tensor:
    """Exact Rao-Blackwellized target :math:`r_\\sigma(y)` for vMF(μ, κ) on :math:`S^d`.

    Args:
        y: Tensor, shape (B, D), points on :math:`S^d`.
        mu: Tensor, shape (D,), unit mean direction.
        kappa: Concentration.
        sigma: Noise level.
        rule: Radial quadrature (optional).

    Returns:
        Tensor, shape (B, D), tangent vectors at y (same dtype/device as y).
    """
    d = y.shape[-1] - 1
    m = (y * mu).sum(-1)
    mom = fiber_moments(m.detach().cpu().double().numpy(), kappa, sigma, d, rule)
    g = torch.as_tensor(mom.g, dtype=y.dtype, device=y.device)
    p_mu = mu - m[:, None] * y
    return kappa * g[:, None] * p_mu


def raw_tangent_factor_vmf(m: ArrayLike, kappa: float, sigma: float, d: int) -> FloatArray:
    """Tangent part, at a manifold point, of the exact raw-target regression function.

    At X = y on :math:`S^d` (|X| = 1) the posterior of Z is vMF with parameter
    :math:`v = \\kappa\\mu + y/\\sigma^2`, so
    :math:`P_y E[(Z - X)/\\sigma^2 | X = y] = \\kappa P_y\\mu\\; h_\\sigma(m)` with
    :math:`h_\\sigma = A_D(|v|)/(|v|\\sigma^2) = 1 - \\sigma^2(d/2 + \\kappa m) + o(\\sigma^2)`:
    the heat-smoothing bias :math:`b_q` only, no extrinsic term (compare :math:`g_\\sigma`, which
    averages over the fiber).

    Args:
        m: :math:`\\langle y,\\mu\\rangle`, any shape.
        kappa: Concentration.
        sigma: Noise level > 0.
        d: Sphere dimension.

    Returns:
        Array :math:`h_\\sigma(m)`, same shape.
    """
    m_arr = np.asarray(m, dtype=np.float64)
    s2 = sigma * sigma
    a = np.sqrt(kappa * kappa + 2.0 * kappa * m_arr / s2 + 1.0 / (s2 * s2))
    out: FloatArray = vmf_mean_resultant(a, d + 1) / (a * s2)
    return out


def rb_expansion_coefficient(m: ArrayLike, kappa: float, d: int) -> FloatArray:
    """Predicted σ² coefficient of :math:`g_\\sigma`: :math:`g_\\sigma = 1 + \\sigma^2 c(m) +
    o(\\sigma^2)`.

    From seed 002's expansion :math:`r_\\sigma = \\nabla\\log q + \\sigma^2(b_q + g_{ext})` with
    :math:`\\log q = \\kappa m`, :math:`\\Delta m = -d\\,m`: :math:`b_q = -(d/2 + \\kappa
    m)\\nabla\\log q`
    and :math:`g_{ext} = (1 - d/2)\\nabla\\log q`, so :math:`c(m) = 1 - d - \\kappa m`.

    Args:
        m: :math:`\\langle y,\\mu\\rangle`.
        kappa: Concentration.
        d: Sphere dimension.

    Returns:
        Array of c(m).
    """
    out: FloatArray = 1.0 - d - kappa * np.asarray(m, dtype=np.float64)
    return out


def sphere_marginal_expectation(
    f: Callable[[FloatArray], FloatArray],
    log_density: Callable[[FloatArray], FloatArray],
    d: int,
    n: int = 96,
) -> float:
    """:math:`\\int_{S^d} f(\\langle y,\\mu\\rangle) p(y) dy` for zonal f and p, by Gauss-Jacobi in
    m.

    Uses :math:`dy = |S^{d-1}| (1 - m^2)^{(d-2)/2} dm` (d >= 2) or two points per m (d = 1,
    :math:`dy = 2(1-m^2)^{-1/2} dm`).

    Args:
        f: Vectorised function of m.
        log_density: Vectorised log density of the zonal law, function of m.
        d: Sphere dimension >= 1.
        n: Number of nodes.

    Returns:
        The integral.
    """
    alpha = 0.5 * (d - 2)
    x, w = special.roots_jacobi(n, alpha, alpha)
    if d == 1:
        area_lower = 2.0  # S^0 has two points
    else:
        area_lower = 2.0 * math.pi ** (0.5 * d) / math.gamma(0.5 * d)
    return float(area_lower * np.sum(w * np.exp(log_density(x)) * f(x)))


def log_circle_fiber_kernel(c: Tensor, sigma: float) -> Tensor:
    """Log of the fiber integral of one unit circle, :math:`\\int_0^\\infty \\rho\\, e^{-(\\rho^2 -
    2\\rho c)/(2\\sigma^2)} d\\rho`.

    Closed form :math:`\\sigma^2 + c\\sigma\\sqrt{2\\pi}\\,\\Phi(c/\\sigma)e^{c^2/(2\\sigma^2)}`;
    evaluated as
    :math:`c^2/(2\\sigma^2) + \\log(\\sigma^2 e^{-c^2/(2\\sigma^2)} +
    c\\sigma\\sqrt{2\\pi}\\Phi(c/\\sigma))`, valid
    (no cancellation) for c >= 0.

    Args:
        c: Tensor of cosines :math:`\\langle y_i, z_i\\rangle \\ge 0`, any shape.
        sigma: Noise level.

    Returns:
        Tensor, same shape.

    Raises:
        ValueError: If some c < 0.
    """
    if bool((c < 0).any()):
        raise ValueError(
            "circle fiber kernel is evaluated for c >= 0 only (posterior window too wide)"
        )
    s2 = sigma * sigma
    inner = s2 * torch.exp(-c * c / (2.0 * s2)) + c * sigma * math.sqrt(
        2.0 * math.pi
    ) * torch.special.ndtr(c / sigma)
    return c * c / (2.0 * s2) + torch.log(inner)


def torus_rb_target_grid(
    phi: Tensor,
    log_q: Callable[[Tensor], Tensor],
    sigma: float,
    half_width: float = 12.0,
    n_grid: int = 121,
) -> Tensor:
    """Exact RB target :math:`r_\\sigma` on the flat torus :math:`(S^1)^2 \\subset \\mathbb{R}^4`,
    by quadrature.

    The Gaussian noise in :math:`\\mathbb{R}^4` is independent on the two :math:`\\mathbb{R}^2`
    blocks, π
    normalises each block and the fiber over y is :math:`\\{(\\rho_1 y_1, \\rho_2 y_2)\\}` with
    Jacobian
    :math:`\\rho_1\\rho_2`, so the posterior of the angles θ of Z given the angles φ of π(X) is
    :math:`\\propto q(\\theta) K(\\cos(\\theta_1 - \\varphi_1)) K(\\cos(\\theta_2 - \\varphi_2))`
    with K from
    :func:`log_circle_fiber_kernel`, for any density q (not only products). The tangent target in
    angle coordinates is :math:`\\sin(\\theta_i - \\varphi_i)/\\sigma^2`. Trapezoid rule on
    :math:`\\theta_i \\in \\varphi_i \\pm` ``half_width`` σ.

    Args:
        phi: Tensor, shape (B, 2), angles of π(X).
        log_q: Unnormalised log density of Z in angles, (..., 2) -> (...), w.r.t. the flat area.
        sigma: Noise level (``half_width * sigma`` must be < π/2).
        half_width: Window half-width in units of σ.
        n_grid: Grid points per angle.

    Returns:
        Tensor, shape (B, 2), :math:`r_\\sigma` in angle coordinates (components along
        :math:`\\partial_{\\theta_1}, \\partial_{\\theta_2}`, which are orthonormal).

    Raises:
        ValueError: If the window reaches π/2.
    """
    if half_width * sigma >= 0.5 * math.pi:
        raise ValueError(f"window {half_width}*sigma = {half_width * sigma:.3f} must be < pi/2")
    delta = torch.linspace(
        -half_width * sigma, half_width * sigma, n_grid, dtype=phi.dtype, device=phi.device
    )
    d1, d2 = torch.meshgrid(delta, delta, indexing="ij")
    dd = torch.stack([d1.reshape(-1), d2.reshape(-1)], dim=-1)  # (G, 2)
    theta = phi[:, None, :] + dd[None, :, :]  # (B, G, 2)
    log_k = log_circle_fiber_kernel(torch.cos(dd), sigma).sum(-1)  # (G,)
    log_w = log_q(theta) + log_k[None, :]
    w = torch.softmax(log_w, dim=-1)  # trapezoid weights are uniform up to the negligible ends
    return (w[..., None] * torch.sin(dd)[None, :, :]).sum(1) / (sigma * sigma)
