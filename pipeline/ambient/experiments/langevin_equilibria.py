"""Langevin equilibria on S^d (issue 4b) of the true, RB and corrected-RB drifts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import torch

from pipeline.ambient.langevin import (
    EquilibriumStats,
    ZonalDrift,
    constant_drift,
    equilibrium_quadrature,
    heat_smoothed_log_density,
    heat_smoothed_mean,
    heat_smoothed_stats,
    rb_drift,
)
from pipeline.ambient.langevin_simulation import langevin_equilibrium
from pipeline.ambient.posterior import FloatArray, raw_tangent_factor_vmf
from pipeline.geometry.sphere import Sphere

__all__ = ["headline", "langevin_equilibria"]


def _raw_phi_prime(m: FloatArray, kappa: float, sigma: float, d: int) -> FloatArray:
    out: FloatArray = kappa * raw_tangent_factor_vmf(m, kappa, sigma, d)
    return out


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


def headline(res: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a :func:`langevin_equilibria` result (``summary.json``).

    Args:
        res: The result.

    Returns:
        Per record, keyed ``S<d>_kappa<κ>_sigma<σ>``: quadrature means and effective κ of the
        main drifts, three ratios, and the extrapolated simulation means with their errors.
    """
    lv: dict[str, Any] = {}
    for r in res["records"]:
        key = f"S{r['d']}_kappa{r['kappa']:g}_sigma{r['sigma']:.3f}"
        q = r["quadrature"]
        rec: dict[str, Any] = {
            f"{k}_{stat}": q[k][stat]
            for k in ("true", "rb", "rb_corrected", "heat", "first_order_raw")
            for stat in ("mean", "kappa_eff")
        }
        rec.update(
            {
                k: r["ratios"][k]
                for k in (
                    "rb_over_corrected_kappa",
                    "corrected_over_heat_kappa",
                    "rb_over_true_kappa",
                )
            }
        )
        for k, sim in r.get("simulation", {}).items():
            rec[f"sim_{k}_mean"] = sim["mean_extrapolated"]
            rec[f"sim_{k}_se"] = sim["mean_extrapolated_se"]
        lv[key] = rec
    return lv
