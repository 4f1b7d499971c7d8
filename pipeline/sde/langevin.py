r"""Langevin noising (seed 000): dX = −½β(t)∇U(X) dt + √β(t) dB^M, to the law ∝ e^{−U}.

Two potentials of the distance r = d(x, μ) to a centre μ, on any isotropic manifold (S^d, SO(3);
:mod:`pipeline.geometry.radial`):

* :class:`RiemannianNormal`: :math:`U = r^2/(2\gamma^2)`, :math:`\nabla U = -\log_x(\mu)/\gamma^2`;
  the invariant law is the Riemannian normal :math:`e^{-r^2/(2\gamma^2)}/Z`.
* :class:`WrappedNormal`: :math:`U = r^2/(2\gamma^2) + \log J(r)`, J the Jacobian determinant
  of :math:`\exp_\mu` at :math:`\log_\mu x` (on S^d, :math:`(\sin r/r)^{d-1}`). The invariant law
  :math:`\propto e^{-r^2/(2\gamma^2)}/J(r)` is the wrapped normal (the push-forward of
  :math:`N(0, \gamma^2 I)` on :math:`T_\mu M` by :math:`\exp_\mu`, restricted to one sheet:
  exact when the Gaussian's mass beyond the cut radius is negligible). The seed writes the term
  as :math:`\log|D\exp_x^{-1}(\mu)|`; with the inverse's determinant the invariant law would be
  :math:`e^{-r^2/2\gamma^2} J(r)`, not the wrapped normal it names, so we take the sign that gives
  the wrapped normal. Its gradient diverges at the cut locus (J → 0 there on S^d, d ≥ 2).

The normaliser Z is a 1-D integral (:class:`~pipeline.geometry.radial.RadialLaw`), and the
transition density has no closed form: the engine trains on these processes with implicit
score matching on forward draws of a drifted geodesic random walk (:mod:`pipeline.losses`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor

from pipeline.geometry.manifold import Manifold
from pipeline.geometry.radial import (
    RadialLaw,
    dlog_exp_jacobian_over_r,
    log_exp_jacobian,
)
from pipeline.sde.process import ForwardProcess
from pipeline.sde.schedules import BetaSchedule

__all__ = [
    "POTENTIALS",
    "LangevinProcess",
    "Potential",
    "RiemannianNormal",
    "WrappedNormal",
    "fit_gamma",
    "make_potential",
]


class Potential(ABC):
    """A potential U(x) = u(d(x, μ)) on an isotropic manifold, with its invariant law e^{−U}/Z.

    Args:
        manifold: The manifold (S^d or SO(3)).
        mu: Tensor, shape (D,), the centre μ (projected onto M).
        gamma: Scale γ > 0.

    Raises:
        ValueError: If γ is not positive and finite.
    """

    name: str

    def __init__(self, manifold: Manifold, mu: Tensor, gamma: float) -> None:
        if not math.isfinite(gamma) or gamma <= 0.0:
            raise ValueError(f"potential scale gamma must be a positive number, got {gamma!r}")
        self.manifold = manifold
        self.gamma = float(gamma)
        self.invariant = RadialLaw(manifold, torch.as_tensor(mu), lambda r: -self.radial(r))
        self.mu = self.invariant.centre

    def __repr__(self) -> str:
        mu = ", ".join(f"{v:.4g}" for v in self.mu.tolist())
        return f"{type(self).__name__}({self.manifold!r}, mu=[{mu}], gamma={self.gamma:.4g})"

    @abstractmethod
    def radial(self, r: Tensor) -> Tensor:
        """u(r): the potential as a function of the distance to μ."""

    @abstractmethod
    def radial_slope(self, r: Tensor) -> Tensor:
        """u'(r)/r, finite at r = 0 (so that ∇U = −(u'(r)/r) log_x μ)."""

    def value(self, x: Tensor) -> Tensor:
        """U(x), shape (...)."""
        return self.radial(self.manifold.dist(x, self.mu.to(x)))

    def grad(self, x: Tensor) -> Tensor:
        """Riemannian gradient ∇U(x) = −(u'(r)/r) log_x(μ), shape (..., D)."""
        mu = self.mu.to(x).expand_as(x)
        log_mu = self.manifold.logmap(x, mu)
        r = log_mu.pow(2).sum(-1).sqrt()
        return -self.radial_slope(r)[..., None] * log_mu

    def log_invariant(self, x: Tensor) -> Tensor:
        """log of the invariant density e^{−U}/Z w.r.t. the Riemannian volume, shape (...)."""
        return self.invariant.log_prob(x)


class RiemannianNormal(Potential):
    """U = r²/(2γ²): the Riemannian normal law."""

    name = "riemannian_normal"

    def radial(self, r: Tensor) -> Tensor:
        return r * r / (2.0 * self.gamma**2)

    def radial_slope(self, r: Tensor) -> Tensor:
        return torch.full_like(r, 1.0 / self.gamma**2)


class WrappedNormal(Potential):
    """U = r²/(2γ²) + log J(r): the wrapped normal law (see the module docstring)."""

    name = "wrapped_normal"

    def radial(self, r: Tensor) -> Tensor:
        return r * r / (2.0 * self.gamma**2) + log_exp_jacobian(self.manifold, r)

    def radial_slope(self, r: Tensor) -> Tensor:
        return 1.0 / self.gamma**2 + dlog_exp_jacobian_over_r(self.manifold, r)


POTENTIALS: dict[str, type[Potential]] = {
    RiemannianNormal.name: RiemannianNormal,
    WrappedNormal.name: WrappedNormal,
}
"""Potential classes by their params name."""


def make_potential(name: str, manifold: Manifold, mu: Tensor, gamma: float) -> Potential:
    """The potential called ``name`` (a key of :data:`POTENTIALS`).

    Raises:
        ValueError: On an unknown name.
    """
    if name not in POTENTIALS:
        raise ValueError(f"unknown potential {name!r}; known: {', '.join(POTENTIALS)}")
    return POTENTIALS[name](manifold, mu, gamma)


def fit_gamma(
    name: str,
    manifold: Manifold,
    x: Tensor,
    mu: Tensor,
    *,
    bounds: tuple[float, float] = (1e-2, 10.0),
    iters: int = 60,
) -> float:
    """Maximum-likelihood γ of the invariant law of potential ``name`` for data x (golden section).

    The mean log-likelihood is unimodal in log γ for these laws in practice; the search is on
    log γ within ``bounds``.

    Args:
        name: Potential name.
        manifold: The manifold.
        x: Tensor, shape (N, D), the data.
        mu: Tensor, shape (D,), the centre.
        bounds: Search interval for γ.
        iters: Golden-section iterations (60: relative precision ~1e-12 on log γ).

    Returns:
        The fitted γ.
    """
    x64 = x.detach().to(torch.float64)

    def mean_logp(log_gamma: float) -> float:
        pot = make_potential(name, manifold, mu, math.exp(log_gamma))
        return float(pot.log_invariant(x64).mean())

    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = mean_logp(a), mean_logp(b)
    for _ in range(iters):
        if fa > fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = mean_logp(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = mean_logp(b)
    return math.exp(0.5 * (lo + hi))


class LangevinProcess(ForwardProcess):
    """Langevin noising dX = −½β(t)∇U(X) dt + √β(t) dB^M, reference law e^{−U}/Z.

    Args:
        manifold: The manifold (isotropic: S^d or SO(3)).
        schedule: β schedule.
        potential: The potential U (its manifold must be ``manifold``).
    """

    def __init__(self, manifold: Manifold, schedule: BetaSchedule, potential: Potential) -> None:
        super().__init__(manifold, schedule)
        self.potential = potential

    def __repr__(self) -> str:
        return f"LangevinProcess({self.potential!r}, {self.schedule!r})"

    def heat_drift(self, x: Tensor) -> Tensor:
        """b(x) = −½∇U(x)."""
        return -0.5 * self.potential.grad(x)

    def reference_logp(self, x: Tensor) -> Tensor:
        """log e^{−U(x)}/Z, shape (...)."""
        return self.potential.log_invariant(x)

    def reference_score(self, x: Tensor) -> Tensor:
        """−∇U(x): the invariant law's score."""
        return -self.potential.grad(x)

    def sample_reference(
        self,
        n: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """n exact draws of the invariant law (radial inverse CDF), shape (n, D)."""
        return self.potential.invariant.sample(n, dtype=dtype, device=device, generator=generator)
