"""The unit sphere S^d ⊂ R^{d+1} with the induced metric."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pipeline.geometry.manifold import Manifold, safe_norm

#: Below this tangent norm the exp/log factors use their Taylor series (even functions of
#: the norm, so no square root and no 0/0, and exact gradients at 0).
_TAYLOR_EXP = 5e-2
_TAYLOR_LOG = 1e-2


class Sphere(Manifold):
    """Unit sphere S^d = {x ∈ R^{d+1} : |x| = 1}.

    Args:
        d: intrinsic dimension (≥ 1); points have d + 1 coordinates.

    Attributes:
        curvature_operator_coeff: 1 − d/2 (½W_H − Ric♯ = (1 − d/2)·Id; zero on S²).
    """

    def __init__(self, d: int = 2) -> None:
        if int(d) != d or d < 1:
            raise ValueError(f"Sphere dimension must be an integer >= 1, got {d!r}")
        self.dim = int(d)
        self.ambient_dim = self.dim + 1
        self.curvature_operator_coeff = 1.0 - self.dim / 2.0
        half = (self.dim + 1) / 2.0
        #: log of the volume 2π^{(d+1)/2} / Γ((d+1)/2) (4π on S²).
        self.log_volume = math.log(2.0) + half * math.log(math.pi) - math.lgamma(half)
        #: J(r) = (sin r / r)^{d−1}; the cut locus is the antipode, at distance π.
        self.radial_jacobian = (self.dim - 1, 1.0)
        self.diameter = math.pi

    def __repr__(self) -> str:
        return f"Sphere({self.dim})"

    def projx(self, x: Tensor) -> Tensor:
        """Radial projection x/|x| (see :meth:`Manifold.projx`)."""
        self._check_last_axis(x)
        return x / safe_norm(x, keepdim=True)

    def proju(self, x: Tensor, u: Tensor) -> Tensor:
        """Tangent projection (I − x xᵀ)u (see :meth:`Manifold.proju`)."""
        return u - (x * u).sum(dim=-1, keepdim=True) * x

    def expmap(self, x: Tensor, u: Tensor) -> Tensor:
        """exp_x(u) = cos|u| x + sin|u| u/|u|, Taylor-safe at u = 0, re-projected.

        Args:
            x: Tensor, shape (..., d+1), points on S^d.
            u: Tensor, shape (..., d+1), tangent vectors at x.

        Returns:
            Tensor, shape (..., d+1), points on S^d.
        """
        n2 = (u * u).sum(dim=-1, keepdim=True)
        n = safe_norm(u, keepdim=True)
        small = n < _TAYLOR_EXP
        cos_n = torch.where(small, 1 - n2 / 2 * (1 - n2 / 12 * (1 - n2 / 30)), torch.cos(n))
        sinc_n = torch.where(small, 1 - n2 / 6 * (1 - n2 / 20 * (1 - n2 / 42)), torch.sin(n) / n)
        return self.projx(cos_n * x + sinc_n * u)

    def logmap(self, x: Tensor, y: Tensor) -> Tensor:
        """log_x(y) = θ/sin θ · P_x y with θ = atan2(|P_x y|, ⟨x, y⟩).

        P_x y is computed as P_x(y − x) (no cancellation for y near x); the factor θ/sin θ
        uses its Taylor series for small |P_x y| on the near side. At the exact antipode
        y = −x the logarithm is not unique and the zero vector is returned (no NaN).

        Args:
            x: Tensor, shape (..., d+1), points on S^d.
            y: Tensor, shape (..., d+1), points on S^d.

        Returns:
            Tensor, shape (..., d+1), tangent vectors at x.
        """
        v = self.proju(x, y - x)
        n2 = (v * v).sum(dim=-1, keepdim=True)
        n = safe_norm(v, keepdim=True)
        c = (x * y).sum(dim=-1, keepdim=True)
        small = (n < _TAYLOR_LOG) & (c > 0)
        taylor = 1 + n2 / 6 + 3 * n2 * n2 / 40 + 5 * n2 * n2 * n2 / 112
        factor = torch.where(small, taylor, torch.atan2(n, c) / n)
        return factor * v

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        """Great-circle distance 2·atan2(|x − y|, |x + y|), accurate for every angle.

        Args:
            x: Tensor, shape (..., d+1), points on S^d.
            y: Tensor, shape (..., d+1), points on S^d.

        Returns:
            Tensor, shape (...), angles in [0, π].
        """
        return 2 * torch.atan2(safe_norm(x - y), safe_norm(x + y))

    def random_uniform(
        self,
        n: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Uniform points on S^d (normalised Gaussians); shape (n, d+1)."""
        z = torch.randn((n, self.ambient_dim), dtype=dtype, device=device, generator=generator)
        return self.projx(z)

    def check_point(self, x: Tensor, atol: float = 1e-5) -> bool:
        """|x| = 1 within atol for every row (see :meth:`Manifold.check_point`)."""
        if x.shape[-1] != self.ambient_dim:
            return False
        return bool(((x * x).sum(dim=-1).sqrt() - 1).abs().le(atol).all())

    def check_vector(self, x: Tensor, u: Tensor, atol: float = 1e-5) -> bool:
        """|⟨x, u⟩| ≤ atol for every row (see :meth:`Manifold.check_vector`)."""
        if u.shape[-1] != self.ambient_dim or x.shape[-1] != self.ambient_dim:
            return False
        return bool((x * u).sum(dim=-1).abs().le(atol).all())
