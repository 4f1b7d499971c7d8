"""The schema of every ``params.yaml`` section that the train, evaluate, split, summarize,
report and SO(3) stages read (see :mod:`pipeline.schema` for the checker).

``ingest``, ``maps`` and ``geometry`` keep their own validators (``pipeline.data.registry``,
``stages/maps.py``, ``stages/geometry.py``) and get a top-level key check here. A model
config (``train.common``, ``train.<model>``, ``train.overrides.<catalogue>``) is checked piece
by piece before merging, so a message names the section the mistake is in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.schema import Field, MapOf, Schema, Section, check

__all__ = ["SECTIONS", "check_section", "model_config_schema"]

_INT0 = Field("int", min=0)
_INT1 = Field("int", min=1)
_POS = Field("float", min=0.0, min_exclusive=True)
_NONNEG = Field("float", min=0.0)
_SEEDS = Field("list", items=_INT0)
_TRAINED = ("rsgm", "ambient_raw", "ambient_rb", "rsgm_langevin", "dsb")
_MODELS = (*_TRAINED, "ambient_rb_corrected", "kde", "kde_rsgm")
_DEVICE = Field("str")

RUNNER = Section(
    {
        "kind": Field("str", choices=("thread", "process", "dask")),
        "max_workers": _INT1,
        "address": Field("str", nullable=True),
        "processes": Field("bool"),
    }
)

OPTIM = Section(
    {
        "steps": _INT0,
        "max_seconds": Field("float", min=0.0, min_exclusive=True, nullable=True),
        "batch_size": _INT1,
        "lr": _POS,
        "warmup_steps": _INT0,
        "lr_schedule": Field("str", choices=("cosine", "constant", "wsd")),
        "decay_fraction": Field("float", min=0.0, max=1.0, min_exclusive=True),
        "ema_decay": Field("float", min=0.0, max=1.0),
        "grad_clip": Field("float", nullable=True),
        "checkpoint_every": _INT1,
        "log_every": _INT1,
        "device": _DEVICE,
    }
)
"""``optim``: the fields of :class:`pipeline.train_config.TrainConfig` but ``seed`` (tested)."""

NETWORK = Section(
    {
        "hidden": _INT1,
        "depth": _INT1,
        "activation": Field("str", choices=("sine", "silu")),
        "omega": _POS,
        "time_embedding": Field("str", choices=("concat", "fourier", "log")),
        "n_freq": _INT1,
    }
)
"""``network``: the fields of :class:`pipeline.models.mlp.MLPConfig` (tested)."""

SCHEDULE = Section(
    {
        "kind": Field("str", choices=("linear", "constant")),
        "beta_0": _POS,
        "beta_1": _POS,
        "beta": _POS,
        "T": _POS,
    }
)
MANIFOLD = Section(
    {"name": Field("str", choices=("sphere", "torus", "euclidean", "so3")), "dim": _INT1}
)
_T_SAMPLER = Field("str", choices=("uniform", "log_uniform"))
_WEIGHTING = Field("str", choices=("variance", "likelihood", "none"))
RSGM_LOSS = Section(
    {
        "kind": Field("str", choices=("dsm", "ism")),
        "target": Field("str", choices=("exact", "tabulated", "varadhan")),
        "t_sampler": _T_SAMPLER,
        "eps": _POS,
        "weighting": _WEIGHTING,
        "sampler": Field("str", choices=("exact", "grw")),
        "grw_steps": _INT1,
        "divergence": Field("str"),
    }
)
AMBIENT_LOSS = Section({"t_sampler": _T_SAMPLER, "eps": _POS, "weighting": _WEIGHTING})
PROCESS = Section(
    {
        "name": Field("str", choices=("brownian", "langevin")),
        "potential": Field("str", choices=("riemannian_normal", "wrapped_normal")),
        "mu": Field("list", items=Field("float"), also=("frechet_mean",)),
        "gamma": Field("float", min=0.0, min_exclusive=True, also=("fit",)),
    }
)
"""``process``: the forward process of ``rsgm_langevin`` (see :mod:`pipeline.zoo`)."""
IPF = Section(
    {
        "n_iterations": _INT1,
        "sim_paths": _INT1,
        "sim_steps": _INT1,
        "train": OPTIM,
        "loss": Field("str", choices=("implicit", "mean_matching")),
        "warm_start": Field("bool"),
    }
)
"""``ipf``: the fields of :class:`pipeline.ipf_config.IPFConfig` but ``seed`` (the training seed;
tested), for ``dsb``."""


def model_config_schema(model: str | None) -> Section:
    """Schema of a (partial) model config: ``train.<model>`` or, with ``None``, one that may
    hold any model's keys (``train.common``, ``train.overrides.<catalogue>``)."""
    fields: dict[str, Schema] = {
        "manifold": MANIFOLD,
        "schedule": SCHEDULE,
        "network": NETWORK,
        "optim": OPTIM,
    }
    if model in ("rsgm", "rsgm_langevin", "dsb"):
        fields["loss"] = RSGM_LOSS
        fields["score_scaling"] = Field("str", choices=("none", "inv_std"))
        if model == "rsgm_langevin":
            fields["process"] = PROCESS
        if model == "dsb":
            fields["ipf"] = IPF
    elif model is not None:
        fields["loss"] = AMBIENT_LOSS
    else:
        merged = dict(RSGM_LOSS.fields)
        merged.update(AMBIENT_LOSS.fields)
        fields["loss"] = Section(merged)
        fields["score_scaling"] = Field("str", choices=("none", "inv_std"))
        fields["process"] = PROCESS
        fields["ipf"] = IPF
    return Section(fields)


TRAIN = Section(
    {
        "models": Field("list", items=Field("str", choices=_TRAINED)),
        "seeds": _SEEDS,
        "runner": RUNNER,
        "torch_threads": _INT1,
        "common": model_config_schema(None),
        **{m: model_config_schema(m) for m in _TRAINED},
        "overrides": MapOf(model_config_schema(None)),
    },
)

EVALUATE = Section(
    {
        "models": Field("list", items=Field("str", choices=_MODELS)),
        "runner": RUNNER,
        "torch_threads": _INT1,
        "rtol": _POS,
        "atol": _POS,
        "batch_size": _INT1,
        "val": Field("bool"),
        "device": _DEVICE,
        "normalization_grid": Field("list", items=_INT1, length=2),
        "normalization_seeds": Field("list", items=_INT0, also=("all",)),
        "normalization_tol": _POS,
        # The memorisation-free protocol's radii (degrees): test events farther than r from
        # every training event of their split.
        "far_radii_deg": Field("list", items=_POS),
    },
)

SPLIT_PROTOCOLS = ("rsgm", "hash", "rsgm+hash", "auto")
"""``pipeline.data.splits.PROTOCOLS``, written here so the schema stays free of the data layer
(a test keeps the two equal)."""

SPLIT = Section(
    {
        "protocol": Field("str", choices=SPLIT_PROTOCOLS),
        # Per-catalogue protocol, winning over ``protocol`` (a new catalogue needs none).
        "overrides": MapOf(Field("str", choices=SPLIT_PROTOCOLS), nullable_values=False),
        "seeds": _SEEDS,
        "fractions": Field("list", items=_NONNEG, length=3),
    },
)

SO3_DATA = Section(
    {
        "mixtures": Field("list", items=_INT1),
        "seeds": _SEEDS,
        "n_train": _INT1,
        "n_val": _INT1,
        "n_test": _INT1,
        "precision_shape": _POS,
    }
)
"""``so3_data``: the SO(3) benchmark's wrapped-normal mixtures (:mod:`pipeline.so3.benchmark`)."""

_SO3_TRAINED = ("rsgm", "ambient_raw", "ambient_rb")
SO3 = Section(
    {
        "models": Field(
            "list", items=Field("str", choices=(*_SO3_TRAINED, "ambient_rb_corrected"))
        ),
        "runner": RUNNER,
        "torch_threads": _INT1,
        "common": model_config_schema(None),
        **{m: model_config_schema(m) for m in _SO3_TRAINED},
        "rtol": _POS,
        "atol": _POS,
        "batch_size": _INT1,
        "device": _DEVICE,
    }
)
"""``so3``: models trained and evaluated on each SO(3) mixture (same configs as ``train``)."""

REPORT = Section({"title": Field("str"), "compare_rev": Field("str", nullable=True)})

_OPEN = Field("mapping")
SECTIONS: dict[str, Schema] = {
    "ingest": Section(
        {"max_reject_fraction": Field("float", min=0.0, max=1.0), "catalogues": _OPEN}
    ),
    "split": SPLIT,
    "train": TRAIN,
    "evaluate": EVALUATE,
    "maps": _OPEN,
    "report": REPORT,
    "geometry": _OPEN,
    "so3_data": SO3_DATA,
    "so3": SO3,
    "kde": _OPEN,
    "ensemble": _OPEN,
}
"""Every top-level section; ``maps``, ``geometry``, ``kde`` and ``ensemble`` are checked key by
key by their stages (``kde``: :class:`pipeline.variants.kde.KDEConfig`)."""


def check_section(name: str, value: Any, where: str = "params.yaml") -> None:
    """Check one top-level section (and, for ``train``, each model config piece).

    Args:
        name: Section name (``"train"``).
        value: Its value.
        where: The params file, for messages.

    Raises:
        pipeline.schema.ParamsError: On an unknown section or key, a wrong type or a value out
            of range; the message starts with ``where`` and names the key path.
    """
    from pipeline.schema import ParamsError, unknown_key_message

    try:
        if name not in SECTIONS:
            raise ParamsError(unknown_key_message(name, "the top level", list(SECTIONS)))
        check(value, SECTIONS[name], name)
    except ParamsError as exc:
        raise ParamsError(f"{where}: {exc}") from None


def check_params(params: Mapping[str, Any], where: str = "params.yaml") -> None:
    """Check every top-level section of a params mapping (see :func:`check_section`)."""
    for name, value in params.items():
        check_section(name, value, where)
