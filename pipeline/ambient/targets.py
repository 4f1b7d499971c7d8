"""Ambient corruption and the two denoising targets of seed 002 (raw and Rao-Blackwellized).

For clean points :math:`Z \\in M \\subset \\mathbb{R}^D` and :math:`X = Z + \\sigma\\xi`:

* raw target :math:`(Z - X)/\\sigma^2 = -\\xi/\\sigma` at the ambient input X (its conditional mean
  is the ambient score of :math:`q * \\phi_\\sigma`);
* Rao-Blackwellized (RB) tangent target :math:`T_\\sigma = P_{\\pi(X)}(Z - X)/\\sigma^2` at the
  projected input :math:`\\pi(X)`; its conditional mean is :math:`r_\\sigma(\\pi(X))`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pipeline.devices import require_positive
from pipeline.geometry.manifold import Manifold


def _check_sigma(z: Tensor, sigma: Tensor) -> Tensor:
    if sigma.dim() == 0:
        sigma = sigma.expand(z.shape[0])
    if sigma.shape != z.shape[:1]:
        raise ValueError(
            f"sigma must have shape ({z.shape[0]},) or be a scalar, got {tuple(sigma.shape)}"
        )
    require_positive(sigma, "noise levels sigma must be > 0")
    return sigma


def add_ambient_noise(z: Tensor, sigma: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Corrupt points with isotropic ambient Gaussian noise, :math:`X = Z + \\sigma\\xi`.

    Args:
        z: Tensor, shape (B, D), clean points.
        sigma: Tensor, shape (B,) or scalar, noise levels > 0.
        generator: Random generator on z's device.

    Returns:
        Tensor, shape (B, D), noisy ambient points.
    """
    sigma = _check_sigma(z, sigma)
    xi = torch.randn(z.shape, dtype=z.dtype, device=z.device, generator=generator)
    return z + sigma[:, None] * xi


def raw_target(z: Tensor, x: Tensor, sigma: Tensor) -> Tensor:
    """Raw ambient DSM target :math:`(Z - X)/\\sigma^2`.

    Args:
        z: Tensor, shape (B, D), clean points.
        x: Tensor, shape (B, D), noisy points.
        sigma: Tensor, shape (B,) or scalar.

    Returns:
        Tensor, shape (B, D).
    """
    sigma = _check_sigma(z, sigma)
    return (z - x) / (sigma * sigma)[:, None]


def rb_target(manifold: Manifold, z: Tensor, x: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
    """Rao-Blackwellized tangent target :math:`T_\\sigma = P_{\\pi(X)}(Z - X)/\\sigma^2` and its
    input.

    Args:
        manifold: The embedded manifold (its ``projx`` is the nearest-point projection π and
            ``proju`` the tangent projector).
        z: Tensor, shape (B, D), clean points on M.
        x: Tensor, shape (B, D), noisy ambient points.
        sigma: Tensor, shape (B,) or scalar.

    Returns:
        ``(y, target)``: y = π(X), shape (B, D), and the tangent target at y, shape (B, D).
    """
    sigma = _check_sigma(z, sigma)
    y = manifold.projx(x)
    return y, manifold.proju(y, z - x) / (sigma * sigma)[:, None]
