"""The log-log slope fit shared by the seed-002 experiments."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["loglog_slope"]


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Slope of the least-squares line through (log x, log y).

    Args:
        x: Positive abscissae.
        y: Positive ordinates, one per ``x``.

    Returns:
        The fitted exponent p of :math:`y \\approx C x^p`.
    """
    return float(np.polyfit(np.log(np.asarray(x)), np.log(np.asarray(y)), 1)[0])
