r"""The S² heat-kernel score from a (log s, θ) table: the DSM target at a tenth of the cost.

The exact target :math:`\nabla_x \log p_s(x \mid x_0) = \partial_c \log p_s(\theta)\,
P_x(x_0 - x)` (:func:`pipeline.sde.heat_kernel.heat_kernel_score`) evaluates an integral or a
series per row; its scalar factor depends on (θ, s) only. Tabulated here is the bounded,
smooth

.. math::

    h(\theta, s) = s\,\partial_c \log p_s(\theta)\,\frac{\sin\theta}{\theta}
    \qquad (h \to 1 \text{ as } s \to 0,\ \text{Varadhan}; \ h \to 0 \text{ as } \theta \to \pi),

on a grid uniform in log s and in θ ∈ [0, π], and interpolated bilinearly; the target is then
:math:`(h / s)\,(\theta / \sin\theta)\,P_x(x_0 - x)`, whose norm is hθ/s. Rows with s outside
the table fall back to the closed form, so the table only changes speed where it is built.

Accuracy (``benchmarks/tabulated_target.py``, 257 × 1025, the default training draws): the
target vector's relative error has median 8e-8, 99th percentile 2.5e-4 and maximum 9.5e-4;
the RMS of √s·error, the variance-weighted loss's scale, is 3.1e-5 against a target of
size ~1. Building the table takes about 1.4 s on one CPU thread.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pipeline.devices import checks_are_free, require_positive
from pipeline.sde.heat_kernel import _logp_dlogp_theta, heat_kernel_score

#: Grid sizes measured in ``benchmarks/tabulated_target.py``.
N_LOG_S = 257
N_THETA = 1025


class HeatKernelScoreTable:
    """:func:`heat_kernel_score` on S² by bilinear interpolation of h(θ, s) (module docstring).

    Args:
        s_min: Smallest heat time of the table (> 0).
        s_max: Largest heat time of the table (> s_min).
        n_log_s: Grid points in log s.
        n_theta: Grid points in θ ∈ [0, π].
        device: Device of the table (float64).

    Raises:
        ValueError: On a bad range or grid size.
    """

    def __init__(
        self,
        s_min: float,
        s_max: float,
        *,
        n_log_s: int = N_LOG_S,
        n_theta: int = N_THETA,
        device: torch.device | str | None = None,
    ) -> None:
        if not (0.0 < s_min < s_max) or not math.isfinite(s_max):
            raise ValueError(f"need 0 < s_min < s_max < inf, got s_min={s_min}, s_max={s_max}")
        if n_log_s < 2 or n_theta < 2:
            raise ValueError(
                f"need at least 2 grid points, got n_log_s={n_log_s}, n_theta={n_theta}"
            )
        self.s_min, self.s_max = float(s_min), float(s_max)
        dev = torch.device(device) if device is not None else torch.device("cpu")
        self._log_s0 = math.log(self.s_min)
        self._d_log_s = (math.log(self.s_max) - self._log_s0) / (n_log_s - 1)
        self._d_theta = math.pi / (n_theta - 1)
        log_s = torch.linspace(self._log_s0, math.log(self.s_max), n_log_s, dtype=torch.float64)
        # θ = 0 and π themselves are limits; 1e-9 inside them is exact to ~1e-18.
        theta = torch.linspace(0.0, math.pi, n_theta, dtype=torch.float64)
        theta = theta.clamp(1e-9, math.pi - 1e-9)
        s_grid, th_grid = torch.meshgrid(log_s.exp(), theta, indexing="ij")
        s_flat, th_flat = s_grid.reshape(-1), th_grid.reshape(-1)
        dl = _logp_dlogp_theta(th_flat, s_flat)[1]
        h = s_flat * dl * torch.sin(th_flat) / th_flat
        self.table = h.reshape(n_log_s, n_theta).to(dev)

    def h(self, theta: Tensor, s: Tensor) -> Tensor:
        """Bilinear h(θ, s) in float64; (θ, s) of one shape, s inside the table.

        Args:
            theta: Tensor, shape (N,), angles in [0, π].
            s: Tensor, shape (N,), heat times in [s_min, s_max].

        Returns:
            Tensor, shape (N,), float64.
        """
        n_s, n_th = self.table.shape
        fs = (s.to(torch.float64).log() - self._log_s0) / self._d_log_s
        ft = theta.to(torch.float64) / self._d_theta
        i = fs.floor().clamp(0, n_s - 2).long()
        j = ft.floor().clamp(0, n_th - 2).long()
        a = (fs - i).clamp(0.0, 1.0)
        b = (ft - j).clamp(0.0, 1.0)
        tab = self.table
        return (1 - a) * ((1 - b) * tab[i, j] + b * tab[i, j + 1]) + a * (
            (1 - b) * tab[i + 1, j] + b * tab[i + 1, j + 1]
        )

    def __call__(self, x: Tensor, x0: Tensor, s: Tensor) -> Tensor:
        """∇_x log p_s(x | x0), like :func:`heat_kernel_score` (rows off the table: exactly).

        Args:
            x: Tensor, shape (B, 3), points on S².
            x0: Tensor, shape (B, 3), centres.
            s: Tensor, shape (B,), heat times > 0.

        Returns:
            Tensor, shape (B, 3), tangent vectors at x, dtype of x.

        Raises:
            ValueError: On mismatched shapes, or s <= 0 (CPU).

        On a CPU every row is checked and rows off the table take the closed form. On another
        device neither happens (each would be a host synchronisation per training step): s
        must lie inside the table, as :func:`pipeline.transition.make_score_target` ensures by
        building it over the time sampler's whole range.
        """
        if x.shape != x0.shape or x.ndim != 2 or x.shape[-1] != 3 or s.shape != x.shape[:1]:
            raise ValueError(
                f"need x, x0 of shape (B, 3) and s of shape (B,), got {tuple(x.shape)}, "
                f"{tuple(x0.shape)}, {tuple(s.shape)}"
            )
        s_d = s.to(torch.float64)
        require_positive(s_d, "heat time s must be > 0")
        xd, x0d = x.to(torch.float64), x0.to(torch.float64)
        diff = x0d - xd
        tangent = diff - (xd * diff).sum(-1, keepdim=True) * xd
        theta = 2 * torch.atan2(diff.norm(dim=-1), (xd + x0d).norm(dim=-1))
        sinc_inv = torch.where(theta > 1e-12, theta / torch.sin(theta).clamp_min(1e-300), 1.0)
        factor = self.h(theta, s_d) * sinc_inv / s_d
        out = (factor.unsqueeze(-1) * tangent).to(x.dtype)
        if checks_are_free(s_d.device):
            outside = (s_d < self.s_min) | (s_d > self.s_max)
            if bool(outside.any()):
                out[outside] = heat_kernel_score(x[outside], x0[outside], s[outside])
        return out
