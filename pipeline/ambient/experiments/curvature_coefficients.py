"""The curvature operator and its coefficient measured from the RB target (issue 1, 4c)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import special
from torch import Tensor

from pipeline.ambient.curvature import (
    curvature_operators,
    manifold_projector,
    torus_of_revolution_operator_eigenvalues,
    torus_of_revolution_point,
    torus_of_revolution_projector,
)
from pipeline.ambient.posterior import fiber_moments, torus_rb_target_grid
from pipeline.geometry.sphere import Sphere
from pipeline.geometry.torus import FlatTorus
from pipeline.so3.manifold import SO3

__all__ = ["curvature_coefficients", "headline"]


def _torus_log_q(k1: float, k2: float, k12: float) -> Any:
    def log_q(theta: Tensor) -> Tensor:
        a, b = theta[..., 0], theta[..., 1]
        return k1 * torch.cos(a) + k2 * torch.cos(b) + k12 * torch.cos(a - b)

    return log_q


def _score_and_bias(log_q: Any, phi: Tensor) -> tuple[Tensor, Tensor]:
    """Flat-torus score and Tweedie bias :math:`b_q = \\tfrac12\\nabla(\\Delta\\log q +
    |\\nabla\\log q|^2)`."""
    x = phi.clone().requires_grad_(True)
    lq = log_q(x).sum()
    (grad,) = torch.autograd.grad(lq, x, create_graph=True)
    lap = sum(
        torch.autograd.grad(grad[:, i].sum(), x, create_graph=True)[0][:, i] for i in range(2)
    )
    f = lap + grad.pow(2).sum(-1)
    (gf,) = torch.autograd.grad(f.sum(), x)
    return grad.detach(), 0.5 * gf


def curvature_coefficients(
    sphere_dims: Sequence[int] = (1, 2, 6, 10),
    torus_dims: Sequence[int] = (1, 2, 3),
    torus_sigmas: Sequence[float] = (0.01, 0.02, 0.04, 0.08),
    torus_kappas: tuple[float, float, float] = (2.0, 1.0, 1.5),
    n_points: int = 32,
    n_grid: int = 121,
    sphere_kappa: float = 2.0,
    sphere_sigmas: Sequence[float] = (0.01, 0.02, 0.04, 0.08),
    doughnut: tuple[float, float] = (2.0, 0.5),
    seed: int = 0,
) -> dict[str, Any]:
    """The operator :math:`\\tfrac12W_H - \\mathrm{Ric}^\\sharp` and its measured coefficient
    (issue 1, 4c).

    1. Differential geometry: the operator from the derivative of the tangent projector at random
       points of ``Sphere(d)``, ``FlatTorus(n)`` and ``SO3`` (Frobenius metric; closed form
       ¼ Id), and on the torus of revolution in R³.
    2. Statistics: on the flat torus :math:`(S^1)^2 \\subset \\mathbb{R}^4` with the non-product
       density :math:`q \\propto \\exp(k_1\\cos\\theta_1 + k_2\\cos\\theta_2 +
       k_{12}\\cos(\\theta_1 - \\theta_2))`,
       the exact :math:`r_\\sigma` (2-D posterior quadrature) minus the score, divided by σ², minus
       :math:`b_q`, projected on the score: :math:`\\hat c(\\sigma) \\to c` as σ -> 0 (fit
       :math:`\\hat c = c + a\\sigma^2`). Same on S^d with vMF data via :math:`g_\\sigma`.

    Args:
        sphere_dims: Sphere dimensions.
        torus_dims: Flat-torus dimensions for the operator check.
        torus_sigmas: σ values for the torus measurement.
        torus_kappas: (k1, k2, k12) of the torus density.
        n_points: Random points y per σ (torus) / m values (sphere).
        n_grid: Posterior grid points per angle (torus).
        sphere_kappa: vMF concentration for the sphere measurement.
        sphere_sigmas: σ values for the sphere measurement.
        doughnut: (R, r) of the torus of revolution.
        seed: Random seed.

    Returns:
        Dict of the operators (eigenvalues) and measured coefficients.
    """
    gen = torch.Generator().manual_seed(seed)
    ops: dict[str, Any] = {}
    cases: list[tuple[str, Sphere | FlatTorus | SO3, int]] = [
        *((f"sphere_{d}", Sphere(d), d) for d in sphere_dims),
        *((f"flat_torus_{n}", FlatTorus(n), n) for n in torus_dims),
        # SO(3) ⊂ R^{3×3}: curved in its embedding, ½W_H − Ric♯ = ½ Id − ¼ Id.
        ("so3", SO3(), 3),
    ]
    for name, man, dim in cases:
        z = man.random_uniform(1, dtype=torch.float64, generator=gen)[0]
        op = curvature_operators(manifold_projector(man), z, dim)
        ev = torch.linalg.eigvalsh(op.operator)
        ops[name] = {
            "closed_form": man.curvature_operator_coeff,
            "eigenvalues": ev.tolist(),
            "max_abs_error": float((ev - man.curvature_operator_coeff).abs().max()),
            "ricci_eigenvalues": torch.linalg.eigvalsh(op.ricci).tolist(),
        }
    R, r = doughnut
    rev: list[dict[str, Any]] = []
    for phi_t in (0.0, 0.5 * math.pi, math.pi):
        z = torus_of_revolution_point(R, r, 0.4, phi_t)
        op = curvature_operators(torus_of_revolution_projector(R, r), z, 2)
        ev = sorted(torch.linalg.eigvalsh(op.operator).tolist())
        rev.append(
            {
                "phi": phi_t,
                "eigenvalues": ev,
                "closed_form": sorted(torus_of_revolution_operator_eigenvalues(R, r, phi_t)),
                "gaussian_curvature": float(torch.linalg.eigvalsh(op.ricci)[0]),
            }
        )
    ops["torus_of_revolution"] = {"R": R, "r": r, "points": rev}

    # --- measured coefficient on the flat torus
    log_q = _torus_log_q(*torus_kappas)
    phi = (torch.rand(n_points, 2, generator=gen, dtype=torch.float64) * 2.0 - 1.0) * math.pi
    score, bias = _score_and_bias(log_q, phi)
    c_hat: list[float] = []
    perp: list[float] = []
    for sigma in torus_sigmas:
        r_sig = torus_rb_target_grid(phi, log_q, float(sigma), n_grid=n_grid)
        resid = (r_sig - score) / sigma**2 - bias
        ch = float((resid * score).sum() / score.pow(2).sum())
        c_hat.append(ch)
        perp.append(float((resid - ch * score).norm() / resid.norm()))
    s2 = np.asarray(torus_sigmas) ** 2
    fit = np.polyfit(s2, np.asarray(c_hat), 1)
    torus_meas = {
        "kappas": list(torus_kappas),
        "sigmas": list(torus_sigmas),
        "c_hat": c_hat,
        "relative_residual_orthogonal_to_score": perp,
        "c_extrapolated": float(fit[1]),
        "closed_form": 0.5,
    }

    # --- measured coefficient on spheres (vMF), from g_sigma
    x, _ = special.roots_legendre(n_points)
    sph_meas: dict[str, Any] = {}
    for d in sphere_dims:
        ch_list = []
        for sigma in sphere_sigmas:
            g = fiber_moments(x, sphere_kappa, float(sigma), d).g
            ch_list.append(float(np.mean((g - 1.0) / sigma**2 + 0.5 * d + sphere_kappa * x)))
        fit = np.polyfit(np.asarray(sphere_sigmas) ** 2, np.asarray(ch_list), 1)
        sph_meas[f"sphere_{d}"] = {
            "sigmas": list(sphere_sigmas),
            "c_hat": ch_list,
            "c_extrapolated": float(fit[1]),
            "closed_form": 1.0 - 0.5 * d,
        }
    return {"operators": ops, "flat_torus_measured": torus_meas, "sphere_measured": sph_meas}


def headline(res: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a :func:`curvature_coefficients` result (``summary.json``).

    Args:
        res: The result.

    Returns:
        The extrapolated coefficient on the flat torus and on each sphere, and the largest
        error of an operator's eigenvalues against its closed form.
    """
    return {
        "flat_torus_c_measured": res["flat_torus_measured"]["c_extrapolated"],
        "so3_operator_eigenvalues": res["operators"]["so3"]["eigenvalues"],
        **{f"{k}_c_measured": v["c_extrapolated"] for k, v in res["sphere_measured"].items()},
        "operator_max_abs_error": max(
            v["max_abs_error"] for v in res["operators"].values() if "max_abs_error" in v
        ),
    }
