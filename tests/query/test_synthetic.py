"""Synthetic catalogues: the seeds' mixture, reproducibility, CSV and GeoParquet files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy import stats
from torch import nn

from pipeline.geometry import Sphere
from pipeline.query.synthetic import SyntheticCatalogue, sample_catalogue, write_catalogue
from pipeline.sde.schedules import LinearBeta
from pipeline.variants import TrainedModel
from tests.errors import raises_naming

SCHED = LinearBeta(beta_0=1e-3, beta_1=5.0, T=1.0)


def _uniform_model() -> TrainedModel:
    # Zero score: the reverse walk starts uniform and stays uniform (an exact law to test).
    return TrainedModel(
        "rsgm", nn.Identity(), lambda x, t: 0.0 * x, Sphere(2), SCHED, {}, torch.device("cpu")
    )


def test_mixture_is_reproducible_and_draws_the_models_law() -> None:
    models = {0: _uniform_model(), 1: _uniform_model(), 4: _uniform_model()}
    a = sample_catalogue(models, 3000, seed=7, n_steps=10)
    b = sample_catalogue(models, 3000, seed=7, n_steps=10)
    c = sample_catalogue(models, 3000, seed=8, n_steps=10)
    np.testing.assert_array_equal(a.lat, b.lat)
    np.testing.assert_array_equal(a.model_seed, b.model_seed)
    assert not np.array_equal(a.lat, c.lat)
    # equal-weight mixture: each seed's share is binomial(3000, 1/3)
    counts = np.array([(a.model_seed == s).sum() for s in (0, 1, 4)])
    assert counts.sum() == 3000 and np.all(np.abs(counts - 1000) < 4 * np.sqrt(3000 / 4.5))
    # uniform on S²: sin(lat) ~ U(-1, 1), lon ~ U(-180, 180)
    assert stats.kstest(np.sin(np.radians(a.lat)), "uniform", args=(-1, 2)).pvalue > 1e-3
    assert stats.kstest(a.lon, "uniform", args=(-180, 360)).pvalue > 1e-3
    assert a.lon.min() >= -180 and a.lon.max() < 180


def test_bad_requests() -> None:
    with raises_naming(ValueError, "-n"):
        sample_catalogue({0: _uniform_model()}, 0, seed=0, n_steps=5)
    with raises_naming(ValueError, "--seed", "-1"):
        sample_catalogue({0: _uniform_model()}, 5, seed=-1, n_steps=5)


def _catalogue() -> SyntheticCatalogue:
    return SyntheticCatalogue(
        lat=np.array([10.0, -45.1234567]),
        lon=np.array([-179.5, 20.0]),
        model_seed=np.array([0, 3]),
    )


def test_csv_file(tmp_path: Path) -> None:
    out = write_catalogue(_catalogue(), tmp_path / "sub" / "synth.csv", comment="from x\nseed 1")
    assert out.read_text() == (
        "# from x\n# seed 1\nlat,lon,model_seed\n10.000000,-179.500000,0\n-45.123457,20.000000,3\n"
    )
    assert [p.name for p in out.parent.iterdir()] == ["synth.csv"]  # no temporary left


def test_geoparquet_file_has_points_in_wgs84(tmp_path: Path) -> None:
    import geopandas as gpd

    out = write_catalogue(_catalogue(), tmp_path / "synth.parquet")
    frame = gpd.read_parquet(out)
    assert frame.crs.to_epsg() == 4326
    np.testing.assert_array_equal(frame.geometry.x, [-179.5, 20.0])  # x = lon
    np.testing.assert_array_equal(frame.geometry.y, [10.0, -45.1234567])
    assert list(frame["model_seed"]) == [0, 3]


def test_unsupported_suffix(tmp_path: Path) -> None:
    with raises_naming(ValueError, "a.xlsx", "'.xlsx'"):
        write_catalogue(_catalogue(), tmp_path / "a.xlsx")
