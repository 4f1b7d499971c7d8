"""An MLP regressor trained with and without Rao-Blackwellization on S² (issue 4d)."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pipeline.ambient.experiments.fits import loglog_slope
from pipeline.ambient.models import AmbientScoreModel
from pipeline.ambient.posterior import fiber_moments, raw_tangent_factor_vmf
from pipeline.ambient.targets import add_ambient_noise, raw_target, rb_target
from pipeline.geometry.sphere import Sphere
from pipeline.geometry.vmf import sample_vmf
from pipeline.models.mlp import MLP

__all__ = ["headline", "rb_regression"]


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
        kind: loglog_slope(list(n_samples), out[kind]["err_own"]) for kind in ("raw", "rb")
    }
    return out


def headline(res: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a :func:`rb_regression` result (``summary.json``).

    Args:
        res: The result.

    Returns:
        The sample sizes and, per sample size, both models' mean test errors.
    """
    return {
        "n_samples": res["n_samples"],
        "raw_err_own": res["raw"]["err_own"],
        "rb_err_own": res["rb"]["err_own"],
        "raw_err_true": res["raw"]["err_true"],
        "rb_err_true": res["rb"]["err_true"],
    }
