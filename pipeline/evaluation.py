"""Evaluation of fitted models: loading, log-density, normalisation check, samples.

A fitted seed folder (``data/models/<catalogue>/<model>/seed<k>/``) holds ``model.json`` (the
model name and the config it was built from) and what its variant wrote (a network variant:
its checkpoint, whose final EMA weights are evaluated). :func:`load_trained` reads the card
and hands the folder to the variant (:mod:`pipeline.variants`); the rest works on any
:class:`TrainedModel`: its closed-form density where it has one, else the probability-flow
ODE of its score field.

NLL is in nats per point, w.r.t. the area measure of the unit sphere (Riemannian volume).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pipeline.devices import resolve_device
from pipeline.likelihood import pf_ode_logp, sphere_grid
from pipeline.sampling import reverse_geodesic_random_walk
from pipeline.variants import TrainedModel, check_kind, get_variant
from pipeline.variants.base import read_model_card

__all__ = ["generate_samples", "load_trained", "log_density", "normalization"]


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
    card = read_model_card(model_dir)
    trained_kind = card["kind"]
    kind = trained_kind if kind is None else check_kind(kind)
    variant = get_variant(kind)
    if variant.trained_from != trained_kind:
        raise ValueError(
            f"{model_dir}: holds {trained_kind!r} weights, which model {kind!r} cannot use"
        )
    dev = resolve_device("auto" if device is None else str(device))
    return variant.load(model_dir, dict(card["config"]), dev)


def log_density(
    trained: TrainedModel,
    xyz: Tensor | np.ndarray,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    batch_size: int = 4096,
    t0: float = 1e-3,
) -> tuple[np.ndarray, int]:
    """Per-point log-density by the probability-flow ODE (dopri5, exact divergence).

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
    if trained.members:  # a mixture: log Σ_k w_k p_k, each member by its own method
        parts, nfe_total = [], 0
        for w, member in trained.members:
            if w <= 0.0:
                continue
            lp, nfe_k = log_density(member, xyz, rtol, atol, batch_size, t0)
            parts.append(lp + np.log(w))
            nfe_total += nfe_k
        return np.logaddexp.reduce(np.stack(parts), axis=0), nfe_total
    if trained.exact_log_prob is not None:  # closed form: no ODE, no function evaluations
        exact = trained.exact_log_prob(torch.as_tensor(np.asarray(xyz), dtype=torch.float64))
        return exact.detach().cpu().double().numpy(), 0
    x = torch.as_tensor(np.asarray(xyz), dtype=torch.float32, device=trained.device)
    logp, nfe = pf_ode_logp(
        trained.score_fn,
        trained.process,
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
    """Samples by the reverse geodesic random walk of ``trained.sample_score_fn``, shape (n, D),
    float64."""
    gen = torch.Generator(device=trained.device)
    gen.manual_seed(seed)
    if trained.exact_sample is not None:
        return trained.exact_sample(n, gen).detach().cpu().double().numpy()
    if trained.members:  # the member by weight, then its own sampler
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(n, [w for w, _ in trained.members])
        draws = [
            generate_samples(member, int(c), n_steps, seed + 1 + k)
            for k, ((_, member), c) in enumerate(zip(trained.members, counts, strict=True))
            if c > 0
        ]
        out = np.concatenate(draws)
        return out[rng.permutation(n)]
    x = reverse_geodesic_random_walk(
        trained.sample_score_fn,
        trained.process,
        n,
        n_steps,
        gen,
        device=trained.device,
    )
    return x.detach().cpu().double().numpy()
