r"""Radial laws on isotropic manifolds: densities that depend only on the distance to a centre.

On S^d and SO(3) (a manifold with :attr:`~pipeline.geometry.manifold.Manifold.radial_jacobian`
``(m, a)``) the exponential map at any point has Jacobian determinant
:math:`J(r) = (\sin(ar)/(ar))^m` at a tangent vector of length r, so the geodesic sphere of
radius r has volume :math:`\omega_{n-1} r^{n-1} J(r)` (n the dimension,
:math:`\omega_{n-1} = 2\pi^{n/2}/\Gamma(n/2)` the area of the unit sphere of T_μM). A density
:math:`p(x) \propto e^{w(d(x, \mu))}` w.r.t. the Riemannian volume therefore has the 1-D
normaliser :math:`Z = \omega_{n-1}\int_0^{D} e^{w(r)} r^{n-1} J(r)\,dr` (D the diameter),
computed here by the midpoint rule in float64, and is sampled exactly by drawing r from its
1-D law (inverse CDF) and a uniform direction in T_μM.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from pipeline.geometry.manifold import Manifold

__all__ = [
    "RadialLaw",
    "frechet_mean",
    "log_exp_jacobian",
    "log_unit_sphere_area",
    "radial_log_volume",
]

LogWeight = Callable[[Tensor], Tensor]
"""``w(r)``: unnormalised log-density as a function of the distance r (any shape)."""

_GRID_CELLS = 1 << 15
"""Midpoint-rule cells on [0, diameter]: relative error of Z ≈ (D/cells)² ≈ 1e-8."""


def log_unit_sphere_area(n: int) -> float:
    """log ω_{n−1} = log(2 π^{n/2} / Γ(n/2)), the area of the unit sphere of R^n."""
    return math.log(2.0) + 0.5 * n * math.log(math.pi) - math.lgamma(0.5 * n)


def _radial(manifold: Manifold) -> tuple[int, float, float]:
    if manifold.radial_jacobian is None or manifold.diameter is None:
        raise NotImplementedError(f"{manifold!r} has no isotropic radial law (radial_jacobian)")
    m, a = manifold.radial_jacobian
    return int(m), float(a), float(manifold.diameter)


def log_exp_jacobian(manifold: Manifold, r: Tensor) -> Tensor:
    """log J(r) = m log(sin(ar)/(ar)) (Taylor series below ar = 0.05: no 0/0).

    Args:
        manifold: An isotropic manifold.
        r: Tensor of radii in [0, diameter], any shape.

    Returns:
        Tensor, same shape (0 at r = 0; −∞ at the cut locus when sin vanishes there).

    Raises:
        NotImplementedError: If the manifold has no radial law.
    """
    m, a, _ = _radial(manifold)
    h = a * r
    h2 = h * h
    small = h < 5e-2
    safe = torch.where(small, torch.ones_like(h), h)
    log_sinc = torch.where(small, -h2 / 6 - h2 * h2 / 180, torch.log(torch.sin(safe) / safe))
    return m * log_sinc


def dlog_exp_jacobian_over_r(manifold: Manifold, r: Tensor) -> Tensor:
    """(d/dr log J)(r) / r = m a² (cot h − 1/h)/h with h = ar (series below h = 0.05)."""
    m, a, _ = _radial(manifold)
    h = a * r
    h2 = h * h
    small = h < 5e-2
    safe = torch.where(small, torch.ones_like(h), h)
    ratio = torch.where(
        small,
        -1.0 / 3.0 - h2 / 45.0 - 2.0 * h2 * h2 / 945.0,
        (torch.cos(safe) / torch.sin(safe) - 1.0 / safe) / safe,
    )
    return m * a * a * ratio


def radial_log_volume(manifold: Manifold, r: Tensor) -> Tensor:
    """log of the volume density of the geodesic sphere of radius r: log(ω r^{n−1} J(r))."""
    n = int(manifold.dim)
    return log_unit_sphere_area(n) + (n - 1) * torch.log(r) + log_exp_jacobian(manifold, r)


class RadialLaw:
    r"""The law with density :math:`e^{w(d(x,\mu))}/Z` w.r.t. the Riemannian volume.

    Args:
        manifold: An isotropic manifold (S^d, SO(3)).
        centre: Tensor, shape (D,), the point μ.
        log_weight: ``w(r)``, the unnormalised log-density, finite on (0, diameter).

    Attributes:
        log_normalizer: log Z (float).
    """

    def __init__(self, manifold: Manifold, centre: Tensor, log_weight: LogWeight) -> None:
        _, _, diameter = _radial(manifold)
        self.manifold = manifold
        self.centre = manifold.projx(centre.detach().to(torch.float64).reshape(-1))
        self.log_weight = log_weight
        width = diameter / _GRID_CELLS
        mids = (torch.arange(_GRID_CELLS, dtype=torch.float64) + 0.5) * width
        log_q = log_weight(mids) + radial_log_volume(manifold, mids)
        if not bool(torch.isfinite(log_q).all()):
            raise ValueError("radial log-weight is not finite on (0, diameter)")
        peak = float(log_q.max())
        mass = torch.exp(log_q - peak) * width
        self.log_normalizer = peak + math.log(float(mass.sum()))
        cdf = torch.cat((torch.zeros(1, dtype=torch.float64), torch.cumsum(mass, 0)))
        self._edges = torch.arange(_GRID_CELLS + 1, dtype=torch.float64) * width
        self._cdf = cdf / cdf[-1]

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density at x w.r.t. the Riemannian volume.

        Args:
            x: Tensor, shape (..., D), points on M.

        Returns:
            Tensor, shape (...).
        """
        r = self.manifold.dist(x, self.centre.to(x))
        return self.log_weight(r) - self.log_normalizer

    def distance_cdf(self, r: Tensor) -> Tensor:
        """P(d(X, μ) ≤ r) by linear interpolation of the tabulated CDF (float64)."""
        r64 = r.detach().to(torch.float64).clamp(0.0, float(self._edges[-1]))
        idx = torch.searchsorted(self._edges, r64).clamp(1, _GRID_CELLS)
        lo, hi = self._edges[idx - 1], self._edges[idx]
        c_lo, c_hi = self._cdf[idx - 1], self._cdf[idx]
        return c_lo + (c_hi - c_lo) * (r64 - lo) / (hi - lo)

    def sample(
        self,
        n: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Exact draws: r by inverse CDF, then exp_μ(r u) with u uniform on the unit sphere.

        Args:
            n: Number of points.
            dtype: Dtype of the result.
            device: Device of the result (the generator must live on it).
            generator: Random generator.

        Returns:
            Tensor, shape (n, D), points on M.
        """
        u = torch.rand(n, dtype=torch.float64, device=device, generator=generator).cpu()
        idx = torch.searchsorted(self._cdf, u).clamp(1, _GRID_CELLS)
        c_lo, c_hi = self._cdf[idx - 1], self._cdf[idx]
        frac = ((u - c_lo) / (c_hi - c_lo).clamp_min(1e-300)).clamp(0.0, 1.0)
        r = self._edges[idx - 1] + frac * (self._edges[idx] - self._edges[idx - 1])
        centre = self.centre.to(device=device).expand(n, -1)
        direction = self.manifold.random_normal_tangent(centre, generator)
        direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        x = self.manifold.expmap(centre, r.to(device=device)[:, None] * direction)
        return self.manifold.projx(x).to(dtype)


def frechet_mean(
    manifold: Manifold, x: Tensor, *, max_steps: int = 200, tol: float = 1e-10
) -> Tensor:
    r"""Fréchet (Karcher) mean :math:`\arg\min_m \sum_i d(m, x_i)^2` by Riemannian gradient steps.

    Starts at the projected Euclidean mean (or the first point when that is degenerate) and
    iterates :math:`m \leftarrow \exp_m(\mathrm{mean}_i \log_m x_i)`, which converges to a local
    minimiser; for data spread over the whole manifold the minimiser need not be unique.

    Args:
        manifold: The manifold.
        x: Tensor, shape (N, D), points on M (N ≥ 1).
        max_steps: Iteration cap.
        tol: Stop when the step's norm falls below this.

    Returns:
        Tensor, shape (D,), float64, a point of M.

    Raises:
        ValueError: If x is empty.
    """
    if x.dim() != 2 or x.shape[0] < 1:
        raise ValueError(f"frechet_mean needs points of shape (N, D), N >= 1, got {tuple(x.shape)}")
    x64 = x.detach().to(torch.float64)
    centre = x64.mean(0)
    m = manifold.projx(centre) if float(centre.norm()) > 1e-6 else x64[0]
    for _ in range(max_steps):
        step = manifold.logmap(m.expand_as(x64), x64).mean(0)
        m = manifold.projx(manifold.expmap(m, step))
        if float(step.norm()) < tol:
            break
    return m
