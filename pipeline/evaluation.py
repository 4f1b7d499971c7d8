"""Evaluation of trained models: loading, test NLL, normalisation check, samples, statistics.

A trained model directory (``data/models/<catalogue>/<model>/seed<k>/``) holds the trainer's
checkpoint (``ema.safetensors`` and friends) and ``model.json``: the model name and the config
dict it was built from (see :mod:`pipeline.zoo`). The final EMA weights are evaluated.

NLL is in nats per point, w.r.t. the area measure of the unit sphere (Riemannian volume).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pipeline import zoo
from pipeline.geometry import Manifold
from pipeline.likelihood import pf_ode_logp, sphere_grid
from pipeline.sampling import reverse_geodesic_random_walk
from pipeline.sde.schedules import BetaSchedule
from pipeline.training import load_checkpoint_weights, resolve_device

MODEL_FILE = "model.json"

# Two-sided 95% Student-t quantiles t_{0.975, n-1}; for 5 seeds 2.776 as in the published tables.
_T975 = {
    2: 12.706,
    3: 4.303,
    4: 3.182,
    5: 2.776,
    6: 2.571,
    7: 2.447,
    8: 2.365,
    9: 2.306,
    10: 2.262,
}


@dataclass
class TrainedModel:
    """A trained model ready for evaluation.

    Attributes:
        kind: Model name (a key of :data:`pipeline.zoo.MODEL_KINDS`).
        net: The module with its final EMA weights, in eval mode.
        score_fn: ``score_fn(x (B, D), t (B,)) -> (B, D)`` Riemannian score field.
        manifold: The manifold.
        schedule: β schedule.
        config: The config dict the model was built from.
        device: Where the model lives.
    """

    kind: str
    net: nn.Module
    score_fn: zoo.ScoreFn
    manifold: Manifold
    schedule: BetaSchedule
    config: dict[str, Any]
    device: torch.device


def write_model_card(model_dir: Path, kind: str, config: dict[str, Any]) -> None:
    """Record the model name and config next to its checkpoint (``model.json``)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / (MODEL_FILE + ".tmp")
    tmp.write_text(json.dumps({"kind": kind, "config": config}, indent=2) + "\n")
    tmp.replace(model_dir / MODEL_FILE)


def load_trained(
    model_dir: Path, device: str | torch.device | None = None, kind: str | None = None
) -> TrainedModel:
    """Load a trained model directory with its final EMA weights (safetensors, no pickle).

    Args:
        model_dir: ``data/models/<catalogue>/<model>/seed<k>``.
        device: Device (``None``/``"auto"``: CUDA when available).
        kind: Evaluate the weights as this variant (e.g. ``"ambient_rb_corrected"`` on an
            ``ambient_rb`` directory); default: the trained kind.

    Returns:
        The :class:`TrainedModel`.

    Raises:
        FileNotFoundError: If the directory has no model card or checkpoint.
        ValueError: If ``kind`` cannot use these weights.
    """
    model_dir = Path(model_dir)
    card_path = model_dir / MODEL_FILE
    if not card_path.is_file():
        raise FileNotFoundError(f"{card_path}: no model card (was the train stage run?)")
    card = json.loads(card_path.read_text())
    trained_kind = str(card["kind"])
    kind = trained_kind if kind is None else zoo.check_kind(kind)
    if zoo.TRAINED_FROM[kind] != trained_kind:
        raise ValueError(
            f"{model_dir}: holds {trained_kind!r} weights, which model {kind!r} cannot use"
        )
    config = dict(card["config"])
    dev = resolve_device("auto" if device is None else str(device))
    manifold = zoo.build_manifold(config.get("manifold"))
    schedule = zoo.build_schedule(config["schedule"])
    net = zoo.build_network(trained_kind, config, manifold)
    net.load_state_dict(load_checkpoint_weights(model_dir, "ema"))
    net.to(dev).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    score_fn = zoo.score_field(kind, net, manifold, schedule)
    return TrainedModel(kind, net, score_fn, manifold, schedule, config, dev)


def log_density(
    trained: TrainedModel,
    xyz: Tensor | np.ndarray,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    batch_size: int = 4096,
    t0: float = 1e-3,
) -> tuple[np.ndarray, int]:
    """Per-point log-density by the probability-flow ODE (dopri5, exact divergence, uniform base).

    Args:
        trained: The model.
        xyz: Points on the manifold, shape (N, D).
        rtol: Relative tolerance of the solver.
        atol: Absolute tolerance.
        batch_size: Points per ODE solve.
        t0: Data-side start time of the ODE (the model is trained on [eps, T]).

    Returns:
        Tuple ``(logp (N,), nfe)``: float64 log-densities in nats; mean function evaluations.
    """
    x = torch.as_tensor(np.asarray(xyz), dtype=torch.float32, device=trained.device)
    logp, nfe = pf_ode_logp(
        trained.score_fn,
        trained.manifold,
        trained.schedule,
        x,
        rtol=rtol,
        atol=atol,
        t0=t0,
        batch_size=batch_size,
    )
    return logp.detach().cpu().double().numpy(), int(nfe)


def normalization(
    trained: TrainedModel,
    n_lat: int,
    n_lon: int,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    batch_size: int = 4096,
) -> float:
    """∫_{S²} p dA of the model density by Gauss–Legendre × trapezoid quadrature (expect 1)."""
    xyz, w = sphere_grid(n_lat, n_lon, dtype=torch.float64)
    logp, _ = log_density(trained, xyz.numpy(), rtol=rtol, atol=atol, batch_size=batch_size)
    return float((w.numpy() * np.exp(logp)).sum())


def generate_samples(trained: TrainedModel, n: int, n_steps: int, seed: int) -> np.ndarray:
    """Samples by the reverse geodesic random walk, shape (n, D), float64."""
    gen = torch.Generator(device=trained.device)
    gen.manual_seed(seed)
    x = reverse_geodesic_random_walk(
        trained.score_fn,
        trained.manifold,
        trained.schedule,
        n,
        n_steps,
        gen,
        device=trained.device,
    )
    return x.detach().cpu().double().numpy()


def nll_statistics(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample std (ddof = 1) and 95% CI half-width t_{0.975,n−1}·std/√n over seeds.

    For 5 seeds the half-width is 2.776·std/√5, as in the published tables.

    Raises:
        ValueError: If ``values`` is empty or not finite.
    """
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0 or not np.isfinite(arr).all():
        raise ValueError(f"need finite per-seed values, got {arr.tolist()}")
    mean = float(arr.mean())
    if arr.size == 1:
        return {"mean": mean, "std": 0.0, "ci95": float("nan")}
    std = float(arr.std(ddof=1))
    n = int(arr.size)
    if n in _T975:
        t = _T975[n]
    else:
        from scipy.stats import t as student_t

        t = float(student_t.ppf(0.975, n - 1))
    return {"mean": mean, "std": std, "ci95": t * std / math.sqrt(n)}


PUBLISHED_RSGM = {"volcano": -4.92, "earthquake": -0.19, "flood": 0.45, "fire": -1.33}
"""Published RSGM test NLL (De Bortoli et al. 2022), for the terminal table."""


def format_nll_table(summary: dict[str, Any]) -> str:
    """Plain-text test-NLL table (mean ± 95% CI half-width) with the published RSGM row."""
    results: dict[str, dict[str, Any]] = summary.get("results", {})
    catalogues = list(results)
    models: list[str] = []
    for per_model in results.values():
        models.extend(m for m in per_model if m not in models)
    width = 18
    head = f"{'test NLL (nats)':<24}" + "".join(f"{c:>{width}}" for c in catalogues)
    lines = [head, "-" * len(head)]
    for model in models:
        cells = []
        for cat in catalogues:
            entry = results[cat].get(model)
            if entry is None:
                cells.append(f"{'—':>{width}}")
            else:
                cells.append(f"{entry['mean']:>+9.3f} ± {entry['ci95']:<6.3f}".rjust(width))
        lines.append(f"{model:<24}" + "".join(cells))
    pub = "".join(
        f"{PUBLISHED_RSGM[c]:>+9.2f}".ljust(width) if c in PUBLISHED_RSGM else f"{'—':>{width}}"
        for c in catalogues
    )
    lines.append(f"{'RSGM (published)':<24}" + pub)
    lines.append("mean ± 95% CI half-width over seeds; lower is better; nats per point on S².")
    return "\n".join(lines)
