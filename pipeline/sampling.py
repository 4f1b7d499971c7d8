"""Generation by the time-reversed SDE: the reverse geodesic random walk (RSGM Algorithm 1)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from pipeline.sde.process import ForwardProcess
from pipeline.stopping import check_stop

ScoreFn = Callable[[Tensor, Tensor], Tensor]


@torch.no_grad()
def reverse_geodesic_random_walk(
    score_fn: ScoreFn,
    process: ForwardProcess,
    x_T: Tensor | int,
    n_steps: int,
    generator: torch.Generator | None = None,
    *,
    eps: float = 1e-3,
    corrector_steps: int = 0,
    corrector_snr: float = 0.1,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Sample by discretising the reverse SDE of a forward process (RSGM Algorithm 1).

    The reverse SDE is :math:`dY = \beta(s_\theta - b)\,dt + \sqrt\beta\,dB^M` in reverse time.

    With times :math:`T = t_0 > t_1 > \dots > t_N = \mathrm{eps}` (uniform grid),
    :math:`\gamma_k = t_k - t_{k+1}` and :math:`\beta_k = \beta(t_k)`, each step is the
    geodesic random walk :math:`Y \leftarrow \exp_Y(\gamma_k\beta_k (s_\theta(Y, t_k) - b(Y)) +
    \sqrt{\gamma_k\beta_k} Z)`, Z a standard Gaussian in :math:`T_Y M` and b the forward
    process's heat drift (0 for Brownian motion), followed by a re-projection onto M. The
    optional Langevin corrector runs ``corrector_steps`` steps of
    :math:`Y \leftarrow \exp_Y(\delta s_\theta(Y, t_{k+1}) + \sqrt{2\delta} Z)` after each
    predictor step, with :math:`\delta = 2 (r |Z| / |s_\theta|)^2` averaged over the batch
    (r = ``corrector_snr``, Song et al. 2021).

    Args:
        score_fn: ``score_fn(x (B, D), t (B,)) -> (B, D)`` tangent vectors.
        process: The forward process (its ``T`` is the start time).
        x_T: Either starting points, Tensor shape (B, D) on M, or a number n of points drawn from
            the process's reference law with ``generator``.
        n_steps: Number of predictor steps (>= 1).
        generator: Random generator (on ``device``).
        eps: Final time (the model is trained on [eps, T]).
        corrector_steps: Langevin corrector steps per predictor step (0 disables).
        corrector_snr: Signal-to-noise ratio r of the corrector.
        dtype: Dtype when drawing the start points.
        device: Device when drawing the start points.

    Returns:
        Tensor, shape (B, D), samples on M (re-projected, on M to rounding error).

    Raises:
        ValueError: If ``n_steps < 1`` or ``eps`` is not in [0, T).
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    T = process.T
    if not 0.0 <= eps < T:
        raise ValueError(f"need 0 <= eps < T, got eps={eps}, T={T}")
    manifold = process.manifold
    if isinstance(x_T, int):
        y = process.sample_reference(x_T, dtype=dtype, device=device, generator=generator)
    else:
        y = manifold.projx(x_T)
    times = torch.linspace(T, eps, n_steps + 1, dtype=torch.float64)
    b = y.shape[0]
    for k in range(n_steps):
        check_stop("sampler")
        t_k, t_next = float(times[k]), float(times[k + 1])
        gamma = t_k - t_next
        t_vec = torch.full((b,), t_k, dtype=y.dtype, device=y.device)
        beta = float(process.schedule.beta(torch.tensor(t_k, dtype=torch.float64)))
        # γβ(s − b): the reverse SDE's step; for Brownian motion b = 0 and this is γβ s exactly.
        drift = (gamma * beta) * (score_fn(y, t_vec) - process.heat_drift(y))
        z = manifold.random_normal_tangent(y, generator)
        y = manifold.projx(manifold.expmap(y, drift + math.sqrt(gamma * beta) * z))
        if corrector_steps > 0:
            t_c = torch.full((b,), t_next, dtype=y.dtype, device=y.device)
            for _ in range(corrector_steps):
                score = score_fn(y, t_c)
                z = manifold.random_normal_tangent(y, generator)
                z_norm = z.pow(2).sum(-1).sqrt().mean()
                s_norm = score.pow(2).sum(-1).sqrt().mean().clamp_min(1e-12)
                delta = 2.0 * float((corrector_snr * z_norm / s_norm) ** 2)
                y = manifold.projx(manifold.expmap(y, delta * score + math.sqrt(2.0 * delta) * z))
    return y
