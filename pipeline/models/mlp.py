"""Score networks: a plain MLP with a time input and the tangent-projected RSGM score model."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from pipeline.geometry.manifold import Manifold
from pipeline.sde.schedules import BetaSchedule

Activation = Literal["sine", "silu"]
TimeEmbedding = Literal["concat", "fourier", "log"]


class Sine(nn.Module):
    r"""Elementwise :math:`\sin(\omega z)`.

    Args:
        omega: Frequency :math:`\omega` multiplying the pre-activation.
    """

    def __init__(self, omega: float = 1.0) -> None:
        super().__init__()
        self.omega = float(omega)

    def forward(self, z: Tensor) -> Tensor:
        r"""Apply the activation.

        Args:
            z: Tensor of any shape.

        Returns:
            Tensor of the same shape, :math:`\sin(\omega z)`.
        """
        return torch.sin(z) if self.omega == 1.0 else torch.sin(self.omega * z)

    def extra_repr(self) -> str:
        return f"omega={self.omega}"


class LogTimeEmbedding(nn.Module):
    r"""Time and its logarithm, :math:`[t, \tfrac14 \log \max(t, 10^{-6})]`.

    With t drawn log-uniformly the score changes on a log-time scale (most of the NLL lives at
    small heat times); the log input lets the network resolve t in [1e-3, 1e-2] as easily as
    t in [0.1, 1]. The factor ¼ keeps the input of order 1 for t >= 1e-3.
    """

    def forward(self, t: Tensor) -> Tensor:
        """Embed times.

        Args:
            t: Tensor, shape (B,).

        Returns:
            Tensor, shape (B, 2).
        """
        return torch.stack([t, 0.25 * torch.log(t.clamp_min(1e-6))], dim=-1)


class FourierTimeEmbedding(nn.Module):
    r"""Deterministic Fourier features of the time, :math:`[t, \sin(2\pi f_k t), \cos(2\pi f_k t)]`.

    Frequencies are geometric from 0.5 to ``max_freq`` (``n_freq`` of them); the raw t is kept.

    Args:
        n_freq: Number of frequencies.
        max_freq: Largest frequency (cycles per unit time).
    """

    def __init__(self, n_freq: int = 8, max_freq: float = 64.0) -> None:
        super().__init__()
        if n_freq < 1:
            raise ValueError(f"n_freq must be >= 1, got {n_freq}")
        freqs = torch.logspace(math.log10(0.5), math.log10(max_freq), n_freq)
        self.register_buffer("freqs", 2.0 * math.pi * freqs)
        self.out_dim = 1 + 2 * n_freq

    def forward(self, t: Tensor) -> Tensor:
        """Embed times.

        Args:
            t: Tensor, shape (B,).

        Returns:
            Tensor, shape (B, 1 + 2 * n_freq).
        """
        freqs: Tensor = self.freqs  # type: ignore[assignment]
        arg = t[:, None] * freqs.to(t.dtype)
        return torch.cat([t[:, None], torch.sin(arg), torch.cos(arg)], dim=-1)


@dataclass(frozen=True)
class MLPConfig:
    r"""Hyper-parameters of :class:`MLP` (maps one-to-one onto a ``params.yaml`` section).

    Attributes:
        hidden: Width of every hidden layer.
        depth: Number of hidden layers (>= 1).
        activation: ``"sine"`` (SIREN-style initialisation) or ``"silu"``.
        omega: First-layer frequency :math:`\omega_0` of the sine network (ignored for SiLU).
        time_embedding: ``"concat"`` (append t to x) or ``"fourier"``.
        n_freq: Number of Fourier frequencies when ``time_embedding == "fourier"``.
    """

    hidden: int = 256
    depth: int = 4
    activation: Activation = "sine"
    omega: float = 10.0
    time_embedding: TimeEmbedding = "concat"
    n_freq: int = 8

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> MLPConfig:
        """Build from a plain dict, rejecting unknown keys.

        Args:
            cfg: Mapping with a subset of the dataclass field names.

        Returns:
            The config.

        Raises:
            ValueError: On an unknown key.
        """
        known = set(cls.__dataclass_fields__)
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"unknown MLP config keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**cfg)

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-serialisable dict."""
        return asdict(self)


class MLP(nn.Module):
    r"""Fully connected network :math:`(x, t) \mapsto` an unprojected ambient vector.

    With ``activation="sine"`` the layers follow SIREN (Sitzmann et al. 2020): the first computes
    :math:`\sin(\omega_0 (W x + b))` with :math:`W, b \sim U(\pm 1/n)`, the others
    :math:`\sin(W h + b)` with :math:`W, b \sim U(\pm\sqrt{6/n})` (n the fan-in), which keeps
    the activations' distribution stable with depth; :math:`\omega_0` (``omega``) sets the
    spatial frequency content at initialisation. The output layer is linear with PyTorch's default
    weights scaled by 0.1 and zero bias (small initial scores).

    Args:
        in_dim: Ambient dimension D of x.
        out_dim: Output dimension (usually D).
        hidden: Hidden width.
        depth: Number of hidden layers (>= 1).
        activation: ``"sine"`` or ``"silu"``.
        omega: First-layer sine frequency :math:`\omega_0`.
        time_embedding: ``"concat"`` or ``"fourier"``.
        n_freq: Number of Fourier time frequencies.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: int = 256,
        depth: int = 4,
        activation: Activation = "sine",
        omega: float = 10.0,
        time_embedding: TimeEmbedding = "concat",
        n_freq: int = 8,
    ) -> None:
        super().__init__()
        if depth < 1 or hidden < 1:
            raise ValueError(f"depth and hidden must be >= 1, got depth={depth}, hidden={hidden}")
        if activation not in ("sine", "silu"):
            raise ValueError(f"activation must be 'sine' or 'silu', got {activation!r}")
        if time_embedding not in ("concat", "fourier", "log"):
            raise ValueError(
                f"time_embedding must be 'concat', 'fourier' or 'log', got {time_embedding!r}"
            )
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.time_embed: nn.Module | None
        if time_embedding == "fourier":
            emb = FourierTimeEmbedding(n_freq)
            self.time_embed = emb
            t_dim = emb.out_dim
        elif time_embedding == "log":
            self.time_embed = LogTimeEmbedding()
            t_dim = 2
        else:
            self.time_embed = None
            t_dim = 1
        layers: list[nn.Module] = []
        widths = [in_dim + t_dim] + [hidden] * depth
        for i in range(depth):
            lin = nn.Linear(widths[i], widths[i + 1])
            first = i == 0
            act: nn.Module
            if activation == "sine":
                act = Sine(omega if first else 1.0)
                bound = 1.0 / widths[i] if first else math.sqrt(6.0 / widths[i])
                with torch.no_grad():
                    lin.weight.uniform_(-bound, bound)
                    lin.bias.uniform_(-bound, bound)
            else:
                act = nn.SiLU()
            layers += [lin, act]
        out = nn.Linear(hidden, out_dim)
        with torch.no_grad():
            out.weight.mul_(0.1)
            out.bias.zero_()
        layers.append(out)
        self.net = nn.Sequential(*layers)

    @classmethod
    def from_config(cls, in_dim: int, out_dim: int, cfg: MLPConfig | dict[str, Any]) -> MLP:
        """Build from an :class:`MLPConfig` or a plain dict of its fields.

        Args:
            in_dim: Ambient input dimension.
            out_dim: Output dimension.
            cfg: Config or dict.

        Returns:
            The network.
        """
        c = cfg if isinstance(cfg, MLPConfig) else MLPConfig.from_dict(cfg)
        return cls(in_dim, out_dim, **c.to_dict())

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """Evaluate the network.

        Args:
            x: Tensor, shape (B, in_dim).
            t: Tensor, shape (B,) or scalar (broadcast to B).

        Returns:
            Tensor, shape (B, out_dim), not projected.
        """
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        t = t.to(x.dtype)
        te = self.time_embed(t) if self.time_embed is not None else t[:, None]
        return self.net(torch.cat([x, te], dim=-1))


class TangentScoreModel(nn.Module):
    r"""RSGM score model :math:`s_\theta(x, t) = P_x\, \mathrm{net}(x, t)` (a tangent field).

    Args:
        net: Module mapping (x (B, D), t (B,)) to (B, D).
        manifold: Manifold whose ``proju`` projects onto the tangent space at x.
    """

    def __init__(self, net: nn.Module, manifold: Manifold) -> None:
        super().__init__()
        self.net = net
        self.manifold = manifold

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """Evaluate the score.

        Args:
            x: Tensor, shape (B, D), points on the manifold.
            t: Tensor, shape (B,) or scalar.

        Returns:
            Tensor, shape (B, D), tangent vectors at x.
        """
        return self.manifold.proju(x, self.net(x, t))

    def score_fn(self, x: Tensor, t: Tensor) -> Tensor:
        """Alias of :meth:`forward` matching the ``score_fn(x, t)`` convention."""
        return self.forward(x, t)


class ScaledTangentScoreModel(TangentScoreModel):
    r"""RSGM score model :math:`P_x\,\mathrm{net}(x, t)/\sqrt{s(t)}` (output over the noise scale).

    The score of the heat kernel at heat time s has magnitude ~ 1/√s (hundreds at the smallest
    training times); dividing by √s(t) lets the network output O(1) values at every t
    (the usual noise-prediction preconditioning).

    Args:
        net: Module mapping (x (B, D), t (B,)) to (B, D).
        manifold: Manifold whose ``proju`` projects onto the tangent space at x.
        schedule: β schedule giving the heat time s(t).
    """

    def __init__(self, net: nn.Module, manifold: Manifold, schedule: BetaSchedule) -> None:
        super().__init__(net, manifold)
        self.schedule = schedule

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """Evaluate the score.

        Args:
            x: Tensor, shape (B, D), points on the manifold.
            t: Tensor, shape (B,) or scalar.

        Returns:
            Tensor, shape (B, D), tangent vectors at x.
        """
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        std = torch.sqrt(self.schedule.heat_time(t.to(x.dtype))).clamp_min(1e-4)
        return self.manifold.proju(x, self.net(x, t)) / std[:, None]


def build_score_model(
    manifold: Manifold,
    cfg: MLPConfig | dict[str, Any],
    schedule: BetaSchedule | None = None,
) -> TangentScoreModel:
    """Build the RSGM model (MLP + tangent projection) for a manifold from a config.

    Args:
        manifold: The manifold (its ``ambient_dim`` sets the input/output size).
        cfg: :class:`MLPConfig` or dict of its fields.
        schedule: When given, the output is divided by √s(t) (:class:`ScaledTangentScoreModel`).

    Returns:
        The tangent score model.
    """
    d = int(manifold.ambient_dim)
    if schedule is not None:
        return ScaledTangentScoreModel(MLP.from_config(d, d, cfg), manifold, schedule)
    return TangentScoreModel(MLP.from_config(d, d, cfg), manifold)
