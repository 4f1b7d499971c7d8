"""The contract of a model variant, and what every variant shares.

A model variant is one package ``pipeline/variants/<name>/`` whose ``__init__.py`` defines
``VARIANT``, an instance of :class:`Variant`. The engine (stages, evaluation, maps, the CLI)
never names a variant: it asks the registry (:func:`pipeline.variants.get_variant`) and calls
the contract:

| member | what it is |
|---|---|
| ``name`` | the model name (= the package name = the params section ``train.<name>``) |
| ``trained_from`` | whose fitted folder it evaluates (itself, or e.g. ``ambient_rb``) |
| ``fitted_by`` | the stage that writes its folder: ``train``, ``derive`` or ``ensemble`` |
| ``common_keys`` | which keys of ``train.common`` it takes (None: all) |
| :meth:`Variant.schema` | its params section's schema |
| :meth:`Variant.validate` | build what a fit builds, once, so bad params fail early |
| :meth:`Variant.fit` | fit one seed into a folder (resuming) |
| :meth:`Variant.load` | a fitted folder as a :class:`TrainedModel` |

One-network score models subclass :class:`NetworkVariant` (network, loss and score field;
fitting by :func:`pipeline.training.train` and loading of the EMA weights are shared);
:class:`ScoreNetworkVariant` is the tangent score network trained by DSM/ISM (``rsgm``).

Nothing here imports torch at module level, so the registry stays cheap for stages that only
move files or read metrics.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

    from pipeline.config.schema import Section
    from pipeline.geometry import Manifold
    from pipeline.sde.process import ForwardProcess
    from pipeline.sde.schedules import BetaSchedule

__all__ = [
    "FittedBy",
    "LossFn",
    "NetworkVariant",
    "ScoreFn",
    "ScoreNetworkVariant",
    "TrainedModel",
    "Variant",
    "build_manifold",
    "build_schedule",
    "read_model_card",
    "same_config",
]

ScoreFn = Callable[["Tensor", "Tensor"], "Tensor"]
"""``score_fn(x (B, D), t (B,)) -> (B, D)``: a Riemannian score field at diffusion time t."""
LossFn = Callable[..., "Tensor"]
"""``loss_fn(model, x0 (B, D), generator) -> scalar``: a training loss."""
FittedBy = Literal["train", "derive", "ensemble"]

# Serialises seeded initialisation (see NetworkVariant.network).
_INIT_LOCK = threading.RLock()


@dataclass
class TrainedModel:
    """A fitted model ready for evaluation.

    Attributes:
        kind: Model name.
        net: The module with its final EMA weights, in eval mode (``dsb``: a
            :class:`torch.nn.ModuleList` of its fields; ``kde``: an empty module).
        score_fn: Riemannian score field of the probability-flow ODE.
        manifold: The manifold.
        schedule: β schedule.
        config: The config dict the model was built from.
        device: Where the model lives.
        process: The forward process (the likelihood's base and the sampler's start); None:
            Brownian motion on ``manifold`` with ``schedule``.
        sample_score_fn: The score field of the reverse walk; None: ``score_fn``.
        exact_log_prob: ``exact_log_prob(x (N, D)) -> (N,)`` float64, for a variant whose
            density is closed form: :func:`pipeline.evaluation.log_density` uses it instead of
            the ODE.
        exact_sample: ``exact_sample(n, generator) -> (n, D)``, an exact sampler used instead
            of the reverse walk.
        members: ``((weight, model), ...)`` for a mixture of models: its log-density is the
            weighted log-sum-exp of theirs and its samples come from the members by weight.
        description: How its density is computed, for map titles (e.g. ``"exact kernel
            sum"``); empty: the probability-flow ODE.
    """

    kind: str
    net: nn.Module
    score_fn: ScoreFn
    manifold: Manifold
    schedule: BetaSchedule
    config: dict[str, Any]
    device: torch.device
    process: ForwardProcess = None  # type: ignore[assignment]  # filled in __post_init__
    sample_score_fn: ScoreFn = None  # type: ignore[assignment]  # filled in __post_init__
    exact_log_prob: Callable[[Tensor], Tensor] | None = None
    exact_sample: Callable[[int, torch.Generator], Tensor] | None = None
    members: tuple[tuple[float, TrainedModel], ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if self.process is None:
            from pipeline.sde.brownian import BrownianMotion

            self.process = BrownianMotion(self.manifold, self.schedule)
        if self.sample_score_fn is None:
            self.sample_score_fn = self.score_fn


def build_manifold(cfg: Mapping[str, Any] | None) -> Manifold:
    """Manifold from ``{"name": "sphere"|"torus"|"euclidean"|"so3", "dim": int}`` (default S²).

    ``so3`` is the rotation group in R^{3×3}; its ``dim``, if given, must be 3. It is imported
    by name so that the S² stages' code deps stay free of the SO(3) package (the SO(3) stages
    import it themselves).

    Raises:
        ValueError: On an unknown name.
    """
    from pipeline.geometry import Euclidean, FlatTorus, Sphere

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
        import importlib

        so3: Any = importlib.import_module("pipeline.so3.manifold")
        return so3.SO3()  # type: ignore[no-any-return]
    raise ValueError(f"unknown manifold {name!r}; known: sphere, torus, euclidean, so3")


def build_schedule(cfg: Mapping[str, Any]) -> BetaSchedule:
    """β schedule from its config (see :func:`pipeline.sde.make_schedule`)."""
    from pipeline.sde.schedules import make_schedule

    return make_schedule(dict(cfg))


def read_model_card(model_dir: Path) -> dict[str, Any]:
    """A fitted folder's model card (``model.json``): ``{"kind", "config"}``.

    Raises:
        FileNotFoundError: If there is none.
        pipeline.checkpoints.CheckpointError: If it is not a model card.
    """
    from pipeline.checkpoints import MODEL_CARD_FILE, CheckpointError

    path = Path(model_dir) / MODEL_CARD_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no model card (fit it with `dvc repro`, or `dvc pull` where a remote "
            "holds the weights)"
        )
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(card["kind"], str) or not isinstance(card["config"], dict):
            raise TypeError("kind must be a string and config a mapping")
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: not a model card ({exc}); run `dvc checkout` or refit"
        ) from exc
    return dict(card)


def same_config(model_dir: Path, kind: str, config: dict[str, Any]) -> bool:
    """Whether ``model_dir`` holds a model card of this kind and exactly this config."""
    try:
        card = read_model_card(model_dir)
    except (FileNotFoundError, ValueError):
        return False
    return bool(card["kind"] == kind and card["config"] == config)


class Variant:
    """A model variant: what it is, how it is fitted and how a fitted folder is loaded.

    Subclasses set the class attributes and override the methods they need.

    Attributes:
        name: The model name (its package name and its ``train.<name>`` params section).
        trained_from: The variant whose fitted folder this one evaluates.
        fitted_by: The stage that writes its folder (``train``; ``derive``: a copy of
            ``trained_from``'s folder; ``ensemble``: from its members' stored scores).
        common_keys: Keys of ``train.common`` merged into its config; None: every key.
        manifolds: Manifold names it runs on.
        members: The variants an ensemble mixes (``fitted_by == "ensemble"``).
    """

    name: str = ""
    trained_from: str = ""
    fitted_by: FittedBy = "train"
    common_keys: tuple[str, ...] | None = None
    manifolds: tuple[str, ...] = ("sphere",)
    members: tuple[str, ...] = ()

    def __init__(self) -> None:
        if not self.trained_from:
            self.trained_from = self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def schema(self) -> Section:
        """The schema of this variant's params section (``train.<name>``).

        Raises:
            ValueError: For a variant that has no params section of its own.
        """
        raise ValueError(f"model {self.name!r} has no train section (fitted by {self.fitted_by})")

    def validate(self, config: Mapping[str, Any]) -> None:
        """Check a merged config by building what a fit builds (no data needed).

        Raises:
            KeyError, ValueError: On a missing or bad value (naming the key).
        """

    def check_keys(self, config: Mapping[str, Any]) -> None:
        """Check a config's keys and value types against :meth:`schema`.

        Raises:
            pipeline.config.schema.ParamsError: On an unknown key (with the nearest known one) or a
                value of the wrong type, naming the key path under the model's name.
        """
        from pipeline.config.schema import check

        check(dict(config), self.schema(), self.name)

    def fit(
        self,
        config: dict[str, Any],
        parts: Mapping[str, Tensor],
        seed: int,
        out_dir: Path,
        *,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Fit one seed into ``out_dir`` (its files and model card), resuming where it can.

        Args:
            config: The merged config (``train_config@``'s output).
            parts: ``{"train": (N, D), "val": (M, D)}`` float32 tensors of this seed's split.
            seed: Seeds every random choice of the fit.
            out_dir: The seed's folder.
            progress: Show progress on a terminal.

        Returns:
            ``{"seed", "steps", "train_seconds", "resumed_from", "loss_history"}``.

        Raises:
            ValueError: For a variant the train stage does not fit, or on bad data.
        """
        raise ValueError(f"model {self.name!r} is not trained: it is fitted by {self.fitted_by}")

    def load(self, model_dir: Path, config: dict[str, Any], device: torch.device) -> TrainedModel:
        """A fitted seed folder (whose card names ``trained_from``) as a :class:`TrainedModel`.

        Raises:
            FileNotFoundError, pipeline.checkpoints.CheckpointError: On a missing or damaged
                folder.
        """
        raise NotImplementedError


class NetworkVariant(Variant):
    """A variant that is one network trained by :func:`pipeline.training.train`.

    Subclasses give :meth:`build_network`, :meth:`build_loss` and :meth:`score_field`; the
    fit (data-dependent values resolved, a checkpoint of another config discarded, the card
    written before training, the trainer's resume) and the loading of the final EMA weights
    are shared.
    """

    def build_network(self, config: Mapping[str, Any], manifold: Manifold) -> nn.Module:
        """The trainable module (fresh weights)."""
        raise NotImplementedError

    def build_loss(
        self, config: Mapping[str, Any], manifold: Manifold, schedule: BetaSchedule
    ) -> LossFn:
        """The training loss ``loss_fn(model, x0 (B, D), generator) -> scalar``."""
        raise NotImplementedError

    def score_field(self, net: nn.Module, manifold: Manifold, schedule: BetaSchedule) -> ScoreFn:
        """The Riemannian score field of the trained module, differentiable in x."""
        raise NotImplementedError

    def build_process(
        self, config: Mapping[str, Any], manifold: Manifold, schedule: BetaSchedule
    ) -> ForwardProcess:
        """The forward process: Brownian motion to the uniform law (the default).

        Raises:
            ValueError: If the config names another process (only ``rsgm_langevin`` takes one).
        """
        from pipeline.sde.brownian import BrownianMotion

        proc = config.get("process")
        if proc not in (None, {}, {"name": "brownian"}):
            name = proc.get("name") if isinstance(proc, Mapping) else proc
            raise ValueError(
                f"model {self.name!r} noises by Brownian motion, which takes no potential, mu or "
                f"gamma (got a process named {name!r}; rsgm_langevin takes one)"
            )
        return BrownianMotion(manifold, schedule)

    def resolve(self, config: Mapping[str, Any], x_train: Tensor) -> dict[str, Any]:
        """The config with its data-dependent values computed from the training points
        (default: a copy). Deterministic in ``x_train``."""
        return dict(config)

    def network(
        self, config: Mapping[str, Any], manifold: Manifold, seed: int | None = None
    ) -> nn.Module:
        """:meth:`build_network`, with its initial weights drawn after ``manual_seed(seed)``.

        Under a lock: seeds built on threads of one process must not interleave draws from
        torch's global generator, or the weights would depend on the task runner.
        """
        if seed is None:
            return self.build_network(config, manifold)
        import torch

        with _INIT_LOCK:
            torch.manual_seed(seed)
            return self.build_network(config, manifold)

    def stand_ins(self, config: Mapping[str, Any], manifold: Manifold) -> dict[str, Any]:
        """The config with data-dependent values stood in by valid ones (for
        :meth:`validate`; default: unchanged)."""
        return dict(config)

    def validate(self, config: Mapping[str, Any]) -> None:
        """Build the manifold, schedule, trainer config and loss once.

        Raises:
            KeyError: If ``schedule`` is missing.
            ValueError: On any bad value.
        """
        from pipeline.config.train import TrainConfig

        if "schedule" not in config:
            raise KeyError(f"the {self.name} config needs a 'schedule:'")
        if self.fitted_by == "train":
            self.check_keys(config)
        TrainConfig.from_dict({**config.get("optim", {}), "seed": 0})
        manifold = build_manifold(config.get("manifold"))
        schedule = build_schedule(config["schedule"])
        config = self.stand_ins(config, manifold)
        self.build_process(config, manifold, schedule)
        if self.fitted_by == "train":
            self.build_loss(config, manifold, schedule)

    def fit(
        self,
        config: dict[str, Any],
        parts: Mapping[str, Tensor],
        seed: int,
        out_dir: Path,
        *,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Train one seed (see :meth:`Variant.fit`); only ``parts["train"]`` is used."""
        if self.fitted_by != "train":
            return super().fit(config, parts, seed, out_dir, progress=progress)
        from pipeline.checkpoints import write_model_card
        from pipeline.config.train import TrainConfig
        from pipeline.training import train

        out_dir = Path(out_dir)
        x_train = parts["train"].float()  # networks train in float32
        config = self.resolve(config, x_train)
        if out_dir.exists() and not same_config(out_dir, self.name, config):
            shutil.rmtree(out_dir)  # a checkpoint of another config must not be resumed
        write_model_card(out_dir, self.name, config)
        manifold = build_manifold(config.get("manifold"))
        schedule = build_schedule(config["schedule"])
        net = self.network(config, manifold, seed=seed)
        loss_fn = self.build_loss(config, manifold, schedule)
        cfg = TrainConfig.from_dict({**config.get("optim", {}), "seed": seed})
        result = train(net, loss_fn, x_train, cfg, out_dir, progress=progress, restart_damaged=True)
        return {
            "seed": seed,
            "steps": result.steps,
            "train_seconds": result.wall_seconds,
            "resumed_from": result.resumed_from,
            "loss_history": [[int(s), float(v)] for s, v in result.loss_history],
        }

    def load(self, model_dir: Path, config: dict[str, Any], device: torch.device) -> TrainedModel:
        """The folder's final EMA weights (safetensors, no pickle) in this variant's field."""
        from pipeline.checkpoints import load_checkpoint_weights

        manifold = build_manifold(config.get("manifold"))
        schedule = build_schedule(config["schedule"])
        net = self.build_network(config, manifold)
        net.load_state_dict(load_checkpoint_weights(Path(model_dir), "ema"))
        net.to(device).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        score_fn = self.score_field(net, manifold, schedule)
        process = self.build_process(config, manifold, schedule)
        return TrainedModel(self.name, net, score_fn, manifold, schedule, config, device, process)


class ScoreNetworkVariant(NetworkVariant):
    """The RSGM score network: P_x net(x, t), trained by denoising (or implicit) score matching.

    Config keys: ``manifold``, ``schedule``, ``network`` (:class:`pipeline.models.MLPConfig`
    fields), ``optim``, ``loss`` (:func:`pipeline.losses.make_rsgm_loss`) and
    ``score_scaling``: ``"none"``, or ``"inv_std"`` (the network output is divided by √s(t),
    so that it stays O(1) where the score is ~1/√s).
    """

    manifolds: tuple[str, ...] = ("sphere", "so3", "torus", "euclidean")

    def __init__(self, name: str = "rsgm") -> None:
        self.name = name
        super().__init__()

    def schema(self) -> Section:
        from pipeline.config.params_schema import score_network_schema

        return score_network_schema()

    def build_network(self, config: Mapping[str, Any], manifold: Manifold) -> nn.Module:
        from pipeline.models import build_score_model

        scaling = str(config.get("score_scaling", "none"))
        if scaling not in ("none", "inv_std"):
            raise ValueError(f"score_scaling must be 'none' or 'inv_std', got {scaling!r}")
        schedule = build_schedule(config["schedule"]) if scaling == "inv_std" else None
        return build_score_model(manifold, dict(config.get("network", {})), schedule)

    def build_loss(
        self, config: Mapping[str, Any], manifold: Manifold, schedule: BetaSchedule
    ) -> LossFn:
        from pipeline.losses import make_rsgm_loss

        process = self.build_process(config, manifold, schedule)
        return make_rsgm_loss(dict(config.get("loss", {})), process)

    def score_field(self, net: nn.Module, manifold: Manifold, schedule: BetaSchedule) -> ScoreFn:
        return net
