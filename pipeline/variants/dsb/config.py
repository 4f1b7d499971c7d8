"""The ``ipf:`` part of a ``dsb`` model config: the settings of iterative proportional fitting.

A ``dsb`` config is an ``rsgm`` config plus the key ``ipf`` (:func:`dsb_parts`); the IPF fields
are checked here, below :mod:`pipeline.variants.dsb` (which validates configs) and
:mod:`pipeline.variants.dsb.ipf` (which runs them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pipeline.config.schema import did_you_mean
from pipeline.config.train import TrainConfig
from pipeline.variants.base import ScoreNetworkVariant

__all__ = ["DSB_IPF_KEY", "RSGM_PART", "IPFConfig", "IPFLoss", "dsb_parts", "ipf_config"]

IPFLoss = Literal["implicit", "mean_matching"]

DSB_IPF_KEY = "ipf"
"""The key of a ``dsb`` config that holds its :class:`IPFConfig` fields (all but ``seed``)."""
RSGM_PART = ScoreNetworkVariant("rsgm")
"""A bridge's iteration 1 and the architecture of its fields: the ``rsgm`` model of its config
(so iteration 1 is bit-identical to that model)."""


@dataclass(frozen=True)
class IPFConfig:
    """Settings of :func:`pipeline.variants.dsb.ipf.run_ipf` (the ``ipf:`` of a ``dsb`` config).

    Attributes:
        n_iterations: IPF iterations (>= 1; 1 is the RSGM model alone).
        sim_paths: Walks simulated per half-step.
        sim_steps: Steps per walk (uniform grid on [eps, T]); rows per half-step:
            ``sim_paths * sim_steps``. Keep that at least ``steps * batch_size`` of ``train``
            (each cached row seen about once): the implicit loss overfits a small cache (on a
            short-horizon vMF mixture, 1000 × 50 rows for 1500 × 256 draws turned the NLL from
            1.03 to 1.65 nats with f = 0; 8000 × 50 rows gave 1.07).
        train: :class:`~pipeline.config.train.TrainConfig` fields for every field of iterations
            >= 2, over the RSGM config's ``optim`` (``seed`` is set per field).
        loss: ``"implicit"`` or ``"mean_matching"``.
        seed: Seeds iteration 1 (as ``fit_seed``'s seed) and, offset per field, the
            initialisation, trainer and walks of the later ones.
        warm_start: Start f_n from f_{n−1} (n >= 3) and b_n from b_{n−1} (else a fresh init).
    """

    n_iterations: int = 2
    sim_paths: int = 10_000
    sim_steps: int = 100
    train: dict[str, Any] = field(default_factory=dict)
    loss: IPFLoss = "implicit"
    seed: int = 0
    warm_start: bool = True

    def __post_init__(self) -> None:
        for name in ("n_iterations", "sim_paths", "sim_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"IPF key {name!r}: expected an integer >= 1, got {value!r}")
        if self.loss not in ("implicit", "mean_matching"):
            raise ValueError(f"IPF loss must be 'implicit' or 'mean_matching', got {self.loss!r}")
        if "seed" in self.train:
            raise ValueError("IPF train: 'seed' is set per field from the IPF seed")
        TrainConfig.from_dict(dict(self.train))  # unknown keys and bad values fail here

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> IPFConfig:
        """Build from a plain dict, rejecting unknown keys (with the nearest valid name).

        Raises:
            ValueError: On an unknown key or a bad value.
        """
        fields = list(cls.__dataclass_fields__)
        for key in cfg:
            if key not in fields:
                raise ValueError(f"unknown IPF key {key!r}; {did_you_mean(key, fields)}")
        return cls(**{**cfg, "train": dict(cfg.get("train", {}))})

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serialisable dict."""
        return asdict(self)


def dsb_parts(cfg: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a ``dsb`` config into its ``rsgm`` config and its ``ipf`` mapping.

    Args:
        cfg: The ``dsb`` config.

    Returns:
        ``(rsgm_config, ipf_fields)``: the config without ``ipf`` (iteration 1 and the
        architecture of every field) and the ``ipf`` mapping (empty when absent).

    Raises:
        ValueError: If ``ipf`` is not a mapping, holds ``seed``, or the manifold is not a
            sphere.
    """
    rsgm = {k: v for k, v in cfg.items() if k != DSB_IPF_KEY}
    ipf = cfg.get(DSB_IPF_KEY) or {}
    if not isinstance(ipf, Mapping):
        raise ValueError(f"dsb config key 'ipf' must be a mapping, got {ipf!r}")
    if "seed" in ipf:
        raise ValueError("dsb config key 'ipf.seed': the IPF seed is the training seed")
    name = str(dict(cfg.get("manifold") or {}).get("name", "sphere"))
    if name != "sphere":
        raise ValueError(
            f"model 'dsb' runs on the sphere only (the bridge's walks and losses are built and "
            f"tested there), got manifold {name!r}"
        )
    return rsgm, dict(ipf)


def ipf_config(cfg: Mapping[str, Any], seed: int) -> IPFConfig:
    """The :class:`IPFConfig` of a ``dsb`` config for one training seed.

    Raises:
        ValueError: On a bad ``ipf`` entry (an unknown key is named).
    """
    return IPFConfig.from_dict({**dsb_parts(cfg)[1], "seed": int(seed)})
