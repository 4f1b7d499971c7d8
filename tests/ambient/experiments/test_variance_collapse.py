"""The variance-collapse experiment (4a) at tiny sizes."""

from __future__ import annotations

import math

import pytest

from pipeline.ambient.experiments.variance_collapse import (
    HEADLINE_KEYS,
    headline,
    variance_collapse,
)


def test_variance_collapse_slope_and_limit() -> None:
    res = variance_collapse(kappa=2.0, n_sigma=5, sigma_max=0.1, n_mc=2000, n_nodes=48)
    assert res["slope_t_sq_small_sigma"] == pytest.approx(-2.0, abs=0.02)
    assert res["sigma2_t_sq_at_sigma_min"] == pytest.approx(2.0, abs=0.01)  # d/σ²
    target = 2 * 2.0 / math.tanh(2.0) - 2
    assert res["r_sq_extrapolated_to_0"] == pytest.approx(target, abs=1e-4)
    assert all(m == pytest.approx(1.0, abs=1e-9) for m in res["mass"])


def test_headline_is_the_headline_keys_in_order() -> None:
    res = variance_collapse(n_sigma=3, n_mc=200, n_nodes=16)
    assert list(headline(res)) == list(HEADLINE_KEYS)
    assert all(headline(res)[k] == res[k] for k in HEADLINE_KEYS)
