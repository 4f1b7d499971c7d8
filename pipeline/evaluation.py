"""Evaluation of trained models: loading, test NLL, normalisation check, samples, statistics.

A trained model directory (``data/models/<catalogue>/<model>/seed<k>/``) holds the trainer's
checkpoint (``ema.safetensors`` and friends) and ``model.json``: the model name and the config
dict it was built from (see :mod:`pipeline.zoo`). The final EMA weights are evaluated. A
``dsb`` folder (the Schrödinger bridge, :func:`pipeline.fit.fit_seed`) holds the IPF folders
instead; its likelihood is the bridge's probability-flow ODE (effective score b − f) and its
sampler the backward walk of b (:class:`pipeline.bridge.model.BridgeModel`).

NLL is in nats per point, w.r.t. the area measure of the unit sphere (Riemannian volume).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pipeline import zoo
from pipeline.bridge.ipf import load_bridge
from pipeline.devices import resolve_device
from pipeline.geometry import Manifold
from pipeline.likelihood import pf_ode_logp, sphere_grid
from pipeline.sampling import reverse_geodesic_random_walk
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.process import ForwardProcess
from pipeline.sde.schedules import BetaSchedule
from pipeline.training import MODEL_CARD_FILE, CheckpointError, load_checkpoint_weights


@dataclass
class TrainedModel:
    """A trained model ready for evaluation.

    Attributes:
        kind: Model name (a key of :data:`pipeline.zoo.MODEL_KINDS`).
        net: The module with its final EMA weights, in eval mode (``dsb``: a
            :class:`torch.nn.ModuleList` of its fields, b_1, f_2, b_2, ...).
        score_fn: ``score_fn(x (B, D), t (B,)) -> (B, D)`` Riemannian score field of the
            probability-flow ODE (``dsb``: the bridge's effective score b_k − f_k).
        manifold: The manifold.
        schedule: β schedule.
        config: The config dict the model was built from.
        device: Where the model lives.
        process: The forward process (Brownian motion, or Langevin for ``rsgm_langevin``):
            the likelihood's base and the sampler's start; None: Brownian motion on
            ``manifold`` with ``schedule``.
        sample_score_fn: The score field of the reverse walk, same signature; None:
            ``score_fn`` (``dsb``: the backward field b_k, whose step is the bridge's
            backward drift β b_k).
        exact_log_prob: ``exact_log_prob(x (N, D)) -> (N,)`` float64, for a variant whose
            density is closed form (``kde``): :func:`log_density` uses it instead of the ODE.
        exact_sample: ``exact_sample(n, generator) -> (n, D)``, an exact sampler that
            :func:`generate_samples` uses instead of the reverse walk.
        members: ``((weight, model), ...)`` for a mixture of models (``kde_rsgm``): its
            log-density is the weighted log-sum-exp of theirs and its samples come from the
            members by weight; empty for a single model.
    """

    kind: str
    net: nn.Module
    score_fn: zoo.ScoreFn
    manifold: Manifold
    schedule: BetaSchedule
    config: dict[str, Any]
    device: torch.device
    process: ForwardProcess = None  # type: ignore[assignment]  # filled in __post_init__
    sample_score_fn: zoo.ScoreFn = None  # type: ignore[assignment]  # filled in __post_init__
    exact_log_prob: Callable[[Tensor], Tensor] | None = None
    exact_sample: Callable[[int, torch.Generator], Tensor] | None = None
    members: tuple[tuple[float, TrainedModel], ...] = ()

    def __post_init__(self) -> None:
        if self.process is None:
            self.process = BrownianMotion(self.manifold, self.schedule)
        if self.sample_score_fn is None:
            self.sample_score_fn = self.score_fn


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
    card_path = model_dir / MODEL_CARD_FILE
    if not card_path.is_file():
        raise FileNotFoundError(
            f"{card_path}: no model card (run `dvc pull` to fetch the weights, or `dvc repro`)"
        )
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        trained_kind = str(card["kind"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{card_path}: not a model card ({exc}); run `dvc checkout` or retrain"
        ) from exc
    kind = trained_kind if kind is None else zoo.check_kind(kind)
    if zoo.TRAINED_FROM[kind] != trained_kind:
        raise ValueError(
            f"{model_dir}: holds {trained_kind!r} weights, which model {kind!r} cannot use"
        )
    config = dict(card["config"])
    dev = resolve_device("auto" if device is None else str(device))
    if trained_kind == "dsb":
        return _load_bridge_model(model_dir, config, dev)
    if trained_kind == "kde":
        return _load_kde_model(model_dir, config, dev)
    if trained_kind == "kde_rsgm":
        return _load_mixture(model_dir, trained_kind, config, device)
    manifold = zoo.build_manifold(config.get("manifold"))
    schedule = zoo.build_schedule(config["schedule"])
    net = zoo.build_network(trained_kind, config, manifold)
    net.load_state_dict(load_checkpoint_weights(model_dir, "ema"))
    net.to(dev).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    score_fn = zoo.score_field(kind, net, manifold, schedule)
    process = zoo.build_process(trained_kind, config, manifold, schedule)
    return TrainedModel(kind, net, score_fn, manifold, schedule, config, dev, process)


def _load_mixture(
    model_dir: Path, kind: str, config: dict[str, Any], device: str | torch.device | None
) -> TrainedModel:
    """An ensemble folder (``kde_rsgm``): its members' seed folders inside it, with weights.

    Raises:
        CheckpointError: If the card's members and weights do not match.
    """
    names, weights = list(config.get("members", [])), [float(w) for w in config.get("weights", [])]
    if not names or len(names) != len(weights) or abs(sum(weights) - 1.0) > 1e-9:
        raise CheckpointError(
            f"{model_dir}: an ensemble card needs members and weights summing to 1"
        )
    members = tuple(
        (w, load_trained(model_dir / name, device=device))
        for name, w in zip(names, weights, strict=True)
    )
    lead = members[-1][1]  # the score model: its field drives the map's PF-ODE diagnostics
    return TrainedModel(
        kind,
        nn.ModuleList([m.net for _, m in members]),
        lead.score_fn,
        lead.manifold,
        lead.schedule,
        config,
        lead.device,
        lead.process,
        members=members,
    )


def _load_kde_model(model_dir: Path, config: dict[str, Any], dev: torch.device) -> TrainedModel:
    """A ``kde`` folder as a :class:`TrainedModel`: exact density and sampler; its score field
    is the heat flow of the kernel mixture at heat time s(t) (:mod:`pipeline.variants.kde`)."""
    from pipeline.variants.kde import load_kde

    density = load_kde(model_dir)
    manifold = zoo.build_manifold(config.get("manifold"))
    schedule = zoo.build_schedule(config["schedule"])

    def score_fn(x: Tensor, t: Tensor) -> Tensor:
        return density.score(x, schedule.heat_time(t))

    def sample(n: int, generator: torch.Generator) -> Tensor:
        return density.sample(n, generator)

    return TrainedModel(
        "kde",
        nn.Module(),
        score_fn,
        manifold,
        schedule,
        config,
        torch.device("cpu"),  # a kernel sum: float64 on the CPU
        exact_log_prob=density.log_prob,
        exact_sample=sample,
    )


def _load_bridge_model(model_dir: Path, config: dict[str, Any], dev: torch.device) -> TrainedModel:
    """A ``dsb`` folder as a :class:`TrainedModel`: iteration ``ipf.n_iterations`` of its card.

    Raises:
        FileNotFoundError: If the bridge has fewer finished iterations than its card asks for.
    """
    n_iterations = zoo.ipf_config(config, seed=0).n_iterations
    bridge = load_bridge(model_dir, device=dev)
    if bridge.n_iterations < n_iterations:
        raise FileNotFoundError(
            f"{model_dir}: {bridge.n_iterations} of {n_iterations} IPF iterations finished "
            "(run the train stage again to resume)"
        )
    fields: list[nn.Module] = [bridge.backward_field(1)]
    for k in range(2, n_iterations + 1):
        f_k = bridge.forward_field(k)
        fields += [bridge.backward_field(k)] if f_k is None else [f_k, bridge.backward_field(k)]
    return TrainedModel(
        "dsb",
        nn.ModuleList(fields),
        bridge.effective_score_fn(n_iterations),
        bridge.manifold,
        bridge.schedule,
        config,
        dev,
        bridge.process,
        sample_score_fn=bridge.backward_field(n_iterations),
    )


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
