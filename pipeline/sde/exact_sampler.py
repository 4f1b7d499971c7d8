"""Exact sampling of Brownian motion on S² (generator ½Δ): X_s | X_0 = x0.

The angle θ = d(x0, X_s) has density q_s(θ) = 2π sin θ · p_s(θ) on [0, π] and the
direction in T_{x0}S² is uniform, so X_s = cos θ · x0 + sin θ · u.

* :func:`exact_bm_sample` draws θ by rejection (exact up to float64 round-off): for
  s ≤ 1.5 from the Rayleigh proposal θ = √s·R (Varadhan limit), for larger s from c = cos θ
  uniform; both bounds (q/Rayleigh ≤ its value at θ = 0, p_s ≤ p_s(0)) are measured in
  the tests.
* :class:`HeatKernelSampler` tabulates the inverse CDF once on a (log s, v) grid, where
  v = sqrt(−2 log(1 − F)) is the Rayleigh quantile of the level F, and stores
  g = log(θ/(√s v)) which is smooth in both variables (→ 0 as s → 0 and linear in log s as
  s → ∞); a draw is one bilinear look-up.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pipeline.devices import require_positive
from pipeline.numerics import composite_gauss_legendre, rejection_sample
from pipeline.sde.heat_kernel import _logp_dlogp_theta

_RAYLEIGH_MAX_S = 1.5
_MAX_ROUNDS = 200


def _as_s(s: float | Tensor, n: int, device: torch.device) -> Tensor:
    s_t = torch.as_tensor(s, dtype=torch.float64, device=device)
    s_t = s_t.expand(n) if s_t.ndim == 0 else s_t.reshape(-1)
    if s_t.shape != (n,):
        raise ValueError(f"s must be a scalar or have shape ({n},), got {tuple(s_t.shape)}")
    if bool((s_t <= 0).any()):
        raise ValueError("heat time s must be > 0")
    return s_t


def _uniform_tangent_direction(x0: Tensor, generator: torch.Generator | None) -> Tensor:
    """Unit vectors uniform in T_{x0}S² (float64), shape (N, 3)."""
    z = torch.randn(x0.shape, dtype=torch.float64, device=x0.device, generator=generator)
    z = z - (z * x0).sum(dim=-1, keepdim=True) * x0
    return z / torch.linalg.vector_norm(z, dim=-1, keepdim=True).clamp_min(1e-300)


def _move(x0: Tensor, theta: Tensor, generator: torch.Generator | None) -> Tensor:
    """cos θ x0 + sin θ u with u uniform in the tangent plane; returns x0's dtype."""
    x0d = x0.to(torch.float64)
    x0d = x0d / torch.linalg.vector_norm(x0d, dim=-1, keepdim=True)
    u = _uniform_tangent_direction(x0d, generator)
    th = theta.unsqueeze(-1)
    return (torch.cos(th) * x0d + torch.sin(th) * u).to(x0.dtype)


def sample_angle_exact(s: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Exact draws of θ = d(x0, X_s) by rejection.

    Args:
        s: Tensor, shape (N,), heat times > 0 (float64).
        generator: random generator on s's device.

    Returns:
        Tensor, shape (N,), float64 angles in [0, π].
    """
    zero = torch.zeros(1, dtype=torch.float64, device=s.device)

    def propose(st: Tensor, gen: torch.Generator | None) -> tuple[Tensor, Tensor]:
        ray = st <= _RAYLEIGH_MAX_S
        u1 = torch.rand(st.shape, dtype=torch.float64, device=st.device, generator=gen)
        radius = torch.sqrt(-2 * torch.log1p(-u1))  # Rayleigh
        prop = torch.where(ray, radius * st.sqrt(), torch.arccos(1 - 2 * u1))
        inside = prop <= math.pi
        prop = prop.clamp(max=math.pi)
        logp, _ = _logp_dlogp_theta(prop, st)
        logp0, _ = _logp_dlogp_theta(zero.expand_as(st), st)
        # Rayleigh: log[q/(M g)] = log sinc θ + log p + θ²/2s − log p(0); uniform: log p − log p(0)
        log_ratio = logp - logp0
        log_ratio = torch.where(
            ray, log_ratio + torch.log(torch.sinc(prop / math.pi)) + prop**2 / (2 * st), log_ratio
        )
        return prop, torch.where(inside, log_ratio, -math.inf)

    return rejection_sample(s, propose, generator, _MAX_ROUNDS)


def exact_bm_sample(
    x0: Tensor, s: float | Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Exact sample of Brownian motion on S² at heat time s started at x0.

    Args:
        x0: Tensor, shape (N, 3), starting points on S².
        s: heat time(s) > 0, float or Tensor of shape (N,).
        generator: random generator on x0's device.

    Returns:
        Tensor, shape (N, 3), points on S², dtype of x0.
    """
    if x0.ndim != 2 or x0.shape[-1] != 3:
        raise ValueError(f"x0 must have shape (N, 3), got {tuple(x0.shape)}")
    s_t = _as_s(s, x0.shape[0], x0.device)
    return _move(x0, sample_angle_exact(s_t, generator), generator)


class HeatKernelSampler:
    """Tabulated inverse-CDF sampler of X_s | x0 on S² (fast; build once, reuse).

    Args:
        s_min: smallest tabulated heat time; below it the s_min row is used with θ = √s·r
            (relative error O(s_min) in θ, the Varadhan limit).
        s_max: largest tabulated heat time; above it the law is the uniform one
            (total-variation error ≤ 3e^{−s_max}/2).
        n_s: rows (log-spaced heat times).
        n_v: columns (Rayleigh quantile levels on [0, v_max]).
        v_max: largest level; levels with tail probability < exp(−v_max²/2) are clamped.
        device: device of the table (default CUDA if available).
        dtype: dtype of the table and of the interpolation.
    """

    def __init__(
        self,
        s_min: float = 1e-4,
        s_max: float = 20.0,
        n_s: int = 128,
        n_v: int = 512,
        v_max: float = 7.5,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if not 0 < s_min < s_max:
            raise ValueError(f"need 0 < s_min < s_max, got {s_min}, {s_max}")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.dtype = dtype
        self.s_min, self.s_max, self.v_max = float(s_min), float(s_max), float(v_max)
        self.n_s, self.n_v = int(n_s), int(n_v)
        self._ls0 = math.log(self.s_min)
        self._dls = (math.log(self.s_max) - self._ls0) / (self.n_s - 1)
        self._dv = self.v_max / (self.n_v - 1)
        key = (self.s_min, self.s_max, self.n_s, self.n_v, self.v_max)
        if key not in _TABLES:
            _TABLES[key] = _build_table(*key)
        self.table = _TABLES[key].to(device=self.device, dtype=dtype)  # (n_s, n_v)

    def quantile_angle(self, s: Tensor, u: Tensor) -> Tensor:
        """Tabulated inverse CDF: the angle θ with P(d(x0, X_s) ≤ θ) = u.

        Args:
            s: Tensor, shape (N,), heat times > 0 (table device).
            u: Tensor, shape (N,), levels in [0, 1).

        Returns:
            Tensor, shape (N,), angles in [0, π], the table's dtype.
        """
        s = s.to(self.dtype)
        v = torch.sqrt(-2 * torch.log1p(-u.to(self.dtype))).clamp(max=self.v_max)
        fi = ((torch.log(s) - self._ls0) / self._dls).clamp(0, self.n_s - 1 - 1e-6)
        fj = (v / self._dv).clamp(0, self.n_v - 1 - 1e-6)
        i0 = fi.long().clamp(max=self.n_s - 2)
        j0 = fj.long().clamp(max=self.n_v - 2)
        wi = fi - i0
        wj = fj - j0
        tab = self.table
        g = (1 - wi) * ((1 - wj) * tab[i0, j0] + wj * tab[i0, j0 + 1]) + wi * (
            (1 - wj) * tab[i0 + 1, j0] + wj * tab[i0 + 1, j0 + 1]
        )
        theta = (torch.sqrt(s) * v * torch.exp(g)).clamp(max=math.pi)
        uniform = torch.arccos(1 - 2 * u.to(self.dtype))
        return torch.where(s > self.s_max, uniform, theta)

    def sample_angle(self, s: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw θ = d(x0, X_s).

        Args:
            s: Tensor, shape (N,), heat times > 0 on the table's device.
            generator: random generator on that device.

        Returns:
            Tensor, shape (N,), angles in [0, π], the table's dtype.
        """
        u = torch.rand(s.shape, dtype=self.dtype, device=self.device, generator=generator)
        return self.quantile_angle(s, u)

    def sample(
        self, x0: Tensor, s: float | Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Sample X_s | X_0 = x0.

        Args:
            x0: Tensor, shape (N, 3), points on S² (on the table's device).
            s: heat time(s) > 0, float or Tensor of shape (N,).
            generator: random generator on the table's device.

        Returns:
            Tensor, shape (N, 3), points on S², dtype of x0.
        """
        if x0.ndim != 2 or x0.shape[-1] != 3:
            raise ValueError(f"x0 must have shape (N, 3), got {tuple(x0.shape)}")
        s_t = torch.as_tensor(s, device=self.device)
        s_t = s_t.expand(x0.shape[0]) if s_t.ndim == 0 else s_t.reshape(-1)
        require_positive(s_t, "heat time s must be > 0")
        theta = self.sample_angle(s_t, generator)
        xd = x0.to(self.dtype)
        z = torch.randn(xd.shape, dtype=self.dtype, device=self.device, generator=generator)
        z = z - (z * xd).sum(-1, keepdim=True) * xd
        u = z / torch.linalg.vector_norm(z, dim=-1, keepdim=True).clamp_min(1e-30)
        th = theta.unsqueeze(-1)
        return (torch.cos(th) * xd + torch.sin(th) * u).to(x0.dtype)

    __call__ = sample


_TABLES: dict[tuple[float, float, int, int, float], Tensor] = {}


def _build_table(
    s_min: float, s_max: float, n_s: int, n_v: int, v_max: float, n_fine: int = 240
) -> Tensor:
    """g = log(θ/(√s v)) on the (log s, v) grid from an accurate CDF (float64, CPU)."""
    ls0 = math.log(s_min)
    dls = (math.log(s_max) - ls0) / (n_s - 1)
    s = torch.exp(ls0 + dls * torch.arange(n_s, dtype=torch.float64))
    top = torch.minimum(torch.full_like(s, math.pi), 10.0 * s.sqrt())
    frac = torch.linspace(0, 1, n_fine + 1, dtype=torch.float64)
    edges = top[:, None] * frac  # (n_s, n_fine + 1)
    nodes_np, weights_np = composite_gauss_legendre(edges.numpy(), 4)
    nodes = torch.as_tensor(nodes_np)  # (n_s, n_fine, 4)
    s_nodes = s[:, None, None].expand_as(nodes)
    logp_nodes, _ = _logp_dlogp_theta(nodes.reshape(-1), s_nodes.reshape(-1))
    q_nodes = 2 * math.pi * torch.sin(nodes) * torch.exp(logp_nodes.reshape(nodes.shape))
    mass = (q_nodes * torch.as_tensor(weights_np)).sum(-1)  # (n_s, n_fine)
    total = mass.sum(-1, keepdim=True)
    # Survival S_j = P(θ ≥ edge_j), summed from the top (accurate in the tail).
    surv = torch.flip(torch.cumsum(torch.flip(mass, [-1]), -1), [-1]) / total
    surv = torch.cat([surv, torch.zeros_like(surv[:, :1])], dim=-1)
    v_edges = torch.sqrt(-2 * torch.log(surv.clamp_min(1e-300)))  # (n_s, n_fine + 1)
    s_edges = s[:, None].expand_as(edges)
    logp_edges, _ = _logp_dlogp_theta(edges.reshape(-1), s_edges.reshape(-1))
    q_edges = 2 * math.pi * torch.sin(edges) * torch.exp(logp_edges.reshape(edges.shape)) / total
    # dθ/dv = v S / q (limit at θ = 0: 1/sqrt(2π p_s(0))).
    p0 = torch.exp(logp_edges.reshape(edges.shape)[:, 0]) / total[:, 0]
    slope = v_edges * surv / q_edges.clamp_min(1e-300)
    slope[:, 0] = 1 / torch.sqrt(2 * math.pi * p0)
    levels = (v_max / (n_v - 1)) * torch.arange(n_v, dtype=torch.float64)
    theta = torch.empty(n_s, n_v, dtype=torch.float64)
    for i in range(n_s):
        vi = v_edges[i]
        finite = torch.isfinite(vi) & (surv[i] > 1e-290)
        vi_f, th_f, sl_f = vi[finite], edges[i][finite], slope[i][finite]
        j = torch.searchsorted(vi_f, levels).clamp(1, vi_f.numel() - 1) - 1
        v0, v1 = vi_f[j], vi_f[j + 1]
        dv = (v1 - v0).clamp_min(1e-300)
        t = ((levels - v0) / dv).clamp(0, 1)
        h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
        h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
        # Cubic Hermite in v with the exact slopes dθ/dv (slopes in the tail are large
        # but finite; clamp the result to the tabulated range).
        theta[i] = (
            h00 * th_f[j] + h10 * dv * sl_f[j] + h01 * th_f[j + 1] + h11 * dv * sl_f[j + 1]
        ).clamp(0, float(top[i]))
    ratio = theta[:, 1:] / (s.sqrt()[:, None] * levels[1:])
    g = torch.empty_like(theta)
    g[:, 1:] = torch.log(ratio)
    g[:, 0] = torch.log(slope[:, 0] / s.sqrt())
    return g
