"""The manifold contract shared by every manifold of the RSGM engine (geoopt style).

Points and tangent vectors are stored in embedded (ambient) coordinates, shape ``(..., D)``
with ``D = ambient_dim``; every method broadcasts over the leading dimensions
``x.shape[:-1]``. The metric is the one induced by the Euclidean ambient space, so
``inner`` is the ambient dot product of tangent vectors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor


def safe_norm(u: Tensor, keepdim: bool = False) -> Tensor:
    """Euclidean norm over the last axis with a finite gradient at ``u = 0``.

    Args:
        u: Tensor, shape (..., D).
        keepdim: keep the reduced axis.

    Returns:
        Tensor, shape (...) or (..., 1): ``|u|``, exact above sqrt(finfo.tiny); the clamped
        branch has zero derivative, so gradients stay finite at zero.
    """
    sq = (u * u).sum(dim=-1, keepdim=keepdim)
    return torch.sqrt(sq.clamp_min(torch.finfo(u.dtype).tiny))


class Manifold(ABC):
    """Abstract embedded Riemannian manifold M ⊂ R^D.

    Attributes:
        dim: intrinsic dimension d.
        ambient_dim: dimension D of the embedding space.
        curvature_operator_coeff: the constant c with ½W_H − Ric♯ = c·Id for this embedding
            (the geometric operator of the ambient Rao-Blackwellized DSM expansion).
        log_volume: log vol(M) of a compact manifold; ``None`` where the volume is infinite.
        radial_jacobian: ``(m, a)`` on an isotropic manifold whose exponential map has
            Jacobian determinant J(r) = (sin(a r)/(a r))^m at a tangent vector of length
            r (S^d: (d − 1, 1)); ``None`` elsewhere. See :mod:`pipeline.geometry.radial`.
        diameter: the largest geodesic distance (the cut radius π/a) where ``radial_jacobian``
            is set; ``None`` elsewhere.
    """

    dim: int
    ambient_dim: int
    curvature_operator_coeff: float
    log_volume: float | None = None
    radial_jacobian: tuple[int, float] | None = None
    diameter: float | None = None

    # ------------------------------------------------------------------ projections
    @abstractmethod
    def projx(self, x: Tensor) -> Tensor:
        """Project ambient points onto the manifold.

        Args:
            x: Tensor, shape (..., D), ambient points.

        Returns:
            Tensor, shape (..., D), points on M.
        """

    @abstractmethod
    def proju(self, x: Tensor, u: Tensor) -> Tensor:
        """Orthogonally project ambient vectors onto the tangent space T_x M.

        Args:
            x: Tensor, shape (..., D), points on M.
            u: Tensor, shape (..., D), ambient vectors.

        Returns:
            Tensor, shape (..., D), tangent vectors at x.
        """

    # ------------------------------------------------------------------ exp / log
    @abstractmethod
    def expmap(self, x: Tensor, u: Tensor) -> Tensor:
        """Riemannian exponential map.

        Args:
            x: Tensor, shape (..., D), points on M.
            u: Tensor, shape (..., D), tangent vectors at x.

        Returns:
            Tensor, shape (..., D), the points exp_x(u) on M.
        """

    @abstractmethod
    def logmap(self, x: Tensor, y: Tensor) -> Tensor:
        """Riemannian logarithm (inverse of ``expmap`` inside the injectivity radius).

        Args:
            x: Tensor, shape (..., D), base points on M.
            y: Tensor, shape (..., D), target points on M.

        Returns:
            Tensor, shape (..., D), tangent vectors at x with exp_x(log_x y) = y.
        """

    @abstractmethod
    def dist(self, x: Tensor, y: Tensor) -> Tensor:
        """Geodesic distance (finite gradient at x = y).

        Args:
            x: Tensor, shape (..., D), points on M.
            y: Tensor, shape (..., D), points on M.

        Returns:
            Tensor, shape (...), the distances d(x, y).
        """

    # ------------------------------------------------------------------ metric
    def inner(self, x: Tensor, u: Tensor, v: Tensor) -> Tensor:
        """Riemannian inner product of tangent vectors (induced metric).

        Args:
            x: Tensor, shape (..., D), points on M (unused for induced metrics).
            u: Tensor, shape (..., D), tangent vectors at x.
            v: Tensor, shape (..., D), tangent vectors at x.

        Returns:
            Tensor, shape (...), ⟨u, v⟩_x.
        """
        del x
        return (u * v).sum(dim=-1)

    def norm(self, x: Tensor, u: Tensor) -> Tensor:
        """Riemannian norm of tangent vectors (finite gradient at u = 0).

        Args:
            x: Tensor, shape (..., D), points on M.
            u: Tensor, shape (..., D), tangent vectors at x.

        Returns:
            Tensor, shape (...), |u|_x.
        """
        del x
        return safe_norm(u)

    # ------------------------------------------------------------------ distributions
    @abstractmethod
    def random_uniform(
        self,
        n: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample from the uniform distribution (normalised Riemannian volume).

        Args:
            n: number of points.
            dtype: floating dtype of the result.
            device: device of the result (the generator must live on it).
            generator: random generator.

        Returns:
            Tensor, shape (n, D), points on M.

        Raises:
            ValueError: if M has infinite volume.
        """

    def uniform_logprob(self, x: Tensor) -> Tensor:
        """Log-density of the uniform distribution w.r.t. the Riemannian volume.

        Built on :attr:`log_volume`, which a compact manifold sets in its constructor.

        Args:
            x: Tensor, shape (..., D), points on M.

        Returns:
            Tensor, shape (...), equal to −log vol(M).

        Raises:
            ValueError: if M has infinite volume (no ``log_volume``) or x has the wrong last axis.
        """
        self._check_last_axis(x)
        if self.log_volume is None:
            raise ValueError(f"{self!r} has infinite volume: no uniform distribution")
        return torch.full(x.shape[:-1], -self.log_volume, dtype=x.dtype, device=x.device)

    def random_normal_tangent(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Standard Gaussian in the tangent space T_x M (covariance = the metric's identity).

        Args:
            x: Tensor, shape (..., D), points on M.
            generator: random generator on x's device.

        Returns:
            Tensor, shape (..., D), tangent vectors Z at x with E[Z Zᵀ] = P_x.
        """
        z = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
        return self.proju(x, z)

    # ------------------------------------------------------------------ checks
    @abstractmethod
    def check_point(self, x: Tensor, atol: float = 1e-5) -> bool:
        """Whether every row of ``x`` lies on M within ``atol``.

        Args:
            x: Tensor, shape (..., D).
            atol: absolute tolerance.

        Returns:
            True if all points are on M (and the last axis has size D).
        """

    @abstractmethod
    def check_vector(self, x: Tensor, u: Tensor, atol: float = 1e-5) -> bool:
        """Whether every ``u`` lies in T_x M within ``atol``.

        Args:
            x: Tensor, shape (..., D), points on M.
            u: Tensor, shape (..., D), vectors.
            atol: absolute tolerance.

        Returns:
            True if all vectors are tangent (and the last axis has size D).
        """

    def assert_point(self, x: Tensor, atol: float = 1e-5) -> None:
        """Raise a readable error if ``x`` is not on M.

        Args:
            x: Tensor, shape (..., D).
            atol: absolute tolerance.

        Raises:
            ValueError: with the manifold and the worst offending row.
        """
        if not self.check_point(x, atol):
            raise ValueError(
                f"points are not on {self!r} within atol={atol}: shape {tuple(x.shape)} "
                f"(expected last axis {self.ambient_dim}), worst deviation "
                f"{self._point_deviation(x):.3g}"
            )

    def _point_deviation(self, x: Tensor) -> float:
        """Largest distance of a row of ``x`` to its projection (for error messages)."""
        if x.shape[-1] != self.ambient_dim or x.numel() == 0:
            return float("nan")
        return float((x - self.projx(x)).abs().max())

    def _check_last_axis(self, x: Tensor, name: str = "x") -> None:
        if x.shape[-1] != self.ambient_dim:
            raise ValueError(
                f"{self!r} expects {name} with last axis {self.ambient_dim}, "
                f"got shape {tuple(x.shape)}"
            )
