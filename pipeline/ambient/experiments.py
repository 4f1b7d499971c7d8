"""The seed-002 experiments (issue 4a-4d), each returning a plain JSON-serialisable dict.

* :func:`variance_collapse` (4a): :math:`E|T_\\sigma|^2` vs :math:`E|r_\\sigma(\\pi(X))|^2` on S².
* :func:`langevin_equilibria` (4b): equilibria of the true, RB and corrected-RB drifts on S^d.
* :func:`curvature_coefficients` (4c): the operator :math:`\\tfrac12W_H - \\mathrm{Ric}^\\sharp`
  from the
  second fundamental form, and the coefficient measured from :math:`r_\\sigma` itself on the flat
  torus and on spheres.
* :func:`rb_regression` (4d): an MLP trained with and without Rao-Blackwellization.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from numpy.polynomial import chebyshev as cheb
from scipy import special
from torch import Tensor

from pipeline.ambient.curvature import (
    curvature_operators,
    manifold_projector,
    torus_of_revolution_operator_eigenvalues,
    torus_of_revolution_point,
    torus_of_revolution_projector,
)
from pipeline.ambient.langevin import (
    EquilibriumStats,
    ZonalDrift,
    constant_drift,
    equilibrium_quadrature,
    heat_smoothed_log_density,
    heat_smoothed_mean,
    heat_smoothed_stats,
    langevin_equilibrium,
    rb_drift,
)
from pipeline.ambient.models import AmbientScoreModel
from pipeline.ambient.posterior import (
    FloatArray,
    fiber_moments,
    raw_tangent_factor_vmf,
    sample_vmf,
    torus_rb_target_grid,
    vmf_score_sq_mean,
)
from pipeline.ambient.targets import add_ambient_noise, raw_target, rb_target
from pipeline.geometry.sphere import Sphere
from pipeline.geometry.torus import FlatTorus
from pipeline.models.mlp import MLP


def _g_of_m(m: FloatArray, kappa: float, sigma: float, d: int) -> FloatArray:
    return fiber_moments(m, kappa, sigma, d).g


def _raw_phi_prime(m: FloatArray, kappa: float, sigma: float, d: int) -> FloatArray:
    out: FloatArray = kappa * raw_tangent_factor_vmf(m, kappa, sigma, d)
    return out


def _loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    return float(np.polyfit(np.log(np.asarray(x)), np.log(np.asarray(y)), 1)[0])


# ----------------------------------------------------------------------------------------- 4a
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
        "slope_t_sq_small_sigma": _loglog_slope(
            [rows["sigma"][i] for i in small], [rows["t_sq"][i] for i in small]
        ),
        "slope_t_sq_small_sigma_mc": _loglog_slope(
            [rows["sigma"][i] for i in small], [rows["t_sq_mc"][i] for i in small]
        ),
        "slope_sigma_max": slope_sigma_max,
        "sigma2_t_sq_at_sigma_min": rows["t_sq"][0] * s0**2,
        "score_sq_mean_true": vmf_score_sq_mean(kappa, d),
        "score_sq_mean_closed_form_s2": 2.0 * kappa / math.tanh(kappa) - 2.0,
        "r_sq_at_sigma_min": r0,
        "r_sq_extrapolated_to_0": float(extrap),
    }


# ----------------------------------------------------------------------------------------- 4b
def _stats_dict(st: EquilibriumStats, kappa: float) -> dict[str, float]:
    return {
        "mean": st.mean,
        "second_moment": st.second_moment,
        "kappa_eff": st.kappa_eff,
        "kappa_ratio": st.kappa_eff / kappa,
    }


def langevin_equilibria(
    dims: Sequence[int] = (2, 6, 10),
    settings: Sequence[tuple[float, float]] = ((10.0, 0.29), (2.0, 1.0 / math.sqrt(12.0))),
    simulate: bool = True,
    step_sizes: Sequence[float] = (0.01, 0.005, 0.0025),
    n_chains: int = 2000,
    t_burn: float = 1.0,
    t_avg: float = 2.0,
    n_density: int = 201,
    chebyshev_degree: int = 96,
    seed: int = 0,
) -> dict[str, Any]:
    """Langevin equilibria on S^d under vMF(μ, κ) with the true, RB and corrected drifts (issue 4b).

    Quadrature results for: ``true`` (φ' = κ), ``rb`` (exact :math:`r_\\sigma`, the population
    ``ambient_rb`` model), ``rb_corrected`` (:math:`(1 - c\\sigma^2)r_\\sigma`), ``raw_on_manifold``
    (tangent part at y ∈ M of the exact raw regression function), ``first_order_raw``
    (:math:`(1 + c\\sigma^2)\\kappa`: the extrinsic term only, as in the seed's argument) and its
    correction ``first_order_corrected`` (:math:`(1 + c\\sigma^2)(1 - c\\sigma^2)\\kappa`), and the
    heat-smoothed law at s = σ² (``heat``). Simulation (geodesic random walk, linear step-size
    extrapolation) for the first three.

    Args:
        dims: Sphere dimensions.
        settings: (κ, σ) pairs.
        simulate: Run the simulations.
        step_sizes: Step sizes of the simulation.
        n_chains: Chains per step size.
        t_burn: Burn-in time.
        t_avg: Averaging time.
        n_density: Points of the m-grid for the density curves.
        chebyshev_degree: Degree of the drift interpolants.
        seed: Random seed.

    Returns:
        Dict with a list of per-(d, κ, σ) records.
    """
    gen = torch.Generator().manual_seed(seed)
    records: list[dict[str, Any]] = []
    m_grid = np.linspace(-1.0, 1.0, n_density)
    for d in dims:
        c = 1.0 - 0.5 * d
        for kappa, sigma in settings:
            s = sigma * sigma
            drifts: dict[str, ZonalDrift] = {
                "true": constant_drift(kappa),
                "rb": rb_drift(kappa, sigma, d, False, chebyshev_degree),
                "rb_corrected": rb_drift(kappa, sigma, d, True, chebyshev_degree),
                "raw_on_manifold": ZonalDrift.from_function(
                    partial(_raw_phi_prime, kappa=kappa, sigma=sigma, d=d),
                    chebyshev_degree,
                    "raw_on_manifold",
                ),
                "first_order_raw": constant_drift(kappa * (1.0 + c * s), "first_order_raw"),
                "first_order_corrected": constant_drift(
                    kappa * (1.0 + c * s) * (1.0 - c * s), "first_order_corrected"
                ),
            }
            quad = {k: _stats_dict(equilibrium_quadrature(v, d), kappa) for k, v in drifts.items()}
            heat = heat_smoothed_stats(kappa, d, s)
            quad["heat"] = _stats_dict(heat, kappa)
            quad["heat"]["mean_closed_form"] = heat_smoothed_mean(kappa, d, s)
            rec: dict[str, Any] = {
                "d": d,
                "kappa": kappa,
                "sigma": sigma,
                "curvature_coeff": c,
                "quadrature": quad,
            }
            rec["ratios"] = {
                "rb_over_true_kappa": quad["rb"]["kappa_eff"] / kappa,
                "rb_over_true_mean": quad["rb"]["mean"] / quad["true"]["mean"],
                "rb_over_corrected_kappa": quad["rb"]["kappa_eff"]
                / quad["rb_corrected"]["kappa_eff"],
                "rb_over_corrected_mean": quad["rb"]["mean"] / quad["rb_corrected"]["mean"],
                "corrected_over_true_kappa": quad["rb_corrected"]["kappa_eff"] / kappa,
                "corrected_over_heat_kappa": quad["rb_corrected"]["kappa_eff"]
                / quad["heat"]["kappa_eff"],
                "corrected_over_heat_mean": quad["rb_corrected"]["mean"] / quad["heat"]["mean"],
                "first_order_raw_over_true_kappa": 1.0 + c * s,
                "first_order_corrected_over_true_kappa": (1.0 + c * s) * (1.0 - c * s),
                "drift_ratio_rb_over_corrected": 1.0 / (1.0 - c * s),
            }
            dens: dict[str, list[float]] = {"m": m_grid.tolist()}
            area_w = (1.0 - m_grid**2) ** (0.5 * (d - 2)) if d > 2 else np.ones_like(m_grid)
            for k in ("true", "rb", "rb_corrected"):
                lp = drifts[k].potential(m_grid)
                p = np.exp(lp - lp.max()) * area_w
                dens[k] = (p / np.trapezoid(p, m_grid)).tolist()
            lp = heat_smoothed_log_density(m_grid, kappa, d, s)
            p = np.exp(lp - lp.max()) * area_w
            dens["heat"] = (p / np.trapezoid(p, m_grid)).tolist()
            rec["density"] = dens
            if simulate:
                sim: dict[str, Any] = {}
                for k in ("true", "rb", "rb_corrected"):
                    res = langevin_equilibrium(
                        drifts[k], Sphere(d), kappa, list(step_sizes), n_chains, t_burn, t_avg, gen
                    )
                    sim[k] = {
                        "step_sizes": res.step_sizes,
                        "means": res.means,
                        "std_errors": res.std_errors,
                        "mean_extrapolated": res.extrapolated,
                        "mean_extrapolated_se": res.extrapolated_se,
                        "z_vs_quadrature": (res.extrapolated - quad[k]["mean"])
                        / res.extrapolated_se,
                    }
                rec["simulation"] = sim
            records.append(rec)
    return {"records": records, "step_sizes": list(step_sizes), "n_chains": n_chains}


# ----------------------------------------------------------------------------------------- 4c
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
       points of ``Sphere(d)`` and ``FlatTorus(n)``, and on the torus of revolution in R³.
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
    for d in sphere_dims:
        man = Sphere(d)
        z = man.random_uniform(1, dtype=torch.float64, generator=gen)[0]
        op = curvature_operators(manifold_projector(man), z, d)
        ev = torch.linalg.eigvalsh(op.operator)
        ops[f"sphere_{d}"] = {
            "closed_form": man.curvature_operator_coeff,
            "eigenvalues": ev.tolist(),
            "max_abs_error": float((ev - man.curvature_operator_coeff).abs().max()),
            "ricci_eigenvalues": torch.linalg.eigvalsh(op.ricci).tolist(),
        }
    for n in torus_dims:
        tor = FlatTorus(n)
        z = tor.random_uniform(1, dtype=torch.float64, generator=gen)[0]
        op = curvature_operators(manifold_projector(tor), z, n)
        ev = torch.linalg.eigvalsh(op.operator)
        ops[f"flat_torus_{n}"] = {
            "closed_form": tor.curvature_operator_coeff,
            "eigenvalues": ev.tolist(),
            "max_abs_error": float((ev - tor.curvature_operator_coeff).abs().max()),
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


# ----------------------------------------------------------------------------------------- 4d
def _fit_regressor(
    model: AmbientScoreModel,
    inputs: Tensor,
    targets: Tensor,
    sigma: Tensor,
    steps: int,
    batch_size: int,
    lr: float,
    eval_every: int,
    gen: torch.Generator,
) -> AmbientScoreModel:
    """Adam on the MSE, keeping the weights with the best validation MSE (20 % held out)."""
    n = inputs.shape[0]
    n_val = max(1, n // 5)
    perm = torch.randperm(n, generator=gen)
    val, tr = perm[:n_val], perm[n_val:]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best = math.inf
    best_state = copy.deepcopy(model.state_dict())
    for step in range(steps):
        idx = tr[torch.randint(tr.shape[0], (min(batch_size, tr.shape[0]),), generator=gen)]
        loss = (model(inputs[idx], sigma) - targets[idx]).pow(2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % eval_every == 0 or step == steps - 1:
            with torch.no_grad():
                v = float((model(inputs[val], sigma) - targets[val]).pow(2).sum(-1).mean())
            if v < best:
                best = v
                best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model


def rb_regression(
    kappa: float = 2.0,
    sigma: float = 0.1,
    n_samples: Sequence[int] = (64, 256, 1024, 4096, 16384),
    reps: int = 2,
    hidden: int = 64,
    depth: int = 3,
    omega: float = 1.0,
    steps: int = 1500,
    batch_size: int = 256,
    lr: float = 1e-3,
    eval_every: int = 100,
    n_test: int = 4000,
    seed: int = 0,
) -> dict[str, Any]:
    """MLP regressor trained with and without Rao-Blackwellization on S² vMF data (issue 4d).

    For each sample size n, the same n pairs (Z, X = Z + σξ) train two models at fixed σ:
    ``raw`` (input X, target (Z - X)/σ²) and ``rb`` (input π(X), target
    :math:`P_{\\pi(X)}(Z - X)/\\sigma^2`). Test error on fresh :math:`z \\sim q`, of the tangent
    field
    used downstream (model at the manifold point, projected): against the true score
    :math:`\\kappa P_z\\mu` (``err_true``) and against each target's exact population regression
    function (``err_own``: :math:`\\kappa h_\\sigma P_z\\mu` for raw, :math:`r_\\sigma` for rb).

    Args:
        kappa: Concentration.
        sigma: Fixed noise level.
        n_samples: Training-set sizes.
        reps: Repetitions (independent data and initialisations).
        hidden: MLP width.
        depth: MLP depth.
        omega: First-layer frequency of the sine MLP (small = smooth fits).
        steps: Adam steps.
        batch_size: Minibatch size.
        lr: Learning rate.
        eval_every: Validation period (steps).
        n_test: Test points.
        seed: Random seed.

    Returns:
        Dict of per-n mean errors (and per-rep values).
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    dtype = torch.float32
    manifold = Sphere(2)
    mu = torch.tensor([0.0, 0.0, 1.0], dtype=dtype)
    sig = torch.tensor(sigma, dtype=dtype)
    z_test = sample_vmf(mu, kappa, n_test, gen)
    m_test = (z_test @ mu).double().numpy()
    p_mu = mu - (z_test @ mu)[:, None] * z_test
    true_score = kappa * p_mu
    own = {
        "raw": kappa
        * torch.as_tensor(raw_tangent_factor_vmf(m_test, kappa, sigma, 2), dtype=dtype)[:, None]
        * p_mu,
        "rb": kappa
        * torch.as_tensor(fiber_moments(m_test, kappa, sigma, 2).g, dtype=dtype)[:, None]
        * p_mu,
    }
    score_sq = float(true_score.pow(2).sum(-1).mean())
    out: dict[str, Any] = {
        "kappa": kappa,
        "sigma": sigma,
        "omega": omega,
        "n_samples": list(n_samples),
        "score_sq_mean": score_sq,
        "bias_sq_raw": float((own["raw"] - true_score).pow(2).sum(-1).mean()),
        "bias_sq_rb": float((own["rb"] - true_score).pow(2).sum(-1).mean()),
    }
    res: dict[str, dict[str, list[list[float]]]] = {
        k: {"err_true": [], "err_own": []} for k in ("raw", "rb")
    }
    for n in n_samples:
        per: dict[str, dict[str, list[float]]] = {
            k: {"err_true": [], "err_own": []} for k in ("raw", "rb")
        }
        for _ in range(reps):
            z = sample_vmf(mu, kappa, n, gen)
            x = add_ambient_noise(z, sig, gen)
            y, t_rb = rb_target(manifold, z, x, sig)
            data = {"raw": (x, raw_target(z, x, sig)), "rb": (y, t_rb)}
            for kind in ("raw", "rb"):
                net = MLP(3, 3, hidden=hidden, depth=depth, activation="sine", omega=omega)
                model = AmbientScoreModel(net, manifold, "raw" if kind == "raw" else "rb")
                model = _fit_regressor(
                    model, *data[kind], sig, steps, batch_size, lr, eval_every, gen
                )
                with torch.no_grad():
                    pred = manifold.proju(z_test, model(z_test, sig))
                per[kind]["err_true"].append(float((pred - true_score).pow(2).sum(-1).mean()))
                per[kind]["err_own"].append(float((pred - own[kind]).pow(2).sum(-1).mean()))
        for kind in ("raw", "rb"):
            for key in ("err_true", "err_own"):
                res[kind][key].append(per[kind][key])
    for kind in ("raw", "rb"):
        out[kind] = {
            "err_true_per_rep": res[kind]["err_true"],
            "err_own_per_rep": res[kind]["err_own"],
            "err_true": [float(np.mean(v)) for v in res[kind]["err_true"]],
            "err_own": [float(np.mean(v)) for v in res[kind]["err_own"]],
        }
    out["loglog_slope_err_own"] = {
        kind: _loglog_slope(list(n_samples), out[kind]["err_own"]) for kind in ("raw", "rb")
    }
    return out
