r"""Heat kernel of S² (generator ½Δ, density w.r.t. area), its score and mixtures.

.. math::

    p_s(x \mid x_0) = \sum_{l \ge 0} \frac{2l+1}{4\pi} e^{-l(l+1)s/2} P_l(\cos\theta),
    \qquad \cos\theta = \langle x, x_0 \rangle.

Two exact evaluations are combined (both in float64 internally):

* ``s >= S_SWITCH``: the Legendre series above, truncated adaptively at the first l with
  (2l+1)·exp(−l(l+1)s/2) < 1e-19 (15 terms at s = S_SWITCH).
* ``s < S_SWITCH``: an exact integral (Mehler–Dirichlet descent from the S³ image sum),

  .. math::

      p_s(\theta) = \frac{e^{s/8}}{2\pi^{3/2} s^{3/2}} \int_\theta^\pi
      \frac{\sum_k (-1)^k (\varphi + 2\pi k)\, e^{-(\varphi+2\pi k)^2/2s}}
      {\sqrt{\cos\theta - \cos\varphi}}\, d\varphi ,

  rewritten with cos φ = cos θ − (1 + cos θ) sin²u, u ∈ [0, π/2], which removes the
  endpoint singularity (dφ/√(cos θ − cos φ) = 2du/√(1 − cos φ)), and integrated by
  Gauss–Legendre on [0, U(θ, s)] where U cuts the integrand at e^{−42} of its peak. Only the
  images k = 0 and (for φ > ½) k = −1 contribute above 1e-16 relative for s < S_SWITCH; the
  pair (0, −1) is written so that the antipode θ = π is regular. ∂_c log p is obtained by
  differentiating under the integral sign (closed forms, Taylor-safe at φ → 0).

The switch point and the accuracy were chosen by measuring against a 100-digit mpmath
reference, see ``benchmarks/heat_kernel_switch.py``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pipeline.numerics import composite_gauss_legendre

#: Heat time below which the integral form is used (measured, see module docstring).
S_SWITCH = 0.5
#: Gauss–Legendre nodes of the integral form.
N_NODES = 20
#: Integrand cut-off exponent (e^{-42} ≈ 6e-19 relative).
_CUTOFF = 42.0
#: Series truncation: stop once (2l+1)·exp(−l(l+1)s/2) < _SERIES_TOL.
_SERIES_TOL = 1e-19
_LOG_4PI = math.log(4 * math.pi)
_LOG_NORM = math.log(2 * math.pi**1.5)
_SQRT2 = math.sqrt(2.0)
_PI = math.pi

_GL_CACHE: dict[tuple[int, torch.device], tuple[Tensor, Tensor]] = {}


def _gauss_legendre01(n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Gauss–Legendre nodes and weights on [0, 1] in float64 (cached per device)."""
    key = (n, device)
    if key not in _GL_CACHE:
        t, w = composite_gauss_legendre([0.0, 1.0], n)
        _GL_CACHE[key] = (
            torch.as_tensor(t[0], dtype=torch.float64, device=device),
            torch.as_tensor(w[0], dtype=torch.float64, device=device),
        )
    return _GL_CACHE[key]


def series_n_terms(s: float) -> int:
    """Number of Legendre terms the series needs at heat time ``s`` (> 0)."""
    if s <= 0:
        raise ValueError(f"heat time must be > 0, got {s}")
    log_tol = math.log(_SERIES_TOL)
    lo = 1
    while math.log(2 * lo + 1) - lo * (lo + 1) * s / 2 > log_tol:
        lo += 1
    return lo + 1


# --------------------------------------------------------------------------- kernels in θ
def _integral_logp_dlogp(theta: Tensor, s: Tensor, n_nodes: int = N_NODES) -> tuple[Tensor, Tensor]:
    """Small-time exact integral form (float64, 1-D inputs of equal length).

    Args:
        theta: Tensor, shape (N,), angles in [0, π].
        s: Tensor, shape (N,), heat times in (0, ~1].
        n_nodes: Gauss–Legendre nodes.

    Returns:
        (log p_s(θ), ∂_c log p_s) each of shape (N,).
    """
    t_nodes, w_nodes = _gauss_legendre01(n_nodes, theta.device)
    sth = torch.sin(theta / 2)
    cth = torch.cos(theta / 2)
    # Upper limit U: the integrand is ≤ e^{-_CUTOFF} of its peak beyond φ_max.
    phi_max = torch.sqrt(theta * theta + 2 * _CUTOFF * s)
    full = phi_max >= _PI
    safe_cth2 = torch.where(full, torch.ones_like(cth), cth * cth)
    sin2_u = torch.sin((phi_max + theta) / 2) * torch.sin((phi_max - theta) / 2) / safe_cth2
    upper = torch.where(
        full, torch.full_like(theta, _PI / 2), torch.asin(sin2_u.clamp(0, 1).sqrt())
    )
    u = upper[:, None] * t_nodes  # (N, n)
    w = upper[:, None] * w_nodes
    sin_u = torch.sin(u)
    cos_u = torch.cos(u)
    sh = torch.sqrt(sth[:, None] ** 2 + (cth[:, None] * sin_u) ** 2)  # sin(φ/2)
    ch = cth[:, None] * cos_u  # cos(φ/2)
    phi = 2 * torch.atan2(sh, ch)
    psi = 2 * torch.atan2(ch, sh)  # π − φ, accurate near the antipode
    s2 = s[:, None]
    th2 = theta[:, None]
    damp = torch.exp(-(phi - th2) * (phi + th2) / (2 * s2))  # e^{-(φ² − θ²)/2s}
    pair = phi > 0.5
    x_img = 2 * _PI * psi / s2
    e_img = torch.where(pair, torch.exp(-x_img), torch.zeros_like(x_img))
    f_scaled = damp * (phi + (_PI + psi) * e_img)  # F e^{θ²/2s}
    integral = (w * (_SQRT2 * f_scaled / sh)).sum(dim=1)

    # ∂_c: I'(c) = ∫ (√2/2)·Q/sin²(φ/2)·cos²u du with Q = F/(2 sin(φ/2)) − F'/cos(φ/2).
    phi_over_sh = torch.where(
        phi < 1e-4, 2 + phi * phi / 12, phi / sh.clamp_min(torch.finfo(sh.dtype).tiny)
    )
    p2 = phi * phi
    taylor_t = -1 / 3 - p2 * (3 / 40 + p2 * (47 / 4480 + p2 * 1961 / 1612800))
    safe_sh = sh.clamp_min(1e-150)
    direct_t = (phi / (2 * safe_sh) - 1 / ch) / (safe_sh * safe_sh)
    t_fun = torch.where(phi < 0.05, taylor_t, direct_t)
    q_single = damp * (t_fun + phi_over_sh * phi_over_sh / (s2 * ch))
    g1 = torch.where(x_img < 1e-10, 1 - x_img / 2, -torch.expm1(-x_img) / x_img.clamp_min(1e-300))
    psi_over_ch = torch.where(ch < 1e-8, torch.full_like(ch, 2.0), psi / ch.clamp_min(1e-300))
    fprime_over_ch = (
        damp * (2 * _PI / s2) * psi_over_ch * (g1 * (1 - (_PI**2 + psi * psi) / s2) + 1 + e_img)
    )
    q_pair = (f_scaled / (2 * sh) - fprime_over_ch) / (sh * sh)
    q_over_sh2 = torch.where(pair, q_pair, q_single)
    dintegral = (w * (q_over_sh2 * cos_u * cos_u)).sum(dim=1) * (_SQRT2 / 2)

    logp = s / 8 - _LOG_NORM - 1.5 * torch.log(s) - theta * theta / (2 * s) + torch.log(integral)
    return logp, dintegral / integral


def _series_logp_dlogp(c: Tensor, s: Tensor, n_terms: int) -> tuple[Tensor, Tensor]:
    """Legendre series (float64, 1-D inputs of equal length).

    Args:
        c: Tensor, shape (N,), cos θ.
        s: Tensor, shape (N,), heat times.
        n_terms: number of terms l = 0..n_terms−1.

    Returns:
        (log p_s, ∂_c log p_s) each of shape (N,).
    """
    p_prev, p_cur = torch.ones_like(c), c
    dp_prev, dp_cur = torch.zeros_like(c), torch.ones_like(c)
    dens = torch.ones_like(c)
    ddens = torch.zeros_like(c)
    for l in range(1, n_terms):  # noqa: E741 (Legendre degree)
        coef = (2 * l + 1) * torch.exp(-l * (l + 1) * s / 2)
        dens = dens + coef * p_cur
        ddens = ddens + coef * dp_cur
        p_next = ((2 * l + 1) * c * p_cur - l * p_prev) / (l + 1)
        dp_next = dp_prev + (2 * l + 1) * p_cur
        p_prev, p_cur = p_cur, p_next
        dp_prev, dp_cur = dp_cur, dp_next
    return torch.log(dens) - _LOG_4PI, ddens / dens


def _logp_dlogp_theta(theta: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    """Dispatch between the two exact forms; float64 1-D inputs of equal length."""
    small = s < S_SWITCH
    n_small = int(small.sum())
    if n_small == s.numel():
        return _integral_logp_dlogp(theta, s)
    if n_small == 0:
        return _series_logp_dlogp(torch.cos(theta), s, series_n_terms(float(s.min())))
    idx_small = small.nonzero().squeeze(-1)
    idx_big = (~small).nonzero().squeeze(-1)
    s_big = s[idx_big]
    lp_big, dl_big = _series_logp_dlogp(
        torch.cos(theta[idx_big]), s_big, series_n_terms(float(s_big.min()))
    )
    lp_small, dl_small = _integral_logp_dlogp(theta[idx_small], s[idx_small])
    logp = torch.empty_like(s).index_put_((idx_small,), lp_small).index_put_((idx_big,), lp_big)
    dlogp = torch.empty_like(s).index_put_((idx_small,), dl_small).index_put_((idx_big,), dl_big)
    return logp, dlogp


def _prepare(theta: Tensor, s: float | Tensor) -> tuple[Tensor, Tensor, torch.Size, torch.dtype]:
    s_t = s if isinstance(s, Tensor) else torch.tensor(float(s), dtype=torch.float64)
    s_t = s_t.to(theta.device)
    if bool((s_t <= 0).any()):
        raise ValueError("heat time s must be > 0")
    out_dtype = theta.dtype
    if isinstance(s, Tensor) and s.is_floating_point():
        out_dtype = torch.promote_types(theta.dtype, s.dtype)
    theta_b, s_b = torch.broadcast_tensors(theta.to(torch.float64), s_t.to(torch.float64))
    return theta_b.reshape(-1), s_b.reshape(-1), theta_b.shape, out_dtype


def _angle(x: Tensor, x0: Tensor) -> Tensor:
    """Accurate angle 2·atan2(|x − x0|, |x + x0|) in float64, shape broadcast(...)."""
    xd = x.to(torch.float64)
    x0d = x0.to(torch.float64)
    return 2 * torch.atan2(
        torch.linalg.vector_norm(xd - x0d, dim=-1), torch.linalg.vector_norm(xd + x0d, dim=-1)
    )


# --------------------------------------------------------------------------- public API
def heat_kernel_logp_theta(theta: Tensor, s: float | Tensor) -> Tensor:
    """log p_s as a function of the geodesic angle θ (most accurate entry point).

    Args:
        theta: Tensor, shape (...), angles in [0, π].
        s: heat time(s) > 0, float or Tensor broadcastable with theta.

    Returns:
        Tensor, shape broadcast(theta, s), log-density w.r.t. area, dtype of the inputs.
    """
    th, s_f, shape, dtype = _prepare(theta, s)
    return _logp_dlogp_theta(th, s_f)[0].reshape(shape).to(dtype)


def heat_kernel_dlogp_dc(c: Tensor, s: float | Tensor) -> Tensor:
    """∂ log p_s / ∂c at c = cos θ.

    Args:
        c: Tensor, shape (...), cosines in [−1, 1].
        s: heat time(s) > 0, broadcastable with c.

    Returns:
        Tensor, shape broadcast(c, s).
    """
    th, s_f, shape, dtype = _prepare(torch.arccos(c.clamp(-1, 1)), s)
    return _logp_dlogp_theta(th, s_f)[1].reshape(shape).to(dtype)


def heat_kernel_logp(x: Tensor, x0: Tensor, s: float | Tensor) -> Tensor:
    """log p_s(x | x0) on S² w.r.t. area.

    Args:
        x: Tensor, shape (..., 3), points on S².
        x0: Tensor, shape (..., 3), centres (broadcast with x).
        s: heat time(s) > 0, float or Tensor broadcastable to the batch shape.

    Returns:
        Tensor, shape (...) (broadcast batch shape), dtype of x.
    """
    return heat_kernel_logp_theta(_angle(x, x0), s).to(x.dtype)


def heat_kernel_score(x: Tensor, x0: Tensor, s: float | Tensor) -> Tensor:
    """Riemannian gradient ∇_x log p_s(x | x0) = ∂_c log p · P_x x0.

    P_x x0 is evaluated as P_x(x0 − x) (accurate for x near x0). Small s:
    ≈ log_x(x0)/s.

    Args:
        x: Tensor, shape (..., 3), points on S².
        x0: Tensor, shape (..., 3), centres.
        s: heat time(s) > 0, broadcastable to the batch shape.

    Returns:
        Tensor, shape (..., 3), tangent vectors at x, dtype of x.
    """
    th, s_f, shape, _ = _prepare(_angle(x, x0), s)
    dl = _logp_dlogp_theta(th, s_f)[1].reshape(shape)
    xd = x.to(torch.float64)
    diff = x0.to(torch.float64) - xd
    tangent = diff - (xd * diff).sum(dim=-1, keepdim=True) * xd
    return (dl.unsqueeze(-1) * tangent).to(x.dtype)


def _mixture_parts(
    x: Tensor, centers: Tensor, s: float | Tensor, weights: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Per-component log-weights + log-densities, shape (..., K), and the components' ∂_c."""
    if centers.ndim != 2 or centers.shape[-1] != 3:
        raise ValueError(f"centers must have shape (K, 3), got {tuple(centers.shape)}")
    k = centers.shape[0]
    if weights is None:
        log_w = torch.full((k,), -math.log(k), dtype=torch.float64, device=x.device)
    else:
        if weights.shape != (k,) or bool((weights < 0).any()):
            raise ValueError(f"weights must be non-negative with shape ({k},)")
        log_w = torch.log(weights.to(torch.float64) / weights.to(torch.float64).sum())
    s_t = torch.as_tensor(s, dtype=torch.float64, device=x.device).unsqueeze(-1)
    theta = _angle(x.unsqueeze(-2), centers)
    th, s_f, shape, _ = _prepare(theta, s_t)
    lp, dl = _logp_dlogp_theta(th, s_f)
    return log_w + lp.reshape(shape), dl.reshape(shape)


def heat_kernel_mixture_logp(
    x: Tensor, centers: Tensor, s: float | Tensor, weights: Tensor | None = None
) -> Tensor:
    """log of Σ_k w_k p_s(x | centers_k) (log-sum-exp; weights normalised).

    Args:
        x: Tensor, shape (..., 3), points on S².
        centers: Tensor, shape (K, 3), centres on S².
        s: heat time(s) > 0: float or Tensor broadcastable to x.shape[:-1].
        weights: optional Tensor, shape (K,), non-negative (default uniform).

    Returns:
        Tensor, shape (...), dtype of x.
    """
    comp, _ = _mixture_parts(x, centers, s, weights)
    return torch.logsumexp(comp, dim=-1).to(x.dtype)


def heat_kernel_mixture_score(
    x: Tensor, centers: Tensor, s: float | Tensor, weights: Tensor | None = None
) -> Tensor:
    """Riemannian score of the heat-kernel mixture: Σ_k r_k ∇ log p_s(x | c_k).

    r_k are the posterior responsibilities (softmax of the component log-terms).

    Args:
        x: Tensor, shape (..., 3), points on S².
        centers: Tensor, shape (K, 3), centres on S².
        s: heat time(s) > 0: float or Tensor broadcastable to x.shape[:-1].
        weights: optional Tensor, shape (K,), non-negative (default uniform).

    Returns:
        Tensor, shape (..., 3), tangent vectors at x, dtype of x.
    """
    comp, dl = _mixture_parts(x, centers, s, weights)
    resp = torch.softmax(comp, dim=-1)  # (..., K)
    xd = x.to(torch.float64).unsqueeze(-2)
    diff = centers.to(torch.float64) - xd
    tangent = diff - (xd * diff).sum(dim=-1, keepdim=True) * xd  # (..., K, 3)
    return ((resp * dl).unsqueeze(-1) * tangent).sum(dim=-2).to(x.dtype)


def _theta_quadrature(s: float, n: int = 400) -> tuple[Tensor, Tensor]:
    """Gauss–Legendre nodes/weights in θ covering the mass of p_s (float64, CPU)."""
    upper = min(math.pi, math.sqrt(2 * 50 * s) + 4 * s)
    edges = [0.0, upper] if upper >= math.pi else [0.0, upper, math.pi]
    nodes, weights = composite_gauss_legendre(edges, n)
    return (
        torch.as_tensor(nodes.ravel(), dtype=torch.float64),
        torch.as_tensor(weights.ravel(), dtype=torch.float64),
    )


def heat_kernel_total_mass(s: float, n: int = 400) -> float:
    """∫_{S²} p_s dA = ∫_{-1}^{1} 2π p_s(c) dc by quadrature in θ (dc = sin θ dθ); ≈ 1."""
    theta, w = _theta_quadrature(s, n)
    p = torch.exp(heat_kernel_logp_theta(theta, s))
    return float((w * 2 * math.pi * torch.sin(theta) * p).sum())


def prior_kl_uniform(s: float, n: int = 400) -> float:
    """KL(p_s(· | x0) ‖ uniform on S²) in nats.

    By convexity of KL this bounds KL(p_s ‖ uniform) for every data distribution, i.e. the
    prior mismatch of a forward process run for heat time s.

    Args:
        s: heat time > 0.
        n: Gauss–Legendre nodes per θ-interval.

    Returns:
        ∫ 2π sin θ p_s(θ) (log p_s(θ) + log 4π) dθ.
    """
    theta, w = _theta_quadrature(float(s), n)
    logp = heat_kernel_logp_theta(theta, float(s))
    dens = w * 2 * math.pi * torch.sin(theta) * torch.exp(logp)
    return float((dens * (logp + _LOG_4PI)).sum())


def heat_kernel_logp_dlogp_theta(theta: Tensor, s: float | Tensor) -> tuple[Tensor, Tensor]:
    """log p_s and ∂_c log p_s (c = cos θ) at once, as functions of the angle θ.

    Args:
        theta: Tensor, shape (...), angles in [0, π].
        s: heat time(s) > 0, float or Tensor broadcastable with theta.

    Returns:
        Tuple of Tensors of shape broadcast(theta, s), float64: the log-density w.r.t. area
        and its derivative in c (the score is ∂_c log p · P_x x0).
    """
    th, s_f, shape, _ = _prepare(theta, s)
    logp, dlogp = _logp_dlogp_theta(th, s_f)
    return logp.reshape(shape), dlogp.reshape(shape)
