"""The geometry stage end to end at tiny sizes, and its params checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stages import geometry as stage


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
