"""The composite Gauss–Legendre rule: one ``order``-point rule on each panel of given edges.

Every one-dimensional integral of geosgm's closed forms (the S² heat kernel's mass and KL in
θ, the exact sampler's angle CDF table, the radius posterior of the ambient model) uses it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["composite_gauss_legendre"]


def composite_gauss_legendre(
    edges: ArrayLike, order: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Nodes and weights of ``order``-point Gauss–Legendre on each panel [e_j, e_{j+1}].

    ``(weights * f(nodes)).sum()`` integrates f over [e_0, e_P], exactly for polynomials of
    degree < 2·order on each panel. Batched: each leading index is its own set of panels.

    Args:
        edges: Array, shape (..., P + 1), ascending panel edges (P >= 1).
        order: Nodes per panel (>= 1).

    Returns:
        Tuple ``(nodes, weights)``, each float64 of shape (..., P, order).

    Raises:
        ValueError: If ``order`` < 1 or there are fewer than 2 edges.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim < 1 or e.shape[-1] < 2:
        raise ValueError(f"edges need shape (..., P + 1) with P >= 1, got {e.shape}")
    t, w = np.polynomial.legendre.leggauss(order)
    lo = e[..., :-1, None]
    h = e[..., 1:, None] - lo
    return lo + h * (0.5 * (t + 1)), h * (0.5 * w)
