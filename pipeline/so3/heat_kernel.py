r"""Heat kernel of SO(3) (Frobenius metric, generator ½Δ): density, score, exact sampler.

With the metric of :class:`pipeline.so3.manifold.SO3` (twice the usual bi-invariant one) the
Laplacian has eigenvalues −l(l+1)/2 with the characters χ_l(θ) = sin((2l+1)θ/2)/sin(θ/2),
so Brownian motion with generator ½Δ run for heat time s has, w.r.t. the Haar probability
measure and with θ the rotation angle of x0ᵀx,

    p_s(θ) = Σ_{l≥0} (2l+1) e^{−l(l+1)s/4} χ_l(θ)                       (character series)
           = 8 √π s^{−3/2} e^{s/16} / sin(θ/2) · Σ_{n∈Z} (−1)^n (φ_n/2) e^{−φ_n²/s},
             φ_n = θ + 2πn                                                 (images)

The second form is the S³ heat kernel's method of images (unit quaternions cover SO(3) twice;
with this metric S³ has radius 2√2) and is exact too; it converges in a few terms when s is
small, the series when s is large. :data:`SERIES_MIN_S` is where the code switches (both
agree to 4e-15 there, to 3e-13 at s = 1 and 5e-9 at s = 0.5, where the series starts to
lose digits to cancellation: ``tests/so3/test_so3_heat_kernel.py``). Densities w.r.t. the
Riemannian volume divide by vol(SO(3)) = 16√2 π². For small s the n = 0 image is the
Varadhan form (2πs)^{−3/2} e^{−d²/(2s)} (d = √2 θ) times (θ/2)/sin(θ/2).

X_s | x0 = x0 · exp(θ hat(a)) with the axis a uniform on S² and the angle θ of density
q_s(θ) = p_s(θ) (1 − cos θ)/π on [0, π] (the Haar angle law times the kernel).
:func:`so3_heat_kernel_sample` draws θ for one s from a tabulated CDF;
:func:`so3_exact_bm_sample` (one s per draw, the training losses' sampler) by rejection: for
s ≤ 4 from the Varadhan proposal θ = √(s/2)·χ₃, whose ratio q_s/g is at most 4/π times its
limit at θ = 0 (the n = 0 image gives sin(θ/2)/(θ/2) ≤ 1 and the n = −1 image at most doubles
it, both reached at θ = π: measured in the tests), acceptance ≥ 0.65; above s = 4 from the
Haar angle law with acceptance p_s(θ)/p_s(0) (the kernel peaks at θ = 0), ≥ 0.44.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from pipeline.numerics import rejection_sample
from pipeline.so3.manifold import SO3, rodrigues

__all__ = [
    "SERIES_MIN_S",
    "so3_heat_kernel_logp",
    "so3_heat_kernel_mixture_logp",
    "so3_heat_kernel_mixture_score",
    "so3_heat_kernel_sample",
    "so3_heat_kernel_score",
    "so3_exact_bm_sample",
    "so3_heat_logp_angle",
    "so3_heat_angle_cdf",
]

SO = SO3()
SERIES_MIN_S = 2.0
"""Heat times at or above this use the character series, below it the images."""
_N_IMAGES = 3  # n in [-3, 3]: the next image is below e^{-(6π)²/s} < e^{-170} for s < 2
_N_SERIES = 12  # l <= 12: the next term is below 27² e^{-13·14·s/4} < 1e-36 for s >= 2
_THETA_MIN = 1e-12  # the angle is clamped here: χ_l(0) and the images' 0/0 are limits


def _log_haar_images(theta: Tensor, s: Tensor) -> Tensor:
    n = torch.arange(-_N_IMAGES, _N_IMAGES + 1, dtype=theta.dtype, device=theta.device)
    phi = theta[..., None] + 2.0 * math.pi * n
    sign = torch.where(n.remainder(2) == 0, 1.0, -1.0).to(theta.dtype) * torch.sign(phi)
    logs = torch.log(phi.abs() / 2.0) - phi * phi / s[..., None]
    top = logs.max(dim=-1, keepdim=True).values
    total = (sign * torch.exp(logs - top)).sum(-1)
    log_sum = torch.log(total) + top.squeeze(-1)
    return (
        math.log(8.0 * math.sqrt(math.pi))
        - 1.5 * torch.log(s)
        + s / 16.0
        - torch.log(torch.sin(theta / 2.0))
        + log_sum
    )


def _log_haar_series(theta: Tensor, s: Tensor, n_terms: int = _N_SERIES) -> Tensor:
    ell = torch.arange(n_terms + 1, dtype=theta.dtype, device=theta.device)
    half = theta[..., None] / 2.0
    chi = torch.sin((2.0 * ell + 1.0) * half) / torch.sin(half)
    terms = (2.0 * ell + 1.0) * torch.exp(-ell * (ell + 1.0) * s[..., None] / 4.0) * chi
    return torch.log(terms.sum(-1))


def so3_heat_logp_angle(theta: Tensor, s: float | Tensor) -> Tensor:
    """log p_s(θ) w.r.t. the Riemannian volume of SO(3) (Frobenius metric).

    Args:
        theta: Tensor, shape (...), rotation angles in [0, π] (differentiable).
        s: Heat time(s) > 0, broadcastable to ``theta``.

    Returns:
        Tensor, shape (...), in ``theta``'s dtype (computed in float64).
    """
    th = theta.to(torch.float64).clamp(_THETA_MIN, math.pi)
    s_t = torch.as_tensor(s, dtype=torch.float64, device=theta.device)
    th, s_t = torch.broadcast_tensors(th, s_t)
    if bool((s_t <= 0).any()):
        raise ValueError("heat time s must be > 0")
    series = s_t >= SERIES_MIN_S
    s_img = torch.where(series, torch.full_like(s_t, 1.0), s_t)
    s_ser = torch.where(series, s_t, torch.full_like(s_t, SERIES_MIN_S))
    log_haar = torch.where(series, _log_haar_series(th, s_ser), _log_haar_images(th, s_img))
    return (log_haar - SO.log_volume).to(theta.dtype)


def _dlogp_dtheta(theta: Tensor, s: float | Tensor) -> Tensor:
    """∂_θ log p_s(θ), differentiable in θ when θ carries a graph (the PF-ODE's divergence)."""
    with torch.enable_grad():
        keep = theta.requires_grad
        th = theta if keep else theta.detach().requires_grad_(True)
        lp = so3_heat_logp_angle(th.to(torch.float64), s).sum()
        (grad,) = torch.autograd.grad(lp, th, create_graph=keep)
    return grad


def so3_heat_kernel_logp(x: Tensor, x0: Tensor, s: float | Tensor) -> Tensor:
    """log p_s(x | x0) w.r.t. the Riemannian volume.

    Args:
        x: Tensor, shape (..., 9), rotations (flattened).
        x0: Tensor, shape (..., 9), centres (broadcast with x).
        s: Heat time(s) > 0, broadcastable to the batch shape.

    Returns:
        Tensor, shape (...), dtype of x.
    """
    return so3_heat_logp_angle(SO.angle(x0, x), s).to(x.dtype)


def so3_heat_kernel_score(x: Tensor, x0: Tensor, s: float | Tensor) -> Tensor:
    """Riemannian score ∇_x log p_s(x | x0) = ∂_θ log p · ∇θ, ∇θ = −log_x(x0) / (2θ).

    Args:
        x: Tensor, shape (..., 9), rotations.
        x0: Tensor, shape (..., 9), centres.
        s: Heat time(s) > 0.

    Returns:
        Tensor, shape (..., 9), tangent vectors at x, dtype of x.
    """
    xd, x0d = torch.broadcast_tensors(x.to(torch.float64), x0.to(torch.float64))
    theta = SO.angle(x0d, xd)
    safe = theta.clamp_min(1e-7)
    dl = _dlogp_dtheta(safe, s)
    to_centre = SO.logmap(xd, x0d)
    return (-(dl / (2.0 * safe))[..., None] * to_centre).to(x.dtype)


def _per_point(s: float | Tensor) -> float | Tensor:
    """Heat times of shape (...) broadcast against the components axis: (..., 1)."""
    return s[..., None] if isinstance(s, Tensor) and s.ndim > 0 else s


def _mixture_log_terms(
    x: Tensor, centers: Tensor, s: float | Tensor, weights: Tensor | None
) -> Tensor:
    """log w_k + log p_s(x | c_k), shape (..., K)."""
    k = centers.shape[0]
    w = torch.full((k,), 1.0 / k, dtype=torch.float64) if weights is None else weights
    lp = so3_heat_kernel_logp(
        x.to(torch.float64)[..., None, :], centers.to(torch.float64), _per_point(s)
    )
    return lp + torch.log(w.to(torch.float64))


def so3_heat_kernel_mixture_logp(
    x: Tensor, centers: Tensor, s: float | Tensor, weights: Tensor | None = None
) -> Tensor:
    """log Σ_k w_k p_s(x | c_k); x (..., 9), centers (K, 9) -> (...)."""
    return torch.logsumexp(_mixture_log_terms(x, centers, s, weights), dim=-1).to(x.dtype)


def so3_heat_kernel_mixture_score(
    x: Tensor, centers: Tensor, s: float | Tensor, weights: Tensor | None = None
) -> Tensor:
    """Score of the mixture: Σ_k r_k(x) ∇ log p_s(x | c_k), r the posterior weights."""
    post = torch.softmax(_mixture_log_terms(x, centers, s, weights), dim=-1)
    s_k = _per_point(s)
    scores = so3_heat_kernel_score(
        x.to(torch.float64)[..., None, :], centers.to(torch.float64), s_k
    )
    return (post[..., None] * scores).sum(-2).to(x.dtype)


def so3_heat_angle_cdf(s: float, n_grid: int = 4097) -> tuple[np.ndarray, np.ndarray]:
    """CDF of the rotation angle of X_s | x0 on a grid θ = π v² (dense near 0).

    Args:
        s: Heat time > 0.
        n_grid: Grid points.

    Returns:
        ``(theta, cdf)``, each shape (n_grid,), cdf from 0 to 1 (normalised; its last value
        before normalising is the kernel's total mass, 1 up to quadrature error).
    """
    v = np.linspace(0.0, 1.0, n_grid)
    theta = math.pi * v * v
    th = torch.as_tensor(theta, dtype=torch.float64)
    log_haar = so3_heat_logp_angle(th, s) + SO.log_volume
    dens = torch.exp(log_haar).numpy() * (1.0 - np.cos(theta)) / math.pi
    dens_v = dens * 2.0 * math.pi * v  # dθ = 2π v dv
    cdf = np.concatenate(([0.0], np.cumsum(0.5 * (dens_v[1:] + dens_v[:-1]) * np.diff(v))))
    return theta, cdf


def so3_heat_kernel_sample(
    x0: Tensor, s: float, generator: torch.Generator | None = None
) -> Tensor:
    """Exact draws of X_s | x0 (tabulated inverse CDF of the angle, uniform axis).

    Args:
        x0: Tensor, shape (N, 9), starting rotations.
        s: Heat time > 0 (one for all draws).
        generator: Random generator (CPU).

    Returns:
        Tensor, shape (N, 9), dtype of x0.
    """
    theta_grid, cdf = so3_heat_angle_cdf(float(s))
    cdf = cdf / cdf[-1]
    n = x0.shape[0]
    u = torch.rand(n, dtype=torch.float64, generator=generator).numpy()
    theta = torch.as_tensor(np.interp(u, cdf, theta_grid), dtype=torch.float64)
    axis = torch.randn(n, 3, dtype=torch.float64, generator=generator)
    axis = axis / axis.norm(dim=-1, keepdim=True)
    turn = rodrigues(theta[:, None] * axis)
    out = SO.matrices(x0.to(torch.float64)) @ turn
    return SO.from_matrices(out).to(x0.dtype)


_CHI_MAX_S = 4.0
_CHI_BOUND = math.log(4.0 / math.pi)
_MAX_ROUNDS = 200


def _chi_log_ratio(theta: Tensor, s: Tensor, log_p: Tensor, log_p0: Tensor) -> Tensor:
    # q/g ∝ p(θ)(1 − cos θ)/θ² · e^{θ²/s}; at θ → 0 it tends to p(0)/2.
    th = theta.clamp_min(1e-6)
    log_q_over_g = log_p + torch.log(2.0 * torch.sin(th / 2.0) ** 2) - 2.0 * torch.log(th)
    return log_q_over_g + th * th / s - (log_p0 - math.log(2.0))


def _log_angle_ratio_chi(theta: Tensor, s: Tensor) -> Tensor:
    """log[q_s(θ)/g_s(θ)] − log of its θ → 0 limit, g_s the √(s/2)·χ₃ density."""
    th = theta.clamp_min(1e-6)
    log_p0 = so3_heat_logp_angle(torch.full_like(th, _THETA_MIN), s)
    return _chi_log_ratio(th, s, so3_heat_logp_angle(th, s), log_p0)


def sample_so3_angle_exact(s: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Exact draws of the rotation angle of X_s | x0 by rejection (one heat time per draw).

    Args:
        s: Tensor, shape (N,), heat times > 0 (float64).
        generator: Random generator on s's device.

    Returns:
        Tensor, shape (N,), float64 angles in [0, π].

    Raises:
        ValueError: If a heat time is not positive.
        RuntimeError: If the rejection loop does not finish (it accepts ≥ 44% per round).
    """
    if bool((s <= 0).any()):
        raise ValueError("heat time s must be > 0")

    def propose(st: Tensor, gen: torch.Generator | None) -> tuple[Tensor, Tensor]:
        chi = st <= _CHI_MAX_S
        g3 = torch.randn(st.shape[0], 3, dtype=torch.float64, device=st.device, generator=gen)
        quat = torch.randn(st.shape[0], 4, dtype=torch.float64, device=st.device, generator=gen)
        w = (quat[:, 0].abs() / quat.norm(dim=-1)).clamp(max=1.0)
        prop = torch.where(chi, torch.sqrt(st / 2.0) * g3.norm(dim=-1), 2.0 * torch.arccos(w))
        inside = prop <= math.pi
        prop = prop.clamp(max=math.pi)
        log_p = so3_heat_logp_angle(prop.clamp_min(1e-6), st)
        log_p0 = so3_heat_logp_angle(torch.full_like(prop, _THETA_MIN), st)
        log_ratio = torch.where(
            chi, _chi_log_ratio(prop, st, log_p, log_p0) - _CHI_BOUND, log_p - log_p0
        )
        return prop, torch.where(inside, log_ratio, -math.inf)

    return rejection_sample(s, propose, generator, _MAX_ROUNDS)


def so3_exact_bm_sample(
    x0: Tensor, s: float | Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Exact draws of Brownian motion on SO(3) at heat time(s) s from x0 (rejection).

    Args:
        x0: Tensor, shape (N, 9), starting rotations.
        s: Heat time(s) > 0, a float or shape (N,).
        generator: Random generator on x0's device.

    Returns:
        Tensor, shape (N, 9), dtype of x0.
    """
    n = x0.shape[0]
    s_t = torch.as_tensor(s, dtype=torch.float64, device=x0.device)
    s_t = s_t.expand(n) if s_t.ndim == 0 else s_t.reshape(-1)
    if s_t.shape != (n,):
        raise ValueError(f"s must be a scalar or have shape ({n},), got {tuple(s_t.shape)}")
    theta = sample_so3_angle_exact(s_t.contiguous(), generator)
    axis = torch.randn(n, 3, dtype=torch.float64, device=x0.device, generator=generator)
    axis = axis / axis.norm(dim=-1, keepdim=True)
    out = SO.matrices(x0.to(torch.float64)) @ rodrigues(theta[:, None] * axis)
    return SO.from_matrices(out).to(x0.dtype)
