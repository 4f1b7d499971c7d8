r"""The SO(3) benchmark: each model kind fitted to each seed's mixture file, scored on its test
points, and tabulated beside the true density and the published rows.

The models are the S² variants that run on SO(3), with ``manifold: {name: so3}``: the same
variants (:mod:`pipeline.variants`), trainer, PF-ODE likelihood and checkpoints.
``ambient_rb_corrected`` reuses the ``ambient_rb`` weights; on SO(3) ⊂ R^{3×3} its correction is
not zero (½W_H − Ric♯ = ¼ Id, :class:`pipeline.so3.manifold.SO3`).

Log-likelihoods are per test point; this module reports them in two measures:

* ``frobenius``: w.r.t. the Riemannian volume of the Frobenius metric (vol 16√2 π²), the
  measure of every density in :mod:`pipeline.so3`;
* ``angle``: w.r.t. the volume of the angle metric (vol 8π², the reference code's
  ``log_volume``), ``frobenius + log 2√2``: the measure of the published rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.config import deep_merge
from pipeline.evaluation import load_trained, log_density
from pipeline.metrics import nll_statistics
from pipeline.so3.benchmark_data import benchmark_path, load_benchmark
from pipeline.variants import get_variant

__all__ = [
    "ANGLE_SHIFT",
    "PUBLISHED",
    "fit_and_score_seed",
    "mixture_table",
    "mixture_timings",
    "model_configs",
    "trained_kinds",
]

ANGLE_SHIFT = math.log(2.0 * math.sqrt(2.0))
"""log(vol_Frobenius / vol_angle): add it to a Frobenius log-likelihood for the angle measure."""

PUBLISHED: dict[int, dict[str, tuple[float, float | None]]] = {
    16: {"Moser Flow": (0.85, 0.03), "Exp-wrapped SGM": (0.87, 0.04), "RSGM": (0.89, 0.03)},
    32: {"Moser Flow": (0.17, 0.03), "Exp-wrapped SGM": (0.16, 0.03), "RSGM": (0.20, 0.03)},
    64: {"Moser Flow": (-0.49, None), "Exp-wrapped SGM": (-0.58, None), "RSGM": (-0.49, None)},
}
"""Published test log-likelihoods (mean, ± as printed): M = 16 and 32 from seed 001's table,
M = 64 from the RSGM paper (no spread quoted here). Angle measure (see the module docstring)."""


def trained_kinds(models: Sequence[str]) -> list[str]:
    """The kinds to train for the evaluated ``models`` (``ambient_rb_corrected`` → ``ambient_rb``),
    in first-appearance order."""
    out: list[str] = []
    for model in models:
        kind = get_variant(model).trained_from
        if kind not in out:
            out.append(kind)
    return out


def model_configs(section: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each trained kind's config: ``common`` deep-merged with the kind's own section, checked
    by building it once (:meth:`pipeline.variants.base.Variant.validate`).

    Raises:
        KeyError: If ``models`` is missing.
        ValueError: On a config that does not build, or a manifold other than SO(3).
    """
    out = {}
    for kind in trained_kinds(section["models"]):
        config = deep_merge(section.get("common") or {}, section.get(kind) or {})
        if (config.get("manifold") or {}).get("name") != "so3":
            raise ValueError(f"so3.{kind}: the manifold must be {{name: so3}}")
        variant = get_variant(kind)
        if "so3" not in variant.manifolds:
            raise ValueError(f"so3.models: model {kind!r} does not run on SO(3)")
        variant.validate(config)
        out[kind] = config
    return out


def fit_and_score_seed(
    seed: int,
    *,
    kind: str,
    config: dict[str, Any],
    eval_kinds: Sequence[str],
    mixture: int,
    data_dir: str,
    models_dir: str,
    torch_threads: int = 1,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    batch_size: int = 4096,
    device: str = "cpu",
) -> dict[str, Any]:
    """Fit ``kind`` to one seed's training part and score every ``eval_kinds`` on its test part.

    Module-level, so process and Dask runners can pickle it (with ``functools.partial``).

    Args:
        seed: The seed (of the weights, the data order and the noise).
        kind: The trained kind.
        config: Its config.
        eval_kinds: Kinds evaluated from these weights (``kind`` and, for ``ambient_rb``,
            ``ambient_rb_corrected``).
        mixture: M.
        data_dir: The benchmark files' root (the seed's file is ``m<M>/seed<k>.npz``).
        models_dir: The models' root: the seed's folder is ``<models_dir>/<kind>/seed<k>``
            (checkpoint + model card; resumed when the config is unchanged).
        torch_threads: Threads of this seed's work.
        rtol, atol: PF-ODE tolerances.
        batch_size: Points per ODE solve.
        device: Evaluation device.

    Returns:
        ``{"seed", "steps", "train_seconds", "true_loglik", "scores": {kind: {"loglik",
        "nfe", "eval_seconds"}}}``, log-likelihoods per point (Frobenius measure).
    """
    torch.set_num_threads(max(1, int(torch_threads)))
    data = load_benchmark(benchmark_path(data_dir, mixture, seed))
    model_dir = Path(models_dir) / kind / f"seed{int(seed)}"
    parts = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in (("train", data.train),)}
    fitted = get_variant(kind).fit(config, parts, seed, model_dir)
    scores = {}
    for eval_kind in eval_kinds:
        t0 = time.perf_counter()
        trained = load_trained(model_dir, device=device, kind=eval_kind)
        logp, nfe = log_density(trained, data.test, rtol=rtol, atol=atol, batch_size=batch_size)
        scores[eval_kind] = {
            "loglik": float(np.mean(logp)),
            "nfe": int(nfe),
            "eval_seconds": time.perf_counter() - t0,
        }
    return {
        "seed": int(seed),
        "steps": int(fitted["steps"]),
        "train_seconds": float(fitted["train_seconds"]),
        "true_loglik": float(np.mean(data.test_logp)),
        "scores": scores,
    }


def _stats(values: Sequence[float], shift: float = 0.0) -> dict[str, float | None]:
    stats = nll_statistics([v + shift for v in values])
    # JSON has no NaN: one seed's spread is unknown, written as null.
    return {k: (None if math.isnan(v) else v) for k, v in stats.items()}


def mixture_table(
    mixture: int, results: Mapping[str, Sequence[Mapping[str, Any]]]
) -> dict[str, Any]:
    """The metrics of one mixture: every evaluated model and the true density, both measures.

    Args:
        mixture: M.
        results: Per trained kind, its seeds' :func:`fit_and_score_seed` results.

    Returns:
        ``{"mixture", "seeds", "measure", "true_density", "models": {kind: {...}},
        "published": {...}}``; a model's entry holds ``frobenius`` and ``angle`` statistics
        (mean, std, ci95 over seeds), ``gap_to_true`` (mean of the per-seed true − model, with
        its CI), per-seed values, mean NFE and training steps (seconds: :func:`mixture_timings`).

    Raises:
        ValueError: If the kinds disagree on the seeds or the true log-likelihoods.
    """
    first = next(iter(results.values()))
    seeds = [int(r["seed"]) for r in first]
    true = [float(r["true_loglik"]) for r in first]
    models: dict[str, Any] = {}
    for kind, rows in results.items():
        if [int(r["seed"]) for r in rows] != seeds:
            raise ValueError(f"so3 M={mixture}: {kind} has seeds {[r['seed'] for r in rows]}")
        if any(abs(float(r["true_loglik"]) - t) > 1e-9 for r, t in zip(rows, true, strict=True)):
            raise ValueError(f"so3 M={mixture}: {kind} was scored on other test points")
        for eval_kind in rows[0]["scores"]:
            ll = [float(r["scores"][eval_kind]["loglik"]) for r in rows]
            models[eval_kind] = {
                "frobenius": _stats(ll),
                "angle": _stats(ll, ANGLE_SHIFT),
                "gap_to_true": _stats([t - v for t, v in zip(true, ll, strict=True)]),
                "per_seed": ll,
                "nfe": float(np.mean([r["scores"][eval_kind]["nfe"] for r in rows])),
                "steps": int(rows[0]["steps"]),
            }
    return {
        "mixture": int(mixture),
        "seeds": seeds,
        "measure": "log-likelihood per test point; frobenius: w.r.t. the Frobenius-metric "
        "volume (16√2π²); angle: w.r.t. the angle-metric volume (8π²), the published rows' one",
        "true_density": {
            "frobenius": _stats(true),
            "angle": _stats(true, ANGLE_SHIFT),
            "per_seed": true,
        },
        "models": models,
        "published": {
            name: {"angle": mean, "pm": pm}
            for name, (mean, pm) in PUBLISHED.get(int(mixture), {}).items()
        },
    }


def mixture_timings(results: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """Wall-clock seconds per trained kind and seed (kept out of the metrics: they vary)."""
    return {
        kind: [
            {
                "seed": int(r["seed"]),
                "train_seconds": float(r["train_seconds"]),
                "eval_seconds": {k: float(v["eval_seconds"]) for k, v in r["scores"].items()},
            }
            for r in rows
        ]
        for kind, rows in results.items()
    }
