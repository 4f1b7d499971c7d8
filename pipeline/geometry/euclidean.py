"""Flat Euclidean space R^d (no uniform distribution)."""

from __future__ import annotations

import torch
from torch import Tensor

from pipeline.geometry.manifold import Manifold, safe_norm


class Euclidean(Manifold):
    """Euclidean space R^d with the standard metric.

    Args:
        d: dimension (≥ 1).

    Attributes:
        curvature_operator_coeff: 0 (flat, no extrinsic curvature).
    """

    def __init__(self, d: int) -> None:
        if int(d) != d or d < 1:
            raise ValueError(f"Euclidean dimension must be an integer >= 1, got {d!r}")
        self.dim = int(d)
        self.ambient_dim = self.dim
        self.curvature_operator_coeff = 0.0

    def __repr__(self) -> str:
        return f"Euclidean({self.dim})"

    def projx(self, x: Tensor) -> Tensor:
        """Identity."""
        self._check_last_axis(x)
        return x

    def proju(self, x: Tensor, u: Tensor) -> Tensor:
        """Identity (every vector is tangent)."""
        return u

    def expmap(self, x: Tensor, u: Tensor) -> Tensor:
        """x + u."""
        return x + u

    def logmap(self, x: Tensor, y: Tensor) -> Tensor:
        """y − x."""
        return y - x

    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        """|x − y| with a finite gradient at x = y."""
        return safe_norm(x - y)

    def _no_uniform(self) -> ValueError:
        return ValueError(
            f"{self!r} has infinite volume: the uniform distribution is undefined "
            "(use a compact manifold such as Sphere or FlatTorus, or a Gaussian prior)"
        )

    def random_uniform(
        self,
        n: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Always raises: R^d has no uniform distribution."""
        raise self._no_uniform()

    def uniform_logprob(self, x: Tensor) -> Tensor:
        """Always raises: R^d has no uniform distribution."""
        raise self._no_uniform()

    def random_normal_tangent(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Standard Gaussian of shape x.shape."""
        return torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)

    def check_point(self, x: Tensor, atol: float = 1e-5) -> bool:
        """Right last axis and finite entries."""
        return x.shape[-1] == self.ambient_dim and bool(torch.isfinite(x).all())

    def check_vector(self, x: Tensor, u: Tensor, atol: float = 1e-5) -> bool:
        """Right last axis and finite entries."""
        return u.shape[-1] == self.ambient_dim and bool(torch.isfinite(u).all())
