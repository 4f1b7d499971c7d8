"""Scores of a trained seed on its catalogue split, and a model's metrics over its seeds.

:func:`score_seed` gives one seed's test (and validation) NLL by the probability-flow ODE, its
mean number of function evaluations, optionally the integral of the model density over S²
(expect 1), and the training step count and loss history from the checkpoint; no model
selection (the final EMA weights). :func:`metrics_over_seeds` makes the per-model metrics
file of the evaluate stage: statistics over seeds, each seed's numbers, the loss histories,
and how the likelihood was computed, read from the likelihood's own defaults.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.evaluation import load_trained, log_density, normalization
from pipeline.likelihood import pf_ode_logp
from pipeline.metrics import nll_statistics
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.process import ForwardProcess
from pipeline.training import read_checkpoint_meta

__all__ = ["metrics_over_seeds", "reference_name", "score_seed"]

_PF_ODE_DEFAULTS = inspect.signature(pf_ode_logp).parameters
ODE_METHOD = str(_PF_ODE_DEFAULTS["method"].default)
"""The solver :func:`pipeline.evaluation.log_density` uses (the likelihood's default)."""
ODE_DIVERGENCE = str(_PF_ODE_DEFAULTS["divergence"].default)
"""The divergence estimator it uses (the likelihood's default)."""
_BASE_KEY = "_base"  # carried from score_seed to metrics_over_seeds, not written per seed


def reference_name(process: ForwardProcess) -> str:
    """The PF-ODE's base law in words: ``"uniform"`` for Brownian motion, else the process."""
    return "uniform" if isinstance(process, BrownianMotion) else f"reference of {process!r}"


def score_seed(
    seed_dir: Path,
    kind: str,
    parts: Mapping[str, np.ndarray],
    settings: Mapping[str, Any],
    *,
    seed: int,
    normalize: bool,
) -> dict[str, Any]:
    """One seed's scores.

    Args:
        seed_dir: The seed's model folder.
        kind: The evaluated model kind (e.g. ``ambient_rb_corrected`` on its weights).
        parts: The seed's split, ``"test"`` and ``"val"`` arrays of shape (N, 3).
        settings: The ``evaluate`` params (``rtol``, ``atol``, ``batch_size``, ``device``,
            ``val``, ``normalization_grid``, ``normalization_tol``).
        seed: The seed (recorded).
        normalize: Also integrate the density over S².

    Returns:
        ``{"seed", "test_nll", "nfe", "nll_seconds_per_1000", "n_test", ["val_nll"],
        ["normalization"], "train_steps", "loss_history"}`` plus a private base-law entry
        that :func:`metrics_over_seeds` removes.

    Raises:
        FileNotFoundError: If the checkpoint metadata is missing.
        RuntimeError: If the test NLL is not finite.
    """
    trained = load_trained(seed_dir, device=settings.get("device", "auto"), kind=kind)
    ode: dict[str, Any] = {
        "rtol": float(settings["rtol"]),
        "atol": float(settings["atol"]),
        "batch_size": int(settings.get("batch_size", 4096)),
    }
    start = time.perf_counter()
    test_logp, nfe = log_density(trained, parts["test"], **ode)
    test_seconds = time.perf_counter() - start
    out: dict[str, Any] = {
        "seed": seed,
        "test_nll": float(-test_logp.mean()),
        "nfe": nfe,
        "nll_seconds_per_1000": 1000.0 * test_seconds / max(len(test_logp), 1),
        "n_test": int(len(test_logp)),
    }
    if settings.get("val", True) and len(parts["val"]):
        val_logp, _ = log_density(trained, parts["val"], **ode)
        out["val_nll"] = float(-val_logp.mean())
    if normalize:
        n_lat, n_lon = (int(v) for v in settings["normalization_grid"])
        tol = float(settings.get("normalization_tol", settings["rtol"]))
        out["normalization"] = normalization(
            trained, n_lat, n_lon, **{**ode, "rtol": tol, "atol": tol}
        )
    meta = read_checkpoint_meta(seed_dir)
    if meta is None:
        raise FileNotFoundError(
            f"{seed_dir}: no checkpoint metadata (run `dvc pull` or `dvc repro`)"
        )
    # Training seconds are not here: they live in reports/timings (see the summary).
    out["train_steps"] = int(meta["step"])
    out["loss_history"] = meta["loss_history"]
    out[_BASE_KEY] = reference_name(trained.process)
    if not np.isfinite(out["test_nll"]):
        raise RuntimeError(f"{seed_dir}: test NLL is not finite")
    return out


def metrics_over_seeds(
    model: str, catalogue: str, per_seed: list[dict[str, Any]], settings: Mapping[str, Any]
) -> dict[str, Any]:
    """Per-model metrics: statistics over seeds plus each seed's numbers and loss history.

    Args:
        model: The evaluated kind.
        catalogue: The catalogue.
        per_seed: :func:`score_seed` results (their loss histories and base entries are
            moved out of the rows).
        settings: The ``evaluate`` params (``rtol``, ``atol``).
    """
    stats = nll_statistics([r["test_nll"] for r in per_seed])
    histories = {str(r["seed"]): r.pop("loss_history") for r in per_seed}
    bases = {r.pop(_BASE_KEY, "uniform") for r in per_seed}
    norms = [r["normalization"] for r in per_seed if "normalization" in r]
    return {
        "catalogue": catalogue,
        "model": model,
        **stats,
        "n_test": per_seed[0]["n_test"],
        "nfe_mean": float(sum(r["nfe"] for r in per_seed) / len(per_seed)),
        "normalization_max_error": max((abs(v - 1.0) for v in norms), default=None),
        "ode": {
            "method": ODE_METHOD,
            "rtol": settings["rtol"],
            "atol": settings["atol"],
            "divergence": ODE_DIVERGENCE,
            "base": " / ".join(sorted(bases)),
        },
        "weights": "final EMA",
        "units": "nats per point, area measure of the unit sphere",
        "per_seed": per_seed,
        "loss_history": histories,
    }
