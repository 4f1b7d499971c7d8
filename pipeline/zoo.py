"""The model variants of geosgm, built from plain config dicts.

One place maps a model name to its network, its training loss and the score field that the
sampler and the likelihood use:

| name | network input | training target | score field at heat time s |
|---|---|---|---|
| ``rsgm`` | x ∈ M, t | exact heat-kernel score (DSM) | P_x net(x, t) |
| ``ambient_raw`` | X = Z + σξ, σ | (Z − X)/σ² | tangent part at x, σ = √s |
| ``ambient_rb`` | π(X), σ | P_{π(X)}(Z − X)/σ² | tangent part at x, σ = √s |
| ``ambient_rb_corrected`` | ``ambient_rb`` weights | (not retrained) | ŝ − σ²(½W_H − Ric♯)ŝ |
| ``rsgm_langevin`` | x ∈ M, t | ISM on Langevin forward draws | −∇U(x) + P_x net(x, t) |
| ``dsb`` | x ∈ M, t (all fields) | IPF half-steps | b_k − f_k; b_k (sampler) |

Every model but ``rsgm_langevin`` noises by Brownian motion to the uniform law;
``rsgm_langevin`` noises by Langevin dynamics to a Riemannian-normal (or wrapped-normal)
reference near the data (:mod:`pipeline.sde.langevin`).

A config dict has the keys ``manifold`` (``{"name": "sphere", "dim": 2}``), ``schedule``
(see :func:`pipeline.sde.make_schedule`), ``network`` (:class:`pipeline.models.MLPConfig`
fields), ``loss``, for ``rsgm`` and ``rsgm_langevin`` ``score_scaling`` (``"none"``, or
``"inv_std"``: the network output is divided by √s(t) so that it stays O(1) where the score is
~1/√s), and for ``rsgm_langevin`` ``process``: ``{"name": "langevin", "potential":
"riemannian_normal" | "wrapped_normal", "mu": [x, y, z] | "frechet_mean", "gamma": γ | "fit"}``
(the data-dependent values are resolved from each seed's training split by
:func:`resolve_config` before the model card is written).

A ``dsb`` config (the diffusion Schrödinger bridge, fitted by iterative proportional fitting in
:mod:`pipeline.bridge.ipf`) is an ``rsgm`` config (:func:`dsb_parts`: its iteration 1, and the
architecture, horizon, ``eps`` and ``weighting`` of every later field) plus one key ``ipf``:
the :class:`IPFConfig` fields but ``seed``, which is the training seed (:func:`ipf_config`).
It is a bridge of several fields, not one network: :func:`build_network`,
:func:`build_loss` and :func:`score_field` refuse it (:func:`pipeline.fit.fit_seed` fits it,
:func:`pipeline.evaluation.load_trained` loads it). It runs on the sphere only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from pipeline.geometry import Euclidean, FlatTorus, Manifold, Sphere
from pipeline.ipf_config import DSB_IPF_KEY, IPFConfig, dsb_parts, ipf_config
from pipeline.kinds import MODEL_KINDS, TRAINED_FROM, check_kind
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.process import ForwardProcess
from pipeline.sde.schedules import BetaSchedule, make_schedule

# Serialises seeded initialisation (see build_network).
_INIT_LOCK = threading.RLock()

__all__ = [
    "DSB_IPF_KEY",
    "MODEL_KINDS",
    "TRAINED_FROM",
    "IPFConfig",
    "build_loss",
    "build_manifold",
    "build_network",
    "build_process",
    "build_schedule",
    "check_kind",
    "dsb_parts",
    "ipf_config",
    "resolve_config",
    "score_field",
    "validate_config",
]

ScoreFn = Callable[[Tensor, Tensor], Tensor]
LossFn = Callable[..., Tensor]


def _refuse_dsb(kind: str, what: str) -> None:
    if kind == "dsb":
        raise ValueError(
            f"model 'dsb' has no single {what}: it is a Schrödinger bridge of several fields "
            "(fit it with pipeline.fit.fit_seed, load it with pipeline.evaluation.load_trained)"
        )


def build_manifold(cfg: Mapping[str, Any] | None) -> Manifold:
    """Manifold from ``{"name": "sphere"|"torus"|"euclidean"|"so3", "dim": int}`` (default S²).

    ``so3`` is the rotation group in R^{3×3} (:class:`pipeline.so3.manifold.SO3`); its ``dim``,
    if given, must be 3.

    Raises:
        ValueError: On an unknown name.
    """
    cfg = dict(cfg or {"name": "sphere", "dim": 2})
    name = str(cfg.get("name", "sphere"))
    dim = int(cfg.get("dim", 2))
    if name == "sphere":
        return Sphere(dim)
    if name == "torus":
        return FlatTorus(dim)
    if name == "euclidean":
        return Euclidean(dim)
    if name == "so3":
        if int(cfg.get("dim", 3)) != 3:
            raise ValueError(f"manifold so3 has dim 3, got {cfg['dim']!r}")
        from pipeline.so3.manifold import SO3

        return SO3()
    raise ValueError(f"unknown manifold {name!r}; known: sphere, torus, euclidean, so3")


def build_schedule(cfg: Mapping[str, Any]) -> BetaSchedule:
    """β schedule from its config (see :func:`pipeline.sde.make_schedule`)."""
    return make_schedule(dict(cfg))


def build_network(
    kind: str, cfg: Mapping[str, Any], manifold: Manifold, seed: int | None = None
) -> nn.Module:
    """The trainable module of a model variant.

    Args:
        kind: A name of :data:`MODEL_KINDS`.
        cfg: Model config (uses ``network``).
        manifold: The manifold.
        seed: If given, the initial weights are drawn after ``torch.manual_seed(seed)``,
            under a lock: seeds built on threads of one process must not interleave draws
            from torch's global generator, or the weights would depend on the task runner.

    Returns:
        The module whose weights the trainer optimises and the checkpoints hold.
    """
    if seed is not None:
        with _INIT_LOCK:
            torch.manual_seed(seed)
            return build_network(kind, cfg, manifold)
    kind = check_kind(kind)
    _refuse_dsb(kind, "network")
    network = dict(cfg.get("network", {}))
    if kind in ("rsgm", "rsgm_langevin"):
        from pipeline.models import build_score_model

        scaling = str(cfg.get("score_scaling", "none"))
        if scaling not in ("none", "inv_std"):
            raise ValueError(f"score_scaling must be 'none' or 'inv_std', got {scaling!r}")
        schedule = build_schedule(cfg["schedule"]) if scaling == "inv_std" else None
        net = build_score_model(manifold, network, schedule)
        if kind == "rsgm":
            return net
        from pipeline.models.residual import ReferenceResidualScore

        process = build_process(kind, cfg, manifold, build_schedule(cfg["schedule"]))
        return ReferenceResidualScore(net, process.reference_score)
    from pipeline.ambient.models import build_ambient_model

    return build_ambient_model(kind, manifold, network)


def build_loss(
    kind: str, cfg: Mapping[str, Any], manifold: Manifold, schedule: BetaSchedule
) -> LossFn:
    """Training loss ``loss_fn(model, x0 (B, D), generator) -> scalar`` of a variant.

    Raises:
        ValueError: For ``ambient_rb_corrected``, which is never trained, and ``dsb``.
    """
    kind = check_kind(kind)
    _refuse_dsb(kind, "loss")
    loss_cfg = dict(cfg.get("loss", {}))
    if kind in ("rsgm", "rsgm_langevin"):
        from pipeline.losses import make_rsgm_loss

        return make_rsgm_loss(loss_cfg, build_process(kind, cfg, manifold, schedule))
    if kind == "ambient_rb_corrected":
        raise ValueError("ambient_rb_corrected is not trained: it reuses the ambient_rb weights")
    from pipeline.ambient.models import make_ambient_loss

    return make_ambient_loss(kind, loss_cfg, manifold, schedule)


def score_field(kind: str, net: nn.Module, manifold: Manifold, schedule: BetaSchedule) -> ScoreFn:
    """The Riemannian score field ``score_fn(x (B, D), t (B,)) -> (B, D)`` of a trained model.

    Args:
        kind: A name of :data:`MODEL_KINDS`.
        net: The trained module (from :func:`build_network` with the checkpoint loaded).
        manifold: The manifold.
        schedule: β schedule (ambient models are queried at σ = √s(t)).

    Returns:
        A callable, differentiable in x.

    Raises:
        ValueError: For ``dsb`` (see :func:`pipeline.evaluation.load_trained`).
    """
    kind = check_kind(kind)
    _refuse_dsb(kind, "score field")
    if kind in ("rsgm", "rsgm_langevin"):
        return net
    from pipeline.ambient.models import AmbientScoreModel, ambient_score_field

    if not isinstance(net, AmbientScoreModel):
        raise TypeError(f"model {kind!r} needs an AmbientScoreModel, got {type(net).__name__}")
    return ambient_score_field(net, kind, manifold, schedule)


_PROCESS_KEYS = {"name", "potential", "mu", "gamma"}


def _process_cfg(kind: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    default = {"name": "langevin" if kind == "rsgm_langevin" else "brownian"}
    proc = dict(cfg.get("process") or default)
    unknown = set(proc) - _PROCESS_KEYS
    if unknown:
        raise ValueError(f"unknown process keys {sorted(unknown)}; known: {sorted(_PROCESS_KEYS)}")
    want = default["name"]
    if proc.get("name", want) != want:
        raise ValueError(f"model {kind!r} needs process name {want!r}, got {proc.get('name')!r}")
    proc["name"] = want
    if want == "brownian" and set(proc) != {"name"}:
        raise ValueError("the brownian process takes no potential, mu or gamma")
    return proc


def build_process(
    kind: str, cfg: Mapping[str, Any], manifold: Manifold, schedule: BetaSchedule
) -> ForwardProcess:
    """The forward process of a variant: Brownian motion, or Langevin for ``rsgm_langevin``.

    Raises:
        ValueError: On a bad ``process`` entry, or a data-dependent value (``"frechet_mean"``,
            ``"fit"``) that :func:`resolve_config` has not resolved.
    """
    proc = _process_cfg(check_kind(kind), cfg)
    if proc["name"] == "brownian":
        return BrownianMotion(manifold, schedule)
    from pipeline.sde.langevin import LangevinProcess, make_potential

    mu, gamma = proc.get("mu", "frechet_mean"), proc.get("gamma", "fit")
    if isinstance(mu, str) or isinstance(gamma, str):
        raise ValueError(
            f"process mu={mu!r}, gamma={gamma!r} depend on the training data: resolve them with "
            "zoo.resolve_config first"
        )
    mu_t = torch.as_tensor([float(v) for v in mu], dtype=torch.float64)
    if mu_t.shape != (manifold.ambient_dim,):
        raise ValueError(f"process mu needs {manifold.ambient_dim} coordinates, got {len(mu)}")
    potential = make_potential(
        str(proc.get("potential", "riemannian_normal")), manifold, mu_t, float(gamma)
    )
    return LangevinProcess(manifold, schedule, potential)


def resolve_config(kind: str, cfg: Mapping[str, Any], train_x: Tensor) -> dict[str, Any]:
    """The config with the process's data-dependent values computed from the training data.

    ``mu: frechet_mean`` becomes the Fréchet mean of ``train_x`` and ``gamma: fit`` the
    maximum-likelihood γ of the potential's invariant law at that μ; other configs are
    returned unchanged (as a copy). Deterministic in ``train_x``.

    Args:
        kind: Model name.
        cfg: Model config.
        train_x: Tensor, shape (N, D), the training points.

    Returns:
        A new config dict.
    """
    out = dict(cfg)
    proc = _process_cfg(check_kind(kind), cfg)
    if proc["name"] == "brownian":
        return out
    from pipeline.geometry.radial import frechet_mean
    from pipeline.sde.langevin import fit_gamma

    manifold = build_manifold(cfg.get("manifold"))
    mu = proc.get("mu", "frechet_mean")
    if mu == "frechet_mean":
        mu = [float(v) for v in frechet_mean(manifold, train_x)]
    elif isinstance(mu, str):
        raise ValueError(f"process mu must be 'frechet_mean' or coordinates, got {mu!r}")
    gamma = proc.get("gamma", "fit")
    potential = str(proc.get("potential", "riemannian_normal"))
    if gamma == "fit":
        mu_t = torch.as_tensor(mu, dtype=torch.float64)
        gamma = fit_gamma(potential, manifold, train_x, mu_t)
    elif isinstance(gamma, str):
        raise ValueError(f"process gamma must be 'fit' or a number, got {gamma!r}")
    out["process"] = {**proc, "potential": potential, "mu": mu, "gamma": float(gamma)}
    return out


def validate_config(kind: str, cfg: Mapping[str, Any]) -> None:
    """Build a variant's manifold, schedule, process and loss once, so a bad config fails early.

    Data-dependent process values are stood in by the first uniform draw's point and γ = 1
    (their form is checked; their values come from the data at training time). A ``dsb``
    config is checked as its ``rsgm`` part plus :meth:`IPFConfig.from_dict` of its ``ipf``.

    Raises:
        KeyError: If ``schedule`` is missing.
        ValueError: On any bad value (an unknown ``ipf`` key is named).
    """
    kind = check_kind(kind)
    if kind == "dsb":
        rsgm, _ = dsb_parts(cfg)
        validate_config("rsgm", rsgm)
        ipf_config(cfg, seed=0)
        return
    if DSB_IPF_KEY in cfg:
        raise ValueError(f"config key 'ipf' is for model 'dsb' only, not {kind!r}")
    if "schedule" not in cfg:
        raise KeyError(f"the {kind} config needs a 'schedule:'")
    manifold = build_manifold(cfg.get("manifold"))
    schedule = build_schedule(cfg["schedule"])
    proc = _process_cfg(kind, cfg)
    if proc["name"] != "brownian":
        stand_ins = {
            "mu": manifold.random_uniform(1, dtype=torch.float64)[0].tolist(),
            "gamma": 1.0,
        }
        for key, word in (("mu", "frechet_mean"), ("gamma", "fit")):
            value = proc.get(key, word)
            if isinstance(value, str):
                if value != word:
                    raise ValueError(f"process {key} must be {word!r} or a number, got {value!r}")
                proc[key] = stand_ins[key]
        cfg = {**cfg, "process": proc}
    if kind != "ambient_rb_corrected":
        build_loss(kind, cfg, manifold, schedule)
