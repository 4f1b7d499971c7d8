"""Density queries: exact log-densities through the real ODE path, seed statistics, units."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from pipeline.geometry import Sphere
from pipeline.geometry.coords import latlon_to_xyz
from pipeline.query.density import (
    EARTH_RADIUS_KM,
    DensityTable,
    ModelNotFoundError,
    query_density,
    seed_dirs,
)
from pipeline.query.render import density_csv, density_text
from pipeline.sde.heat_kernel import heat_kernel_logp, heat_kernel_score
from pipeline.sde.schedules import LinearBeta
from pipeline.variants import TrainedModel
from tests.errors import raises_naming

SPHERE = Sphere(2)
# s(T) ≈ 10: the uniform base's prior mismatch (~3e^{-s}) is far below the tolerances below.
SCHED = LinearBeta(beta_0=1e-3, beta_1=20.0, T=1.0)
CENTER = torch.tensor([0.0, 0.0, 1.0])
T0 = 1e-3  # evaluation.log_density's data-side start time


def _exact_model(s0: float) -> TrainedModel:
    """Data ~ heat kernel p_{s0}(.|north pole): p_t is the kernel at s0 + s(t), score exact."""

    def score(x: Tensor, t: Tensor) -> Tensor:
        return heat_kernel_score(x, CENTER.to(x), s0 + SCHED.heat_time(t))

    return TrainedModel("rsgm", nn.Identity(), score, SPHERE, SCHED, {}, torch.device("cpu"))


def _zero_model() -> TrainedModel:
    return TrainedModel(
        "rsgm", nn.Identity(), lambda x, t: 0.0 * x, SPHERE, SCHED, {}, torch.device("cpu")
    )


def test_uniform_model_gives_one_over_the_earths_area() -> None:
    lat = np.array([0.0, 45.0, -89.0])
    lon = np.array([0.0, 100.0, -170.0])
    table = query_density({0: _zero_model()}, lat, lon)
    np.testing.assert_allclose(table.log_density, -math.log(4 * math.pi), atol=1e-6)
    area = 4 * math.pi * EARTH_RADIUS_KM**2
    np.testing.assert_allclose(table.density_per_km2 * area, 1.0, rtol=1e-5)
    np.testing.assert_array_equal(table.log_density_sd, 0.0)  # one seed: no spread


def test_seed_mean_and_spread_equal_the_exact_densities_statistics() -> None:
    s0 = (0.05, 0.1, 0.2)
    lat = np.array([89.0, 80.0, 70.0, 60.0])
    lon = np.array([0.0, 30.0, -60.0, 170.0])
    models = {k: _exact_model(s) for k, s in zip((0, 3, 4), s0, strict=True)}
    table = query_density(models, lat, lon)
    x = torch.as_tensor(latlon_to_xyz(lat, lon), dtype=torch.float64)
    exact = np.stack(
        [heat_kernel_logp(x, CENTER.double(), s + SCHED.heat_time(T0)).numpy() for s in s0]
    )
    assert table.seeds == (0, 3, 4)
    assert np.abs(table.seed_logp - exact).max() < 2e-3
    # the seeds differ by tenths of nats to nats here, so the spread check is not vacuous
    assert exact.std(axis=0, ddof=1).min() > 0.2
    np.testing.assert_allclose(table.log_density, exact.mean(axis=0), atol=2e-3)
    np.testing.assert_allclose(table.log_density_sd, exact.std(axis=0, ddof=1), atol=3e-3)
    np.testing.assert_allclose(
        table.density_per_km2, np.exp(exact.mean(axis=0)) / EARTH_RADIUS_KM**2, rtol=3e-3
    )


def test_renderings_hold_every_column_and_point() -> None:
    table = DensityTable(
        lat=np.array([10.0, -20.5]),
        lon=np.array([0.0, 179.25]),
        seeds=(0, 1),
        seed_logp=np.array([[-1.0, -3.0], [-2.0, -5.0]]),
    )
    text = density_csv(table, "a comment")
    lines = text.splitlines()
    assert lines[0] == "# a comment"
    assert lines[1] == (
        "lat,lon,log_density,log_density_sd,density_per_km2,log_density_seed0,log_density_seed1"
    )
    sd = math.sqrt(0.5)
    assert (
        lines[2]
        == f"10,0,-1.500000,{sd:.6f},{math.exp(-1.5) / EARTH_RADIUS_KM**2:.6g},-1.000000,-2.000000"
    )
    assert lines[3].startswith("-20.5,179.25,-4.000000,1.414214,")
    shown = density_text(table, "title").splitlines()
    assert shown[0] == "title" and len(shown) == 4 and "-4.000" in shown[3]


def test_seed_dirs_find_trained_seeds_and_say_how_to_get_missing_ones(tmp_path: Path) -> None:
    for seed in (0, 2, 10):
        (tmp_path / "volcano" / "rsgm" / f"seed{seed}").mkdir(parents=True)
        (tmp_path / "volcano" / "rsgm" / f"seed{seed}" / "model.json").write_text("{}")
    (tmp_path / "volcano" / "rsgm" / "seed5").mkdir()  # no model card: not trained
    assert list(seed_dirs(tmp_path, "volcano", "rsgm")) == [0, 2, 10]
    with pytest.raises(ModelNotFoundError) as err:
        seed_dirs(tmp_path, "flood", "rsgm")
    assert "dvc repro train@flood-rsgm" in str(err.value)  # no `dvc pull`: no remote on a clone
    with raises_naming(ModelNotFoundError, "dvc repro derive@flood`"):
        seed_dirs(tmp_path, "flood", "ambient_rb_corrected")
    with raises_naming(ModelNotFoundError, "dvc repro ensemble@flood-kde_rsgm`"):
        seed_dirs(tmp_path, "flood", "kde_rsgm")
    with raises_naming(ValueError, "'rsgm2'"):
        seed_dirs(tmp_path, "volcano", "rsgm2")
