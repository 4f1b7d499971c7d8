"""Synthetic catalogues drawn from a trained model, written as CSV or GeoParquet.

The seeds' models are an equal-weight mixture: the number of events from each seed is
multinomial, then each seed's model samples by the reverse geodesic random walk
(:func:`pipeline.evaluation.generate_samples`). Everything random derives from one integer
(``numpy.random.SeedSequence``), so the same seed, models and step count give the same file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipeline.atomic import atomic_write
from pipeline.evaluation import TrainedModel, generate_samples
from pipeline.geometry.coords import xyz_to_latlon

__all__ = ["FORMATS", "SyntheticCatalogue", "output_format", "sample_catalogue", "write_catalogue"]

FORMATS = {".csv": "csv", ".parquet": "geoparquet", ".geoparquet": "geoparquet"}
"""Output format by file suffix."""


def output_format(path: str | Path) -> str:
    """``"csv"`` or ``"geoparquet"`` by the file's suffix.

    Raises:
        ValueError: An unsupported suffix (one line naming the file and the choices).
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"{path}: unsupported output format {path.suffix!r} (use {', '.join(FORMATS)})"
        )
    return fmt


@dataclass(frozen=True)
class SyntheticCatalogue:
    """Events drawn from a model.

    Attributes:
        lat: Latitudes, degrees, shape (N,).
        lon: Longitudes, degrees in [-180, 180), shape (N,).
        model_seed: The training seed whose model drew each event, shape (N,).
    """

    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    model_seed: NDArray[np.int64]


def sample_catalogue(
    models: dict[int, TrainedModel], n: int, seed: int, n_steps: int
) -> SyntheticCatalogue:
    """Draw ``n`` events from the equal-weight mixture of the seeds' models.

    Args:
        models: ``{training seed: TrainedModel}``.
        n: Number of events (>= 1).
        seed: Random seed (>= 0): same seed, same events.
        n_steps: Steps of the reverse geodesic random walk.

    Returns:
        The :class:`SyntheticCatalogue`, events in a random order.
    """
    if n < 1:
        raise ValueError(f"-n must be at least 1, got {n}")
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")
    if not models:
        raise ValueError("no models to sample from")
    root = np.random.SeedSequence(seed)
    mix_seq, *model_seqs = root.spawn(len(models) + 1)
    rng = np.random.default_rng(mix_seq)
    counts = rng.multinomial(n, np.full(len(models), 1.0 / len(models)))
    xyz, owner = [], []
    for (train_seed, model), count, seq in zip(models.items(), counts, model_seqs, strict=True):
        if count == 0:
            continue
        torch_seed = int(seq.generate_state(1, dtype=np.uint32)[0])
        xyz.append(generate_samples(model, int(count), n_steps, seed=torch_seed))
        owner.append(np.full(int(count), train_seed, dtype=np.int64))
    order = rng.permutation(n)
    lat, lon = xyz_to_latlon(np.concatenate(xyz)[order])
    return SyntheticCatalogue(
        lat=np.asarray(lat, dtype=np.float64),
        lon=np.asarray(lon, dtype=np.float64),
        model_seed=np.concatenate(owner)[order],
    )


def write_catalogue(catalogue: SyntheticCatalogue, path: str | Path, comment: str = "") -> Path:
    """Write a synthetic catalogue atomically; the format follows the suffix.

    ``.csv``: header ``lat,lon,model_seed`` (after ``# comment`` lines, if given), 6 decimals
    (about 0.1 m). ``.parquet`` / ``.geoparquet``: GeoParquet of point geometries in
    EPSG:4326 (lon, lat order) with the same columns.

    Args:
        catalogue: The events.
        path: Output file.
        comment: Provenance text written as ``#`` lines above the CSV header (CSV only).

    Returns:
        The path written.

    Raises:
        ValueError: An unsupported suffix.
    """
    path = Path(path)
    if output_format(path) == "csv":

        def write_csv(tmp: Path) -> None:
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                for line in comment.splitlines():
                    fh.write(f"# {line}\n")
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(["lat", "lon", "model_seed"])
                for a, b, s in zip(catalogue.lat, catalogue.lon, catalogue.model_seed, strict=True):
                    writer.writerow([f"{a:.6f}", f"{b:.6f}", int(s)])

        return atomic_write(path, write_csv, suffix=".csv")

    import geopandas as gpd

    frame = gpd.GeoDataFrame(
        {"lat": catalogue.lat, "lon": catalogue.lon, "model_seed": catalogue.model_seed},
        geometry=gpd.points_from_xy(catalogue.lon, catalogue.lat),
        crs="EPSG:4326",
    )

    def write_parquet(tmp: Path) -> None:
        frame.to_parquet(tmp, index=False)

    return atomic_write(path, write_parquet, suffix=".parquet")
