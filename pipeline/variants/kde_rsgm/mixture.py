r"""A validation-weighted mixture of two models' densities (the ``kde_rsgm`` variant).

.. math::

    p(x) = w\, p_{\mathrm{kde}}(x) + (1 - w)\, p_{\mathrm{rsgm}}(x), \qquad
    w = \arg\min_{w \in \mathcal{G}} \mathrm{NLL}_{\mathrm{val}}(w),

per seed, on a grid :math:`\mathcal{G}` of [0, 1]. A mixture of two normalised densities is
normalised, its log-density is exact wherever its members' are (the kernel sum and the score
model's probability-flow ODE), and it is sampled exactly by drawing the member first. The
kernels place mass on known sites; the score model carries it along arcs and plate boundaries
where no event has happened yet: the weight says how much of each the validation events want.

The weights are fitted on the members' per-event validation log-densities that the evaluate
stage stores (``data/scores/<catalogue>/<model>.npz``), so fitting costs no new ODE solve.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["choose_weight", "mixture_logp"]


def mixture_logp(logp_a: np.ndarray, logp_b: np.ndarray, w: float) -> np.ndarray:
    """log(w p_a + (1 − w) p_b) per event, exact at w = 0 and w = 1 (float64)."""
    a = np.asarray(logp_a, dtype=np.float64)
    b = np.asarray(logp_b, dtype=np.float64)
    if w <= 0.0:
        return b.copy()
    if w >= 1.0:
        return a.copy()
    return np.logaddexp(a + math.log(w), b + math.log1p(-w))


def choose_weight(val_a: np.ndarray, val_b: np.ndarray, n_grid: int = 101) -> tuple[float, float]:
    """The grid weight of member a with the lowest validation NLL (ties: the smaller w).

    Args:
        val_a: Member a's validation log-densities, shape (M,), M >= 1.
        val_b: Member b's, same shape.
        n_grid: Grid points on [0, 1] (101: steps of 0.01).

    Returns:
        ``(w, val_nll)``.

    Raises:
        ValueError: On empty or mismatched arrays, or n_grid < 2.
    """
    a, b = np.asarray(val_a, np.float64), np.asarray(val_b, np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two equal non-empty validation arrays, got {a.shape}, {b.shape}")
    if n_grid < 2:
        raise ValueError(f"weight grid needs >= 2 points, got {n_grid}")
    best_w, best = 0.0, math.inf
    for w in np.linspace(0.0, 1.0, n_grid):
        nll = float(-mixture_logp(a, b, float(w)).mean())
        if nll < best - 1e-12:
            best_w, best = float(w), nll
    return best_w, best
