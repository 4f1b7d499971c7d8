r"""Mixtures of wrapped normal laws on SO(3), with their exact density (the SO(3) benchmark data).

A wrapped normal with mean μ and scale σ is X = μ exp(hat(ω)), ω ~ N(0, σ² I₃): the rotation
vector ω (|ω| = the rotation angle) is Gaussian. Its density w.r.t. the Riemannian volume of
:class:`pipeline.so3.manifold.SO3` (Frobenius metric) sums over the preimages
ω_m = (θ + 2πm) n (m ∈ Z) of X under exp, with the exp map's volume element
2√2 · 2(1 − cos|ω|)/|ω|² (checked against the embedding's Jacobian in the tests):

    p(X) = Σ_m (2πσ²)^{−3/2} e^{−(θ+2πm)²/(2σ²)} (θ + 2πm)² / (4√2 (1 − cos θ)),

θ ∈ [0, π] the angle of μᵀX and n its axis. The m ≠ 0 terms carry weight e^{−2π²/σ²} (they
make an integrable 1/θ² singularity at μ, invisible for σ ≲ 1).

The RSGM paper's SO(3) benchmark (its reference code, ``datasets/simple.py::Wrapped`` with
``mean: unif``, ``scale_type: random``, ``scale: 100``) draws M means from the Haar law, one
precision per component from Gamma(100, 1), τ = 1/√precision (≈ 0.1), and equal weights; a
draw is exp_μ(τ·ξ) with ξ from geomstats' ``random_normal_tangent``, a standard normal in the
Lie algebra's *normed* basis, whose elements have Frobenius norm 1 (|hat(ω)|_F = √2 |ω|). So τ
is the per-coordinate std in Frobenius-orthonormal coordinates and the rotation vector has std
σ = τ/√2 per axis: :func:`reference_mixture` uses that σ. The same code's SO(3) volume is
8π² (``log_volume``), the angle metric's: the published log-likelihoods are per point w.r.t.
that measure, log p_angle = log p_Frobenius + log 2√2 (this package's densities are w.r.t. the
Frobenius volume 16√2 π²). Its own ``log_prob`` is marked wrong by its authors, hence the
exact density here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pipeline.so3.manifold import SO3, rodrigues

__all__ = ["WrappedMixture", "reference_mixture", "wrapped_normal_logp"]

SO = SO3()
_N_WRAPS = 2  # m in [-2, 2]: the next wrap weighs e^{-(6π)²/(2σ²)} < e^{-170} for σ <= 1.5
_THETA_MIN = 1e-9


def wrapped_normal_logp(x: Tensor, mean: Tensor, sigma: float | Tensor) -> Tensor:
    """log-density of the wrapped normal w.r.t. the Riemannian volume (Frobenius metric).

    Args:
        x: Tensor, shape (..., 9), rotations.
        mean: Tensor, shape (..., 9), means (broadcast with x).
        sigma: Scale(s) > 0 (std of each rotation-vector coordinate), broadcastable.

    Returns:
        Tensor, shape (...), float64.
    """
    theta = SO.angle(mean.to(torch.float64), x.to(torch.float64)).clamp_min(_THETA_MIN)
    sig = torch.as_tensor(sigma, dtype=torch.float64, device=theta.device)
    m = torch.arange(-_N_WRAPS, _N_WRAPS + 1, dtype=torch.float64, device=theta.device)
    phi = theta[..., None] + 2.0 * math.pi * m
    sig_b = sig[..., None] if sig.ndim > 0 else sig
    logs = -(phi * phi) / (2.0 * sig_b * sig_b) + torch.log(phi * phi)
    log_sum = torch.logsumexp(logs, dim=-1)
    one_minus_cos = 2.0 * torch.sin(theta / 2.0) ** 2  # 1 − cos θ without cancellation
    return (
        -1.5 * torch.log(2.0 * math.pi * sig * sig)
        + log_sum
        - math.log(4.0 * math.sqrt(2.0))
        - torch.log(one_minus_cos)
    )


@dataclass(frozen=True)
class WrappedMixture:
    """An equal- or given-weight mixture of wrapped normals on SO(3).

    Attributes:
        means: Tensor, shape (M, 9), the components' means.
        sigmas: Tensor, shape (M,), their scales.
        weights: Tensor, shape (M,), summing to 1.
    """

    means: Tensor
    sigmas: Tensor
    weights: Tensor

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density w.r.t. the Riemannian volume, shape (N,) for x (N, 9)."""
        comp = wrapped_normal_logp(x[:, None, :], self.means[None], self.sigmas[None])
        return torch.logsumexp(comp + torch.log(self.weights.to(torch.float64)), dim=-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``n`` draws and their components.

        Returns:
            ``(x (n, 9) float64, component (n,) int64)``.
        """
        k = torch.multinomial(
            self.weights.to(torch.float64), n, replacement=True, generator=generator
        )
        omega = torch.randn(n, 3, dtype=torch.float64, generator=generator)
        omega = omega * self.sigmas.to(torch.float64)[k, None]
        mats = SO.matrices(self.means.to(torch.float64)[k]) @ rodrigues(omega)
        return SO.from_matrices(mats), k


def reference_mixture(m: int, seed: int, precision_shape: float = 100.0) -> WrappedMixture:
    """The benchmark's law: M Haar means, σ = 1/√(2·Gamma(shape, 1)) each, equal weights.

    Args:
        m: Number of components (the published table: 16, 32, 64).
        seed: Seed of the means and scales (numpy for the Gamma draws, torch for Haar).
        precision_shape: Shape of the Gamma law of the precisions (the reference: 100).

    Returns:
        The :class:`WrappedMixture`.
    """
    if m < 1:
        raise ValueError(f"the mixture needs at least one component, got {m}")
    gen = torch.Generator().manual_seed(seed)
    means = SO.random_uniform(m, dtype=torch.float64, generator=gen)
    precision = np.random.default_rng(seed).gamma(precision_shape, 1.0, size=m)
    # τ = 1/√precision in the Frobenius-unit basis is σ = τ/√2 on the rotation vector.
    sigmas = torch.as_tensor(1.0 / np.sqrt(2.0 * precision), dtype=torch.float64)
    return WrappedMixture(means, sigmas, torch.full((m,), 1.0 / m, dtype=torch.float64))
