"""The geometry-stage experiments at tiny sizes, and the stage end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from pipeline.ambient.experiments import (
    curvature_coefficients,
    langevin_equilibria,
    variance_collapse,
)
from stages import geometry as stage


def test_variance_collapse_slope_and_limit() -> None:
    res = variance_collapse(kappa=2.0, n_sigma=5, sigma_max=0.1, n_mc=2000, n_nodes=48)
    assert res["slope_t_sq_small_sigma"] == pytest.approx(-2.0, abs=0.02)
    assert res["sigma2_t_sq_at_sigma_min"] == pytest.approx(2.0, abs=0.01)  # d/σ²
    target = 2 * 2.0 / math.tanh(2.0) - 2
    assert res["r_sq_extrapolated_to_0"] == pytest.approx(target, abs=1e-4)
    assert all(m == pytest.approx(1.0, abs=1e-9) for m in res["mass"])


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


@pytest.mark.usefixtures("prefect_harness")
def test_stage_end_to_end(tmp_path: Path) -> None:
    params = {
        "geometry": {
            "torch_threads": 1,
            "seed": 0,
            "variance_collapse": {"n_sigma": 4, "n_mc": 500, "n_nodes": 32},
            "langevin": {
                "dims": [2],
                "settings": [[2.0, 0.3]],
                "step_sizes": [0.02, 0.01],
                "n_chains": 200,
                "t_burn": 0.2,
                "t_avg": 0.2,
                "chebyshev_degree": 32,
            },
            "curvature": {
                "sphere_dims": [2],
                "torus_dims": [2],
                "torus_sigmas": [0.02, 0.04],
                "n_points": 4,
                "n_grid": 41,
                "sphere_sigmas": [0.02, 0.04],
            },
            "regression": {
                "n_samples": [64, 128],
                "reps": 1,
                "hidden": 8,
                "depth": 1,
                "steps": 20,
                "eval_every": 10,
                "n_test": 100,
            },
        }
    }
    pfile = tmp_path / "params.yaml"
    pfile.write_text(yaml.safe_dump(params))
    out = tmp_path / "geo"
    assert stage.main(["--params", str(pfile), "--out", str(out)]) == 0
    for name in ("variance_collapse", "langevin", "curvature", "regression", "summary"):
        json.loads((out / f"{name}.json").read_text())
    for png in (
        "variance_collapse",
        "langevin_equilibria",
        "curvature_coefficient",
        "rb_regression",
    ):
        assert (out / f"{png}.png").stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert "S2_kappa2_sigma0.300" in summary["langevin"]


@pytest.mark.usefixtures("prefect_harness")
def test_stage_rejects_unknown_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pfile = tmp_path / "params.yaml"
    pfile.write_text(
        yaml.safe_dump(
            {
                "geometry": {
                    "variance_collapse": {},
                    "langevin": {},
                    "curvature": {},
                    "regression": {},
                    "bogus": {},
                }
            }
        )
    )
    assert stage.main(["--params", str(pfile), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "geometry: error: " in err and "unknown ['bogus']" in err
