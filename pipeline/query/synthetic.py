"""Synthetic catalogues drawn from a trained model, written as CSV or GeoParquet.

The seeds' models are an equal-weight mixture: the number of events from each seed is
multinomial, then each seed's model samples by its exact sampler where it has one (``kde``),
else by the reverse geodesic random walk (:func:`pipeline.evaluation.generate_samples`;
:func:`sampler_description` says which in the file's header). Everything random derives
from one integer (``numpy.random.SeedSequence``), so the same seed, models and step count
give the same file.

**Large samples stream** (:func:`write_samples`): events are drawn and written
:data:`CHUNK_SIZE` (100 000) at a time, so memory stays bounded whatever ``n`` is. Chunk 0 is
drawn exactly as :func:`sample_catalogue` draws (``SeedSequence(seed)``), so any ``n`` up to
one chunk gives the same file as before; chunk ``k >= 1`` draws its ``min(CHUNK_SIZE, rest)``
events from ``SeedSequence(seed, spawn_key=(_CHUNK_KEY, k))`` (:func:`chunk_seed_sequence`),
independent of the other chunks. A file is therefore deterministic per (seed, models, steps,
chunk size), but a larger ``n`` is not a single draw of ``n``: its events are shuffled within
each chunk only, and its first ``CHUNK_SIZE`` events are those of ``-n CHUNK_SIZE``. Each
chunk is still an equal-weight mixture (a sum of independent multinomial counts is
multinomial), so the law of the file is the same.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from pipeline.atomic import atomic_write
from pipeline.evaluation import generate_samples
from pipeline.geometry.coords import xyz_to_latlon
from pipeline.variants import TrainedModel

__all__ = [
    "CHUNK_SIZE",
    "FORMATS",
    "SyntheticCatalogue",
    "chunk_seed_sequence",
    "output_format",
    "sample_catalogue",
    "sampler_description",
    "sample_chunks",
    "write_catalogue",
    "write_samples",
]

#: Events drawn and written at a time by :func:`write_samples` (about 10 MB of arrays).
CHUNK_SIZE = 100_000
# Spawn-key prefix of chunks >= 1: it keeps their seed sequences apart from chunk 0's
# children (spawn keys (0,), (1,), ...: one per model, plus the mixture).
_CHUNK_KEY = 0x43484E4B

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


def _check_request(models: dict[int, TrainedModel], n: int, seed: int) -> None:
    if n < 1:
        raise ValueError(f"-n must be at least 1, got {n}")
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")
    if not models:
        raise ValueError("no models to sample from")


def _samplers(model: TrainedModel) -> set[str]:
    if model.exact_sample is not None:
        return {"exact"}
    if model.members:  # a mixture: each member draws with its own sampler
        return set().union(*(_samplers(member) for _, member in model.members))
    return {"walk"}


def sampler_description(models: dict[int, TrainedModel], n_steps: int) -> str:
    """How :func:`pipeline.evaluation.generate_samples` draws from these models, for a header:
    exact draws, the reverse geodesic random walk of ``n_steps`` steps, or both (a mixture)."""
    kinds = set().union(*(_samplers(m) for m in models.values()))
    walk = f"reverse geodesic random walk with {n_steps} steps"
    if kinds == {"exact"}:
        return "exact draws (the model's own sampler)"
    if kinds == {"walk"}:
        return walk
    return f"each member's sampler (exact draws, or a {walk})"


def _draw(
    models: dict[int, TrainedModel], n: int, root: np.random.SeedSequence, n_steps: int
) -> SyntheticCatalogue:
    """``n`` events of the mixture, everything random drawn from ``root``."""
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


def sample_catalogue(
    models: dict[int, TrainedModel], n: int, seed: int, n_steps: int
) -> SyntheticCatalogue:
    """Draw ``n`` events from the equal-weight mixture of the seeds' models, in memory.

    For a large ``n`` use :func:`write_samples`, which streams chunks to the file.

    Args:
        models: ``{training seed: TrainedModel}``.
        n: Number of events (>= 1).
        seed: Random seed (>= 0): same seed, same events.
        n_steps: Steps of the reverse geodesic random walk.

    Returns:
        The :class:`SyntheticCatalogue`, events in a random order.
    """
    _check_request(models, n, seed)
    return _draw(models, n, np.random.SeedSequence(seed), n_steps)


def chunk_seed_sequence(seed: int, chunk: int) -> np.random.SeedSequence:
    """The seed sequence of chunk ``chunk`` of a streamed sample (see the module docstring).

    Args:
        seed: The sample's random seed (>= 0).
        chunk: Chunk index (0-based); chunk 0 is :func:`sample_catalogue`'s draw.

    Returns:
        ``SeedSequence(seed)`` for chunk 0, else ``SeedSequence(seed, spawn_key=(_CHUNK_KEY,
        chunk))``.
    """
    if chunk == 0:
        return np.random.SeedSequence(seed)
    return np.random.SeedSequence(seed, spawn_key=(_CHUNK_KEY, chunk))


def sample_chunks(
    models: dict[int, TrainedModel],
    n: int,
    seed: int,
    n_steps: int,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[SyntheticCatalogue]:
    """Draw ``n`` events as chunks of at most ``chunk_size`` (one in memory at a time).

    Args:
        models: ``{training seed: TrainedModel}``.
        n: Number of events (>= 1).
        seed: Random seed (>= 0): same seed and chunk size, same events.
        n_steps: Steps of the reverse geodesic random walk.
        chunk_size: Events per chunk (>= 1).

    Yields:
        The chunks in order; their sizes sum to ``n``.
    """
    _check_request(models, n, seed)
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1, got {chunk_size}")
    for k, start in enumerate(range(0, n, chunk_size)):
        yield _draw(models, min(chunk_size, n - start), chunk_seed_sequence(seed, k), n_steps)


def write_samples(
    models: dict[int, TrainedModel],
    n: int,
    seed: int,
    n_steps: int,
    path: str | Path,
    comment: str = "",
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Draw ``n`` events and write them atomically, one chunk at a time.

    Memory holds one chunk, whatever ``n`` is. Up to ``chunk_size`` events the file equals
    ``write_catalogue(sample_catalogue(models, n, seed, n_steps), path, comment)``.

    Args:
        models: ``{training seed: TrainedModel}``.
        n: Number of events (>= 1).
        seed: Random seed (>= 0).
        n_steps: Steps of the reverse geodesic random walk.
        path: Output file (``.csv``, ``.parquet``, ``.geoparquet``).
        comment: Provenance text (CSV only), as in :func:`write_catalogue`.
        chunk_size: Events per chunk (>= 1).
        progress: Called as ``progress(done, n)`` after each chunk is written.

    Returns:
        The path written.

    Raises:
        ValueError: An unsupported suffix, or a bad ``n``, ``seed`` or ``chunk_size``.
    """
    path = Path(path)
    fmt = output_format(path)
    chunks = sample_chunks(models, n, seed, n_steps, chunk_size)
    if n <= chunk_size:  # one chunk: the in-memory writer, byte for byte as before
        written = write_catalogue(next(chunks), path, comment)
        if progress is not None:
            progress(n, n)
        return written

    def report(done: int) -> None:
        if progress is not None:
            progress(done, n)

    if fmt == "csv":

        def write_csv(tmp: Path) -> None:
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                writer = _csv_header(fh, comment)
                done = 0
                for chunk in chunks:
                    _csv_rows(writer, chunk)
                    done += len(chunk.lat)
                    report(done)

        return atomic_write(path, write_csv, suffix=".csv")

    def write_parquet(tmp: Path) -> None:
        import pyarrow.parquet as pq

        writer: pq.ParquetWriter | None = None
        done = 0
        try:
            for chunk in chunks:
                table = _geoarrow_table(chunk)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
                done += len(chunk.lat)
                report(done)
        finally:
            if writer is not None:
                writer.close()

    return atomic_write(path, write_parquet, suffix=".parquet")


def _frame(catalogue: SyntheticCatalogue) -> Any:
    import geopandas as gpd

    return gpd.GeoDataFrame(
        {"lat": catalogue.lat, "lon": catalogue.lon, "model_seed": catalogue.model_seed},
        geometry=gpd.points_from_xy(catalogue.lon, catalogue.lat),
        crs="EPSG:4326",
    )


def _geoarrow_table(catalogue: SyntheticCatalogue) -> Any:
    """One chunk as an Arrow table with GeoParquet metadata, minus the chunk's bounding box.

    The "geo" metadata is written once, from the first chunk: its ``bbox`` (optional in
    GeoParquet) would describe that chunk only, so it is dropped.
    """
    import pyarrow as pa
    from geopandas.io.arrow import _geopandas_to_arrow

    table = _geopandas_to_arrow(_frame(catalogue), index=False)
    meta = dict(table.schema.metadata or {})
    geo = json.loads(meta[b"geo"])
    for column in geo.get("columns", {}).values():
        column.pop("bbox", None)
    meta[b"geo"] = json.dumps(geo).encode("utf-8")
    return pa.Table.from_batches(table.to_batches(), table.schema.with_metadata(meta))


def _csv_header(fh: TextIO, comment: str) -> Any:
    for line in comment.splitlines():
        fh.write(f"# {line}\n")
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(["lat", "lon", "model_seed"])
    return writer


def _csv_rows(writer: Any, catalogue: SyntheticCatalogue) -> None:
    for a, b, s in zip(catalogue.lat, catalogue.lon, catalogue.model_seed, strict=True):
        writer.writerow([f"{a:.6f}", f"{b:.6f}", int(s)])


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
                _csv_rows(_csv_header(fh, comment), catalogue)

        return atomic_write(path, write_csv, suffix=".csv")

    frame = _frame(catalogue)

    def write_parquet(tmp: Path) -> None:
        frame.to_parquet(tmp, index=False)

    return atomic_write(path, write_parquet, suffix=".parquet")
