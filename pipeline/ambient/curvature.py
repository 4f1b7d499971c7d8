"""The operator :math:`\\tfrac12 W_H - \\mathrm{Ric}^\\sharp` of an embedded manifold, numerically.

For an embedded :math:`M \\subset \\mathbb{R}^D` with tangent projector :math:`P(z)` (extended to a
neighbourhood of M, e.g. :math:`P_{\\pi(x)}`), differentiating :math:`P^2 = P` along a tangent
direction u shows that :math:`(D_u P)v` is normal for tangent v, and it is the second fundamental
form: :math:`II(u, v) = (D_u P)\\,v`. From it (orthonormal tangent basis :math:`e_i`, normal basis
:math:`n_\\alpha`): mean curvature :math:`H = \\sum_i II(e_i, e_i)`, Weingarten maps
:math:`\\langle W_\\nu u, v\\rangle = \\langle II(u, v), \\nu\\rangle`, and by the Gauss equation
:math:`\\mathrm{Ric}^\\sharp = W_H - \\sum_\\alpha W_{n_\\alpha}^2`. Sign convention as in seed 002:
on the unit sphere :math:`II(u, v) = -\\langle u, v\\rangle z`, :math:`W_z = -\\mathrm{Id}`.

Closed forms checked in the tests: :math:`S^d`: :math:`(1 - d/2)\\mathrm{Id}`; flat torus of unit
circles in :math:`\\mathbb{R}^{2n}`: :math:`+\\tfrac12\\mathrm{Id}`; torus of revolution in
:math:`\\mathbb{R}^3` (principal curvatures :math:`k_1 = 1/r`, :math:`k_2 = \\cos\\varphi/(R +
r\\cos\\varphi)`):
:math:`\\mathrm{diag}(\\tfrac12 k_1(k_1 - k_2), \\tfrac12 k_2(k_2 - k_1))`, not a multiple of Id.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import jacfwd

from pipeline.geometry.manifold import Manifold

Projector = Callable[[Tensor], Tensor]
"""``P(x)``: ambient point, shape (D,), to the D x D tangent projector at π(x)."""


@dataclass(frozen=True)
class CurvatureOperators:
    """Curvature operators at one point, in an orthonormal tangent basis.

    Attributes:
        tangent_basis: Tensor, shape (D, d), orthonormal columns spanning :math:`T_zM`.
        normal_basis: Tensor, shape (D, D - d), orthonormal columns spanning :math:`N_zM`.
        second_fundamental_form: Tensor, shape (d, d, D), :math:`II(e_i, e_j)`.
        mean_curvature: Tensor, shape (D,), H.
        weingarten_h: Tensor, shape (d, d), :math:`W_H`.
        ricci: Tensor, shape (d, d), :math:`\\mathrm{Ric}^\\sharp` (Gauss equation).
        operator: Tensor, shape (d, d), :math:`\\tfrac12 W_H - \\mathrm{Ric}^\\sharp`.
    """

    tangent_basis: Tensor
    normal_basis: Tensor
    second_fundamental_form: Tensor
    mean_curvature: Tensor
    weingarten_h: Tensor
    ricci: Tensor
    operator: Tensor


def manifold_projector(manifold: Manifold) -> Projector:
    """Tangent projector field :math:`x \\mapsto P_{\\pi(x)}` of a manifold, as a D x D matrix.

    Args:
        manifold: Manifold with ``projx`` and ``proju``.

    Returns:
        Callable mapping x (D,) to P (D, D).
    """

    def proj(x: Tensor) -> Tensor:
        D = x.shape[-1]
        y = manifold.projx(x)
        eye = torch.eye(D, dtype=x.dtype, device=x.device)
        # Row k is P e_k; P is symmetric.
        return manifold.proju(y.expand(D, D), eye)

    return proj


def curvature_operators(projector: Projector, z: Tensor, dim: int) -> CurvatureOperators:
    """Second fundamental form, :math:`W_H`, Ricci and :math:`\\tfrac12W_H - \\mathrm{Ric}^\\sharp`
    at z.

    The derivative of the projector is taken with forward-mode autodiff.

    Args:
        projector: Tangent projector field (see :data:`Projector`).
        z: Tensor, shape (D,), a point on M (float64 recommended).
        dim: Intrinsic dimension d.

    Returns:
        The operators.

    Raises:
        ValueError: If the projector's rank at z is not ``dim``.
    """
    P = projector(z)
    evals, evecs = torch.linalg.eigh(0.5 * (P + P.T))
    D = z.shape[-1]
    rank = int((evals > 0.5).sum())
    if rank != dim:
        raise ValueError(f"projector at z has rank {rank}, expected intrinsic dimension {dim}")
    normal = evecs[:, : D - dim]
    tangent = evecs[:, D - dim :]
    dP = jacfwd(projector)(z)  # (D, D, D): dP[a, b, k] = dP_ab / dx_k
    # D_u P for u = e_i: sum_k e_i[k] dP[:, :, k]  -> (d, D, D)
    dPu = torch.einsum("abk,ki->iab", dP, tangent)
    second = torch.einsum("iab,bj->ija", dPu, tangent)  # II(e_i, e_j), shape (d, d, D)
    second = 0.5 * (second + second.transpose(0, 1))
    h = torch.einsum("iia->a", second)
    w_h = torch.einsum("ija,a->ij", second, h)
    w_n = torch.einsum("ija,al->lij", second, normal)  # (D-d, d, d)
    sum_sq = torch.einsum("lij,ljk->ik", w_n, w_n)
    ricci = w_h - sum_sq
    return CurvatureOperators(
        tangent_basis=tangent,
        normal_basis=normal,
        second_fundamental_form=second,
        mean_curvature=h,
        weingarten_h=w_h,
        ricci=ricci,
        operator=0.5 * w_h - ricci,
    )


def torus_of_revolution_point(R: float, r: float, theta: float, phi: float) -> Tensor:
    """Point of the torus of revolution :math:`T^2 \\subset \\mathbb{R}^3` (float64).

    Args:
        R: Distance from the axis to the tube's centre circle (R > r > 0).
        r: Tube radius.
        theta: Angle around the axis (radians).
        phi: Angle around the tube (0 = outer equator).

    Returns:
        Tensor, shape (3,).
    """
    rho = R + r * math.cos(phi)
    return torch.tensor(
        [rho * math.cos(theta), rho * math.sin(theta), r * math.sin(phi)], dtype=torch.float64
    )


def torus_of_revolution_projector(R: float, r: float) -> Projector:
    """Tangent projector field :math:`I - n n^T` of the torus of revolution (outward normal n).

    Args:
        R: Distance from the axis to the tube's centre circle.
        r: Tube radius (r < R).

    Returns:
        Callable mapping x (3,) to P (3, 3), defined off the axis and off the centre circle.

    Raises:
        ValueError: Unless 0 < r < R.
    """
    if not 0.0 < r < R:
        raise ValueError(f"need 0 < r < R, got R={R}, r={r}")

    def proj(x: Tensor) -> Tensor:
        radial = torch.sqrt(x[0] ** 2 + x[1] ** 2)
        centre = torch.stack([R * x[0] / radial, R * x[1] / radial, torch.zeros_like(x[0])])
        n = x - centre
        n = n / torch.linalg.vector_norm(n)
        return torch.eye(3, dtype=x.dtype, device=x.device) - torch.outer(n, n)

    return proj


def torus_of_revolution_operator_eigenvalues(R: float, r: float, phi: float) -> tuple[float, float]:
    """Closed-form eigenvalues of :math:`\\tfrac12W_H - \\mathrm{Ric}^\\sharp` on the torus of
    revolution.

    With principal curvatures :math:`k_1 = 1/r`, :math:`k_2 = \\cos\\varphi/(R + r\\cos\\varphi)`:
    :math:`(\\tfrac12 k_1(k_1 - k_2), \\tfrac12 k_2(k_2 - k_1))` (tube direction first).

    Args:
        R: Axis-to-centre-circle distance.
        r: Tube radius.
        phi: Angle around the tube.

    Returns:
        The two eigenvalues (tube direction, axial direction).
    """
    k1 = 1.0 / r
    k2 = math.cos(phi) / (R + r * math.cos(phi))
    return 0.5 * k1 * (k1 - k2), 0.5 * k2 * (k2 - k1)
