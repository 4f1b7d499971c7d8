"""The curvature experiment (1, 4c) at tiny sizes."""

from __future__ import annotations

import pytest

from pipeline.ambient.experiments.curvature_coefficients import curvature_coefficients


def test_flat_torus_coefficient_is_measured_as_one_half() -> None:
    res = curvature_coefficients(
        sphere_dims=(2, 6),
        torus_dims=(2,),
        torus_sigmas=(0.01, 0.02, 0.04),
        n_points=8,
        n_grid=81,
        sphere_sigmas=(0.01, 0.02),
    )
    assert res["flat_torus_measured"]["c_extrapolated"] == pytest.approx(0.5, abs=2e-3)
    assert res["sphere_measured"]["sphere_6"]["c_extrapolated"] == pytest.approx(-2.0, abs=5e-3)
    assert res["operators"]["flat_torus_2"]["max_abs_error"] < 1e-10
