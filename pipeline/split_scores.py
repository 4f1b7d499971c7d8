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
import torch

from pipeline.checkpoints import read_checkpoint_meta
from pipeline.evaluation import load_trained, log_density, normalization
from pipeline.likelihood import pf_ode_logp
from pipeline.metrics import nll_statistics
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.process import ForwardProcess

__all__ = [
    "far_radii",
    "far_scores",
    "metrics_over_seeds",
    "nearest_train_distance_deg",
    "pop_scores",
    "reference_name",
    "score_seed",
]

_PF_ODE_DEFAULTS = inspect.signature(pf_ode_logp).parameters
ODE_METHOD = str(_PF_ODE_DEFAULTS["method"].default)
"""The solver :func:`pipeline.evaluation.log_density` uses (the likelihood's default)."""
ODE_DIVERGENCE = str(_PF_ODE_DEFAULTS["divergence"].default)
"""The divergence estimator it uses (the likelihood's default)."""
_BASE_KEY = "_base"  # carried from score_seed to metrics_over_seeds, not written per seed
_SCORES_KEY = "_scores"  # per-event log-densities: written to the scores file, not the metrics


def far_radii(settings: Mapping[str, Any]) -> list[float]:
    """The memorisation-free protocol's radii in degrees (``evaluate.far_radii_deg``)."""
    return [float(r) for r in settings.get("far_radii_deg", [0.1, 1.0])]


def nearest_train_distance_deg(test: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Geodesic distance in degrees from each test event to its nearest training event.

    Args:
        test: Shape (M, 3), points on S².
        train: Shape (N, 3), N >= 1.

    Returns:
        Shape (M,), float64 (by chords, exact for tiny angles).
    """
    t = torch.as_tensor(np.asarray(test), dtype=torch.float64)
    x = torch.as_tensor(np.asarray(train), dtype=torch.float64)
    out = np.empty(t.shape[0], dtype=np.float64)
    step = max(1, 2_000_000 // max(x.shape[0], 1))
    for start in range(0, t.shape[0], step):
        chord = torch.cdist(
            t[start : start + step], x, compute_mode="donot_use_mm_for_euclid_dist"
        ).amin(dim=1)
        out[start : start + step] = np.degrees(2 * np.arcsin(np.clip(chord.numpy() / 2, 0.0, 1.0)))
    return out


def far_scores(
    test_logp: np.ndarray, test: np.ndarray, train: np.ndarray, radii_deg: list[float]
) -> dict[str, dict[str, float | int]]:
    """The memorisation-free protocol: test NLL over the test events farther than r from
    every training event of their split, for each r.

    Returns:
        ``{"<r>": {"test_nll": NLL or NaN when no event is kept, "n": events kept,
        "share": kept / all}}`` keyed by the radius as printed by ``f"{r:g}"``.
    """
    dist = nearest_train_distance_deg(test, train) if len(train) else np.full(len(test), np.inf)
    out: dict[str, dict[str, float | int]] = {}
    for r in radii_deg:
        keep = dist > r
        n = int(keep.sum())
        out[f"{r:g}"] = {
            "test_nll": float(-test_logp[keep].mean()) if n else float("nan"),
            "n": n,
            "share": n / max(len(test_logp), 1),
        }
    return out


def reference_name(process: ForwardProcess) -> str:
    """The PF-ODE's base law in words: ``"uniform"`` for Brownian motion, else the process."""
    return "uniform" if isinstance(process, BrownianMotion) else f"reference of {process!r}"


def _check_finite(logp: np.ndarray, points: np.ndarray, seed_dir: Path) -> None:
    """Fail, naming the model folder, how many test events and the first one, when a test
    log-density is not finite (the model gives those events zero or undefined density).

    Raises:
        RuntimeError: One line: the folder, the count, the first event's row and place.
    """
    bad = np.flatnonzero(~np.isfinite(logp))
    if bad.size == 0:
        return
    from pipeline.geometry.coords import xyz_to_latlon

    i = int(bad[0])
    lat, lon = xyz_to_latlon(np.asarray(points[i : i + 1], dtype=np.float64))
    raise RuntimeError(
        f"{seed_dir}: test NLL is not finite: {bad.size} of {len(logp)} test events have "
        f"log-density {logp[i]} (first: test row {i}, lat {float(lat[0]):.3f}, "
        f"lon {float(lon[0]):.3f}); the model gives them zero or undefined density"
    )


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
        RuntimeError: If a test log-density is not finite (one line: how many, the first).
    """
    trained = load_trained(seed_dir, device=settings.get("device", "auto"), kind=kind)
    ode: dict[str, Any] = {
        "rtol": float(settings["rtol"]),
        "atol": float(settings["atol"]),
        "batch_size": int(settings.get("batch_size", 4096)),
    }
    if len(parts["test"]) == 0:
        raise ValueError(f"{seed_dir}: split seed {seed} has 0 test events (too small a catalogue)")
    start = time.perf_counter()
    test_logp, nfe = log_density(trained, parts["test"], **ode)
    test_seconds = time.perf_counter() - start
    _check_finite(test_logp, parts["test"], seed_dir)
    out: dict[str, Any] = {
        "seed": seed,
        "test_nll": float(-test_logp.mean()),
        "nfe": nfe,
        "nll_seconds_per_1000": 1000.0 * test_seconds / max(len(test_logp), 1),
        "n_test": int(len(test_logp)),
    }
    out["far"] = far_scores(test_logp, parts["test"], parts["train"], far_radii(settings))
    scores: dict[str, np.ndarray] = {"test_logp": test_logp}
    if settings.get("val", True) and len(parts["val"]):
        val_logp, _ = log_density(trained, parts["val"], **ode)
        out["val_nll"] = float(-val_logp.mean())
        scores["val_logp"] = val_logp
    out[_SCORES_KEY] = scores
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
    return out


def pop_scores(per_seed: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Take each seed's per-event log-densities out of its row: ``{"seed<k>_test_logp": ...,
    "seed<k>_val_logp": ...}`` (float64), the scores file's arrays."""
    arrays: dict[str, np.ndarray] = {}
    for r in per_seed:
        for name, values in r.pop(_SCORES_KEY, {}).items():
            arrays[f"seed{r['seed']}_{name}"] = np.asarray(values, dtype=np.float64)
    return arrays


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
    for r in per_seed:
        r.pop(_SCORES_KEY, None)
    far: dict[str, dict[str, Any]] = {}
    for radius in per_seed[0].get("far", {}):
        values = [r["far"][radius]["test_nll"] for r in per_seed]
        kept = [r["far"][radius]["share"] for r in per_seed]
        entry: dict[str, Any] = {"share_mean": float(np.mean(kept))}
        if all(np.isfinite(values)):
            entry.update(nll_statistics(values))
        far[radius] = entry
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
        # The memorisation-free protocol: test events farther than r (degrees) from every
        # training event of their split.
        "far": far,
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
