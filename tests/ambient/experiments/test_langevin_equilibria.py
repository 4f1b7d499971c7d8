"""The Langevin-equilibria experiment (4b), quadrature only."""

from __future__ import annotations

import math

import pytest

from pipeline.ambient.experiments.langevin_equilibria import langevin_equilibria


def test_langevin_quadrature_ratios_reproduce_first_order_model() -> None:
    res = langevin_equilibria(
        dims=(6,), settings=((2.0, 1 / math.sqrt(12)),), simulate=False, chebyshev_degree=48
    )
    rec = res["records"][0]
    q = rec["quadrature"]
    # the seed's 17 % on S⁶ is the first-order extrinsic factor 1 + (1 − d/2)σ² = 5/6
    assert q["first_order_raw"]["kappa_ratio"] == pytest.approx(5 / 6, rel=1e-6)
    assert q["rb"]["kappa_eff"] < q["rb_corrected"]["kappa_eff"] < q["true"]["kappa_eff"]
    assert q["heat"]["mean"] == pytest.approx(q["heat"]["mean_closed_form"], abs=1e-10)
