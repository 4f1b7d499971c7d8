"""PNG figures of the seed-002 experiments (matplotlib, Agg backend, no network access)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_variance_collapse(res: dict[str, Any], path: Path) -> None:
    """Log-log plot of :math:`E|T_\\sigma|^2` and :math:`E|r_\\sigma|^2` against σ (issue 4a).

    Args:
        res: Output of :func:`pipeline.ambient.experiments.variance_collapse.variance_collapse`.
        path: PNG file to write.
    """
    s = np.asarray(res["sigma"])
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.loglog(s, res["t_sq"], "k-", label=r"$E|T_\sigma|^2$ (quadrature)")
    ax.errorbar(
        s,
        res["t_sq_mc"],
        yerr=2 * np.asarray(res["t_sq_mc_se"]),
        fmt="ko",
        ms=3,
        label="Monte Carlo",
    )
    ax.loglog(s, res["r_sq"], "b-", label=r"$E|r_\sigma(\pi(X))|^2$ (quadrature)")
    ax.loglog(s, res["r_sq_mc"], "bo", ms=3, label="Monte Carlo")
    ax.loglog(s, res["d"] / s**2, "k:", lw=1, label=r"$d/\sigma^2$")
    ax.axhline(res["score_sq_mean_true"], color="b", ls=":", lw=1, label=r"$E|\nabla\log q|^2$")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(r"$\sigma$")
    ax.set_ylabel("second moment")
    ax.set_title(
        rf"S², vMF($\kappa$={res['kappa']:g}): slope {res['slope_t_sq_small_sigma']:.3f}"
        rf" for $\sigma\leq${res['slope_sigma_max']:g}"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_langevin(res: dict[str, Any], path: Path) -> None:
    """Equilibrium densities of :math:`\\langle z,\\mu\\rangle` for each (κ, σ) and d (issue 4b).

    Args:
        res: Output of :func:`pipeline.ambient.experiments.langevin_equilibria.langevin_equilibria`.
        path: PNG file to write.
    """
    recs = res["records"]
    dims = sorted({r["d"] for r in recs})
    settings = sorted({(r["kappa"], r["sigma"]) for r in recs}, reverse=True)
    fig, axes = plt.subplots(
        len(settings), len(dims), figsize=(4 * len(dims), 3.2 * len(settings)), squeeze=False
    )
    styles = {
        "true": ("k", "true vMF"),
        "rb": ("C1", r"$r_\sigma$ (RB, uncorrected)"),
        "rb_corrected": ("C0", r"corrected $r_\sigma$"),
        "heat": ("C2", r"heat-smoothed, $s=\sigma^2$"),
    }
    for r in recs:
        i = settings.index((r["kappa"], r["sigma"]))
        ax = axes[i][dims.index(r["d"])]
        m = np.asarray(r["density"]["m"])
        for key, (col, lab) in styles.items():
            ls = "--" if key == "heat" else "-"
            ax.plot(m, r["density"][key], color=col, ls=ls, lw=1.3, label=lab)
            mean = r["quadrature"][key]["mean"]
            ax.axvline(mean, color=col, ls=ls, lw=0.7, alpha=0.6)
        for key, sim in r.get("simulation", {}).items():
            ax.errorbar(
                sim["mean_extrapolated"],
                0.0,
                xerr=2 * sim["mean_extrapolated_se"],
                fmt="v",
                color=styles[key][0],
                ms=6,
            )
        q = r["quadrature"]
        ax.set_title(
            f"S^{r['d']}, κ={r['kappa']:g}, σ={r['sigma']:.3f}\n"
            f"κ_eff: rb {q['rb']['kappa_eff']:.2f}, corr {q['rb_corrected']['kappa_eff']:.2f}, "
            f"heat {q['heat']['kappa_eff']:.2f}",
            fontsize=8,
        )
        ax.set_xlabel(r"$\langle z,\mu\rangle$ (lines: means; ▼ simulation ±2SE)", fontsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curvature(res: dict[str, Any], path: Path) -> None:
    """Measured coefficient :math:`\\hat c(\\sigma)` against σ² with the closed forms (issue 4c).

    Args:
        res: Output of
            :func:`pipeline.ambient.experiments.curvature_coefficients.curvature_coefficients`.
        path: PNG file to write.
    """
    fig, ax = plt.subplots(figsize=(6, 4.2))
    tor = res["flat_torus_measured"]
    s2 = np.asarray(tor["sigmas"]) ** 2
    ax.plot(s2, tor["c_hat"], "ko-", label=f"flat torus in R⁴ (→ {tor['c_extrapolated']:.4f})")
    ax.axhline(0.5, color="k", ls=":", lw=1)
    for j, (name, rec) in enumerate(res["sphere_measured"].items()):
        x = np.asarray(rec["sigmas"]) ** 2
        ax.plot(
            x,
            rec["c_hat"],
            "s-",
            color=f"C{j}",
            ms=4,
            label=f"{name.replace('sphere_', 'S^')} (→ {rec['c_extrapolated']:.4f})",
        )
        ax.axhline(rec["closed_form"], color=f"C{j}", ls=":", lw=1)
    ax.set_xlabel(r"$\sigma^2$")
    ax.set_ylabel(
        r"$\hat c(\sigma)$: $\langle (r_\sigma-\nabla\log q)/\sigma^2 - b_q,"
        r" \nabla\log q\rangle / |\nabla\log q|^2$"
    )
    ax.yaxis.label.set_fontsize(7)
    ax.set_title(
        "extrinsic coefficient of ½W_H − Ric♯ measured from r_σ (dotted: closed forms)", fontsize=8
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_regression(res: dict[str, Any], path: Path) -> None:
    """Test error of the raw and RB regressors against the number of samples (issue 4d).

    Args:
        res: Output of :func:`pipeline.ambient.experiments.rb_regression.rb_regression`.
        path: PNG file to write.
    """
    n = np.asarray(res["n_samples"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, key, title in (
        (axes[0], "err_own", "vs own population regression function"),
        (axes[1], "err_true", r"vs true score $\kappa P_z\mu$"),
    ):
        for kind, col, lab in (
            ("raw", "C1", "without RB (raw target, input X)"),
            ("rb", "C0", r"with RB (input $\pi(X)$)"),
        ):
            ax.loglog(n, res[kind][key], "o-", color=col, label=lab)
            reps = np.asarray(res[kind][f"{key}_per_rep"])
            ax.loglog(np.repeat(n, reps.shape[1]), reps.ravel(), ".", color=col, alpha=0.4)
        if key == "err_true":
            ax.axhline(res["bias_sq_raw"], color="C1", ls=":", lw=1)
            ax.axhline(res["bias_sq_rb"], color="C0", ls=":", lw=1)
        ax.set_xlabel("training samples n")
        ax.set_ylabel(r"test $E|P_z\hat s(z) - \cdot|^2$")
        ax.set_title(f"{title}\nS², κ={res['kappa']:g}, σ={res['sigma']:g}", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
