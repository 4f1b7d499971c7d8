"""Large synthetic samples stream in chunks: bounded memory, progress, deterministic seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipeline.geometry import Sphere
from pipeline.query.synthetic import (
    sample_catalogue,
    sample_chunks,
    write_catalogue,
    write_samples,
)
from pipeline.sde.schedules import LinearBeta
from pipeline.variants import TrainedModel

SCHED = LinearBeta(beta_0=1e-3, beta_1=5.0, T=1.0)


def _models() -> dict[int, TrainedModel]:
    def model() -> TrainedModel:
        return TrainedModel(
            "rsgm", nn.Identity(), lambda x, t: 0.0 * x, Sphere(2), SCHED, {}, torch.device("cpu")
        )

    return {0: model(), 2: model()}


def test_chunked_csv_is_deterministic_with_a_progress_call_per_chunk(tmp_path: Path) -> None:
    models = _models()
    calls: list[tuple[int, int]] = []
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_samples(
        models, 25, 3, 5, a, "note", chunk_size=10, progress=lambda d, n: calls.append((d, n))
    )
    write_samples(models, 25, 3, 5, b, "note", chunk_size=10)
    assert calls == [(10, 25), (20, 25), (25, 25)]
    assert a.read_bytes() == b.read_bytes()
    table = pd.read_csv(a, comment="#")
    assert list(table.columns) == ["lat", "lon", "model_seed"] and len(table) == 25
    assert set(table["model_seed"]) <= {0, 2}
    # chunk 0 is the in-memory draw of the same seed; later chunks are other events
    first = sample_catalogue(models, 10, 3, 5)
    np.testing.assert_allclose(table["lat"].to_numpy()[:10], first.lat, atol=1e-6)
    assert not np.allclose(table["lat"].to_numpy()[10:20], first.lat, atol=1e-3)
    sizes = [len(c.lat) for c in sample_chunks(models, 25, 3, 5, chunk_size=10)]
    assert sizes == [10, 10, 5]


def test_one_chunk_equals_the_single_draw(tmp_path: Path) -> None:
    models = _models()
    streamed, single = tmp_path / "s.csv", tmp_path / "one.csv"
    write_samples(models, 12, 7, 5, streamed, "c", chunk_size=12)
    write_catalogue(sample_catalogue(models, 12, 7, 5), single, "c")
    assert streamed.read_bytes() == single.read_bytes()


def test_chunked_geoparquet_reads_back(tmp_path: Path) -> None:
    import geopandas as gpd

    models = _models()
    out = write_samples(models, 23, 1, 5, tmp_path / "x.parquet", chunk_size=8)
    frame = gpd.read_parquet(out)
    assert len(frame) == 23 and frame.crs.to_epsg() == 4326
    np.testing.assert_allclose(frame.geometry.x, frame["lon"])
    np.testing.assert_allclose(frame.geometry.y, frame["lat"])
    csv_path = write_samples(models, 23, 1, 5, tmp_path / "x.csv", chunk_size=8)
    np.testing.assert_allclose(pd.read_csv(csv_path, comment="#")["lat"], frame["lat"], atol=1e-6)
