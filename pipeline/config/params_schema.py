"""The schema of every ``params.yaml`` section that the train, evaluate, split, summarize,
report and SO(3) stages read (see :mod:`pipeline.config.schema` for the checker).

``ingest``, ``maps`` and ``geometry`` keep their own validators (``pipeline.data.registry``,
``stages/maps.py``, ``stages/geometry.py``) and get a top-level key check here. A model
config (``train.common``, ``train.<model>``, ``train.overrides.<catalogue>``) is checked piece
by piece before merging, so a message names the section the mistake is in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pipeline.config.schema import Field, MapOf, Schema, Section, check

__all__ = [
    "SECTIONS",
    "check_section",
    "network_model_schema",
    "score_network_schema",
    "so3_schema",
    "train_schema",
]

_INT0 = Field("int", min=0)
_INT1 = Field("int", min=1)
_POS = Field("float", min=0.0, min_exclusive=True)
_NONNEG = Field("float", min=0.0)
_SEEDS = Field("list", items=_INT0)
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
"""``optim``: the fields of :class:`pipeline.config.train.TrainConfig` but ``seed`` (tested)."""

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
"""``process``: the forward process of ``rsgm_langevin``."""
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
"""``ipf``: the fields of :class:`pipeline.variants.dsb.config.IPFConfig` but ``seed`` (the
training seed;
tested), for ``dsb``."""


def network_model_schema() -> Section:
    """The keys every one-network variant takes: ``manifold``, ``schedule``, ``network`` and
    ``optim``."""
    return Section({"manifold": MANIFOLD, "schedule": SCHEDULE, "network": NETWORK, "optim": OPTIM})


def score_network_schema() -> Section:
    """The keys of an RSGM score network (``rsgm``; the base of ``rsgm_langevin`` and ``dsb``)."""
    return Section(
        {
            **network_model_schema().fields,
            "loss": RSGM_LOSS,
            "score_scaling": Field("str", choices=("none", "inv_std")),
        }
    )


def _union(sections: list[Section]) -> Section:
    """A section holding every key of ``sections`` (sub-sections of one key merged)."""
    fields: dict[str, Schema] = {}
    for sec in sections:
        for key, schema in sec.fields.items():
            old = fields.get(key)
            if isinstance(old, Section) and isinstance(schema, Section) and old is not schema:
                fields[key] = _union([old, schema])
            else:
                fields[key] = schema
    return Section(fields)


def _models_section(manifold: str | None, extra: dict[str, Schema]) -> Section:
    """``train`` (``manifold`` None) or ``so3``: the variants' own sections, from the registry.

    ``common`` and ``overrides.<catalogue>`` may hold any trained variant's keys; each
    ``<model>`` section only its own (:meth:`pipeline.variants.base.Variant.schema`).
    """
    import importlib

    # By name: stages that never read ``train`` (ingest, split) must not depend on the registry.
    registry: Any = importlib.import_module("pipeline.variants")
    variants = [registry.get_variant(n) for n in registry.variant_names()]
    if manifold is not None:
        variants = [v for v in variants if manifold in v.manifolds]
    trained = {v.name: v.schema() for v in variants if v.fitted_by == "train"}
    common = _union(list(trained.values()))
    return Section(
        {
            "models": Field("list", items=Field("str", choices=tuple(v.name for v in variants))),
            "runner": RUNNER,
            "torch_threads": _INT1,
            "common": common,
            **trained,
            **extra,
        }
    )


def train_schema() -> Section:
    """The ``train`` section (built from the registry on first use)."""
    return _models_section(
        None, {"seeds": _SEEDS, "overrides": MapOf(_models_section(None, {}).fields["common"])}
    )


EVALUATE = Section(
    {
        "models": Field("list", items=Field("str")),  # names checked by the registry
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


def so3_schema() -> Section:
    """``so3``: the variants that run on SO(3), trained and evaluated on each mixture (same
    configs as ``train``)."""
    return _models_section(
        "so3",
        {"rtol": _POS, "atol": _POS, "batch_size": _INT1, "device": _DEVICE},
    )


REPORT = Section({"title": Field("str"), "compare_rev": Field("str", nullable=True)})

_OPEN = Field("mapping")
SECTIONS: dict[str, Schema | Callable[[], Schema]] = {
    "ingest": Section(
        {"max_reject_fraction": Field("float", min=0.0, max=1.0), "catalogues": _OPEN}
    ),
    "split": SPLIT,
    "train": train_schema,
    "evaluate": EVALUATE,
    "maps": _OPEN,
    "report": REPORT,
    "geometry": _OPEN,
    "so3_data": SO3_DATA,
    "so3": so3_schema,
    "ensemble": _OPEN,
}
"""Every top-level section (``train`` and ``so3`` built from the variant registry on first
use); ``maps``, ``geometry`` and ``ensemble`` are checked key by key by their stages."""


def check_section(name: str, value: Any, where: str = "params.yaml") -> None:
    """Check one top-level section (and, for ``train``, each model config piece).

    Args:
        name: Section name (``"train"``).
        value: Its value.
        where: The params file, for messages.

    Raises:
        pipeline.config.schema.ParamsError: On an unknown section or key, a wrong type or a
            value out of range; the message starts with ``where`` and names the key path.
    """
    from pipeline.config.schema import ParamsError, unknown_key_message

    try:
        if name not in SECTIONS:
            raise ParamsError(unknown_key_message(name, "the top level", list(SECTIONS)))
        schema = SECTIONS[name]
        check(value, schema() if callable(schema) else schema, name)
    except ParamsError as exc:
        raise ParamsError(f"{where}: {exc}") from None


def check_params(params: Mapping[str, Any], where: str = "params.yaml") -> None:
    """Check every top-level section of a params mapping (see :func:`check_section`)."""
    for name, value in params.items():
        check_section(name, value, where)
