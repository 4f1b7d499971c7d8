"""The flat torus (S¹)^n ⊂ R^{2n}: a product of n unit circles."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pipeline.geometry.manifold import Manifold


class FlatTorus(Manifold):
    """Flat torus T^n = (S¹)^n embedded in R^{2n} as a product of unit circles.

    Coordinates are interleaved pairs: a point with angles θ_1..θ_n is
    ``(cos θ_1, sin θ_1, cos θ_2, sin θ_2, ...)``. The induced metric is flat and the
    volume is (2π)^n.

    Args:
        n: number of circle factors (≥ 1).

    Attributes:
        curvature_operator_coeff: +½ (Ricci is zero and ½W_H = ½·Id for unit circles in R²).
    """

    def __init__(self, n: int = 2) -> None:
        if int(n) != n or n < 1:
            raise ValueError(f"FlatTorus needs an integer number of circles >= 1, got {n!r}")
        self.dim = int(n)
        self.ambient_dim = 2 * self.dim
        self.curvature_operator_coeff = 0.5
        self.log_volume = self.dim * math.log(2 * math.pi)

    def __repr__(self) -> str:
        return f"FlatTorus({self.dim})"

    # ------------------------------------------------------------------ helpers
    def _pairs(self, x: Tensor) -> Tensor:
        self._check_last_axis(x)
        return x.reshape(*x.shape[:-1], self.dim, 2)

    @staticmethod
    def _rot(p: Tensor) -> Tensor:
        """Quarter turn J(a, b) = (−b, a) of pairs, shape (..., n, 2)."""
        return torch.stack((-p[..., 1], p[..., 0]), dim=-1)

    def angles_to_points(self, theta: Tensor) -> Tensor:
        """Embed angles.

        Args:
            theta: Tensor, shape (..., n), angles in radians.

        Returns:
            Tensor, shape (..., 2n), interleaved (cos θ_i, sin θ_i).
        """
        return torch.stack((torch.cos(theta), torch.sin(theta)), dim=-1).flatten(-2)

    def points_to_angles(self, x: Tensor) -> Tensor:
        """Angles of embedded points.

        Args:
            x: Tensor, shape (..., 2n), points on the torus.

        Returns:
            Tensor, shape (..., n), angles in (−π, π].
        """
        p = self._pairs(x)
        return torch.atan2(p[..., 1], p[..., 0])

    # ------------------------------------------------------------------ contract
    def projx(self, x: Tensor) -> Tensor:
        """Normalise every circle factor (see :meth:`Manifold.projx`)."""
        p = self._pairs(x)
        nrm = torch.sqrt((p * p).sum(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny))
        return (p / nrm).flatten(-2)

    def proju(self, x: Tensor, u: Tensor) -> Tensor:
        """Per-circle tangent projection u_i − ⟨x_i, u_i⟩x_i (see :meth:`Manifold.proju`)."""
        p = self._pairs(x)
        q = self._pairs(u)
        return (q - (p * q).sum(dim=-1, keepdim=True) * p).flatten(-2)

    def _tangent_angles(self, x: Tensor, u: Tensor) -> Tensor:
        """Angular components α_i = ⟨u_i, J x_i⟩, shape (..., n)."""
        return (self._pairs(u) * self._rot(self._pairs(x))).sum(dim=-1)

    def expmap(self, x: Tensor, u: Tensor) -> Tensor:
        """Rotate every circle by its angular component (exact; see :meth:`Manifold.expmap`)."""
        p = self._pairs(x)
        alpha = self._tangent_angles(x, u).unsqueeze(-1)
        out = torch.cos(alpha) * p + torch.sin(alpha) * self._rot(p)
        return self.projx(out.flatten(-2))

    def logmap(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-circle angle atan2(⟨y_i, Jx_i⟩, ⟨y_i, x_i⟩) ∈ (−π, π] times J x_i.

        At antipodal factors the angle is ±π (no NaN). See :meth:`Manifold.logmap`.
        """
        p = self._pairs(x)
        q = self._pairs(y)
        jp = self._rot(p)
        alpha = torch.atan2((q * jp).sum(dim=-1), (q * p).sum(dim=-1)).unsqueeze(-1)
        return (alpha * jp).flatten(-2)

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        """Flat distance sqrt(Σ_i α_i²), finite gradient at x = y (see :meth:`Manifold.dist`)."""
        p = self._pairs(x)
        q = self._pairs(y)
        alpha = torch.atan2((q * self._rot(p)).sum(dim=-1), (q * p).sum(dim=-1))
        return torch.sqrt((alpha * alpha).sum(dim=-1).clamp_min(torch.finfo(x.dtype).tiny))

    def random_uniform(
        self,
        n: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Uniform angles in [0, 2π); shape (n, 2·dim)."""
        u = torch.rand((n, self.dim), dtype=dtype, device=device, generator=generator)
        return self.angles_to_points(2 * math.pi * u)

    def check_point(self, x: Tensor, atol: float = 1e-5) -> bool:
        """Every circle factor has unit norm within atol."""
        if x.shape[-1] != self.ambient_dim:
            return False
        p = self._pairs(x)
        return bool(((p * p).sum(dim=-1).sqrt() - 1).abs().le(atol).all())

    def check_vector(self, x: Tensor, u: Tensor, atol: float = 1e-5) -> bool:
        """Every factor u_i is orthogonal to x_i within atol."""
        if u.shape[-1] != self.ambient_dim or x.shape[-1] != self.ambient_dim:
            return False
        return bool((self._pairs(x) * self._pairs(u)).sum(dim=-1).abs().le(atol).all())
