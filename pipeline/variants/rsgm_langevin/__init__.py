"""``rsgm_langevin``: RSGM noising by Langevin dynamics to a reference law near the data.

The forward process is Langevin dynamics of a potential U (a Riemannian-normal or wrapped-normal
law centred at μ with concentration γ: :mod:`pipeline.sde.langevin`), so the reverse process
starts from that reference instead of the uniform law. The network learns the residual of the
score over the reference's, −∇U(x) + P_x net(x, t), by implicit score matching on Langevin
forward draws.

Config: the ``rsgm`` keys plus ``process``: ``{"name": "langevin", "potential":
"riemannian_normal" | "wrapped_normal", "mu": [x, y, z] | "frechet_mean", "gamma": γ | "fit"}``.
The data-dependent values are resolved from each seed's training split (:meth:`resolve`) before
the model card is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pipeline.variants.base import ScoreNetworkVariant, build_manifold, build_schedule

if TYPE_CHECKING:
    from torch import Tensor, nn

    from pipeline.config.schema import Section
    from pipeline.geometry import Manifold
    from pipeline.sde.process import ForwardProcess
    from pipeline.sde.schedules import BetaSchedule

__all__ = ["VARIANT"]

_PROCESS_KEYS = {"name", "potential", "mu", "gamma"}


def process_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``process`` entry with its defaults, checked.

    Raises:
        ValueError: On an unknown key or a process other than ``langevin``.
    """
    proc = dict(config.get("process") or {"name": "langevin"})
    unknown = set(proc) - _PROCESS_KEYS
    if unknown:
        raise ValueError(f"unknown process keys {sorted(unknown)}; known: {sorted(_PROCESS_KEYS)}")
    if proc.get("name", "langevin") != "langevin":
        raise ValueError(
            f"model 'rsgm_langevin' needs process name 'langevin', got {proc['name']!r}"
        )
    proc["name"] = "langevin"
    return proc


class LangevinVariant(ScoreNetworkVariant):
    """RSGM with a Langevin forward process and a residual score network."""

    manifolds = ("sphere", "so3")

    def __init__(self) -> None:
        super().__init__("rsgm_langevin")

    def schema(self) -> Section:
        from pipeline.config.params_schema import PROCESS, score_network_schema
        from pipeline.config.schema import Section

        return Section({**score_network_schema().fields, "process": PROCESS})

    def build_process(
        self, config: Mapping[str, Any], manifold: Manifold, schedule: BetaSchedule
    ) -> ForwardProcess:
        """Langevin dynamics of the configured potential.

        Raises:
            ValueError: On a bad ``process``, or ``"frechet_mean"``/``"fit"`` not yet resolved.
        """
        import torch

        from pipeline.sde.langevin import LangevinProcess, make_potential

        proc = process_config(config)
        mu, gamma = proc.get("mu", "frechet_mean"), proc.get("gamma", "fit")
        if isinstance(mu, str) or isinstance(gamma, str):
            raise ValueError(
                f"process mu={mu!r}, gamma={gamma!r} depend on the training data: resolve them "
                "first (VARIANT.resolve)"
            )
        mu_t = torch.as_tensor([float(v) for v in mu], dtype=torch.float64)
        if mu_t.shape != (manifold.ambient_dim,):
            raise ValueError(f"process mu needs {manifold.ambient_dim} coordinates, got {len(mu)}")
        potential = make_potential(
            str(proc.get("potential", "riemannian_normal")), manifold, mu_t, float(gamma)
        )
        return LangevinProcess(manifold, schedule, potential)

    def build_network(self, config: Mapping[str, Any], manifold: Manifold) -> nn.Module:
        from pipeline.models.residual import ReferenceResidualScore

        net = super().build_network(config, manifold)
        process = self.build_process(config, manifold, build_schedule(config["schedule"]))
        return ReferenceResidualScore(net, process.reference_score)

    def resolve(self, config: Mapping[str, Any], x_train: Tensor) -> dict[str, Any]:
        """``mu: frechet_mean`` becomes the Fréchet mean of ``x_train`` and ``gamma: fit`` the
        maximum-likelihood γ of the potential's invariant law at that μ."""
        import torch

        from pipeline.geometry.radial import frechet_mean
        from pipeline.sde.langevin import fit_gamma

        out = dict(config)
        proc = process_config(config)
        manifold = build_manifold(config.get("manifold"))
        mu = proc.get("mu", "frechet_mean")
        if mu == "frechet_mean":
            mu = [float(v) for v in frechet_mean(manifold, x_train)]
        elif isinstance(mu, str):
            raise ValueError(f"process mu must be 'frechet_mean' or coordinates, got {mu!r}")
        gamma = proc.get("gamma", "fit")
        potential = str(proc.get("potential", "riemannian_normal"))
        if gamma == "fit":
            gamma = fit_gamma(
                potential, manifold, x_train, torch.as_tensor(mu, dtype=torch.float64)
            )
        elif isinstance(gamma, str):
            raise ValueError(f"process gamma must be 'fit' or a number, got {gamma!r}")
        out["process"] = {**proc, "potential": potential, "mu": mu, "gamma": float(gamma)}
        return out

    def stand_ins(self, config: Mapping[str, Any], manifold: Manifold) -> dict[str, Any]:
        """The first uniform draw's point for μ and γ = 1 (their form is checked here; their
        values come from the data at training time)."""
        import torch

        proc = process_config(config)
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
        return {**config, "process": proc}


VARIANT = LangevinVariant()
