"""The log-log slope fit of the experiments."""

from __future__ import annotations

import pytest

from pipeline.ambient.experiments.fits import loglog_slope


def test_loglog_slope_of_a_power_law() -> None:
    x = [0.01, 0.02, 0.04, 0.08]
    assert loglog_slope(x, [3.0 * v**-2 for v in x]) == pytest.approx(-2.0, abs=1e-12)
