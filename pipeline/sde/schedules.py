"""Noise schedules β(t) and their heat time s(t) = ∫₀ᵗ β(u) du."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, overload

import torch
from torch import Tensor


class BetaSchedule(ABC):
    """A positive rate β(t) on [0, T]; the forward SDE runs for heat time s(t) = ∫₀ᵗ β.

    ``beta`` and ``heat_time`` accept a float (returning a float) or a tensor of any shape
    (returning a tensor of the same shape and dtype).

    Attributes:
        T: terminal time.
    """

    T: float

    @overload
    def beta(self, t: float) -> float: ...
    @overload
    def beta(self, t: Tensor) -> Tensor: ...
    def beta(self, t: float | Tensor) -> float | Tensor:
        """Rate β(t).

        Args:
            t: float or Tensor, shape (...), times in [0, T].

        Returns:
            β(t), same type and shape as t.
        """
        return self._beta(t)

    @overload
    def heat_time(self, t: float) -> float: ...
    @overload
    def heat_time(self, t: Tensor) -> Tensor: ...
    def heat_time(self, t: float | Tensor) -> float | Tensor:
        """Heat time s(t) = ∫₀ᵗ β(u) du.

        Args:
            t: float or Tensor, shape (...), times in [0, T].

        Returns:
            s(t), same type and shape as t.
        """
        return self._heat_time(t)

    @overload
    def time_from_heat_time(self, s: float) -> float: ...
    @overload
    def time_from_heat_time(self, s: Tensor) -> Tensor: ...
    def time_from_heat_time(self, s: float | Tensor) -> float | Tensor:
        """Inverse of :meth:`heat_time` (t with s(t) = s), e.g. to draw t log-uniform in s.

        Args:
            s: float or Tensor, shape (...), heat times in [0, s(T)].

        Returns:
            t, same type and shape as s.
        """
        return self._time_from_heat_time(s)

    @abstractmethod
    def _beta(self, t: Any) -> Any: ...

    @abstractmethod
    def _heat_time(self, t: Any) -> Any: ...

    @abstractmethod
    def _time_from_heat_time(self, s: Any) -> Any: ...


class LinearBeta(BetaSchedule):
    """β(t) = β₀ + (β₁ − β₀) t/T, so s(t) = β₀ t + (β₁ − β₀) t²/(2T).

    Args:
        beta_0: rate at t = 0 (> 0).
        beta_1: rate at t = T (> 0).
        T: terminal time (> 0).
    """

    def __init__(self, beta_0: float, beta_1: float, T: float = 1.0) -> None:
        if not (beta_0 > 0 and beta_1 > 0 and T > 0):
            raise ValueError(
                f"LinearBeta needs beta_0 > 0, beta_1 > 0, T > 0; got {beta_0}, {beta_1}, {T}"
            )
        self.beta_0 = float(beta_0)
        self.beta_1 = float(beta_1)
        self.T = float(T)
        self._slope = (self.beta_1 - self.beta_0) / self.T

    def __repr__(self) -> str:
        return f"LinearBeta(beta_0={self.beta_0}, beta_1={self.beta_1}, T={self.T})"

    def _beta(self, t: Any) -> Any:
        return self.beta_0 + self._slope * t

    def _heat_time(self, t: Any) -> Any:
        return (self.beta_0 + 0.5 * self._slope * t) * t

    def _time_from_heat_time(self, s: Any) -> Any:
        a, b = 0.5 * self._slope, self.beta_0
        if a == 0.0:
            return s / b
        # Stable root of a t² + b t − s = 0: t = 2s / (b + sqrt(b² + 4as)).
        if isinstance(s, Tensor):
            return 2 * s / (b + torch.sqrt(b * b + 4 * a * s))
        return 2 * s / (b + math.sqrt(b * b + 4 * a * s))


class ConstantBeta(BetaSchedule):
    """β(t) = β, so s(t) = β t.

    Args:
        beta: the constant rate (> 0).
        T: terminal time (> 0).
    """

    def __init__(self, beta: float, T: float = 1.0) -> None:
        if not (beta > 0 and T > 0):
            raise ValueError(f"ConstantBeta needs beta > 0 and T > 0; got {beta}, {T}")
        self.beta_value = float(beta)
        self.T = float(T)

    def __repr__(self) -> str:
        return f"ConstantBeta(beta={self.beta_value}, T={self.T})"

    def _beta(self, t: Any) -> Any:
        if isinstance(t, Tensor):
            return torch.full_like(t, self.beta_value)
        return self.beta_value

    def _heat_time(self, t: Any) -> Any:
        return self.beta_value * t

    def _time_from_heat_time(self, s: Any) -> Any:
        return s / self.beta_value


_KINDS: dict[str, tuple[type[BetaSchedule], frozenset[str]]] = {
    "linear": (LinearBeta, frozenset({"beta_0", "beta_1", "T"})),
    "constant": (ConstantBeta, frozenset({"beta", "T"})),
}


def make_schedule(cfg: dict[str, Any]) -> BetaSchedule:
    """Build a schedule from a config dict (a params.yaml section).

    Args:
        cfg: ``{"kind": "linear", "beta_0": 0.001, "beta_1": 4.0, "T": 1.0}`` or
            ``{"kind": "constant", "beta": 2.0}`` (``T`` optional, default 1).

    Returns:
        The schedule.

    Raises:
        ValueError: unknown kind, unknown or missing keys.
    """
    cfg = dict(cfg)
    kind = cfg.pop("kind", None)
    if kind not in _KINDS:
        raise ValueError(f"schedule kind must be one of {sorted(_KINDS)}, got {kind!r}")
    cls, allowed = _KINDS[kind]
    unknown = set(cfg) - allowed
    if unknown:
        raise ValueError(
            f"unknown keys {sorted(unknown)} for schedule kind {kind!r} (allowed {sorted(allowed)})"
        )
    try:
        return cls(**{k: float(v) for k, v in cfg.items()})
    except TypeError as exc:
        raise ValueError(f"schedule {kind!r}: missing keys in {cfg} ({exc})") from exc
