"""The query verbs of the ``geosgm`` command: ``density`` and ``sample``.

Each reads the checked params sections it needs, loads the chosen seeds' trained models and
calls :mod:`pipeline.query`; :mod:`pipeline.cli.commands` parses the arguments, finds the
project and turns :func:`query_errors` into one line on stderr and exit code 1.
:func:`params_sections` is also how ``geosgm compare`` reads the maps section.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["density", "load_models", "params_sections", "query_errors", "sample", "seed_list"]


def params_sections(repo: Path, *names: str) -> dict[str, dict[str, Any]]:
    """Checked sections of the project's params.yaml, read once (``{}`` when absent)."""
    from pipeline.config.params_schema import check_section
    from pipeline.config.yaml_file import read_yaml_mapping

    path = repo / "params.yaml"
    params = read_yaml_mapping(path)
    out = {}
    for name in names:
        value = params.get(name) or {}
        check_section(name, value, str(path))
        out[name] = dict(value)
    return out


def load_models(
    args: argparse.Namespace, repo: Path
) -> tuple[dict[str, dict[str, Any]], dict[int, Any]]:
    """The params sections the query verbs read, and the chosen seeds' trained models."""
    from pipeline.query.bundle import BUNDLE_DIR, fetch_from_bundle, fitting_stage
    from pipeline.query.density import ModelNotFoundError, load_seed_models

    sections = params_sections(repo, "ingest", "evaluate", "maps")
    known = list(sections["ingest"].get("catalogues", {}))
    if args.catalogue not in known:
        raise ValueError(f"unknown catalogue {args.catalogue!r} (catalogues: {', '.join(known)})")
    seeds = None if args.seeds is None else seed_list(args.seeds)
    models_dir = repo / "data" / "models"
    try:
        models = load_seed_models(models_dir, args.catalogue, args.model, seeds, args.device)
    except ModelNotFoundError:
        # A fresh clone: the committed run's weights may be in the bundle (seconds to fetch).
        stage = fitting_stage(args.catalogue, args.model)
        if (models_dir / args.catalogue / args.model).is_dir() or not fetch_from_bundle(
            repo, stage
        ):
            raise
        print(
            f"geosgm: fetched {stage}'s weights from the bundled run ({BUNDLE_DIR}/)",
            file=sys.stderr,
        )
        models = load_seed_models(models_dir, args.catalogue, args.model, seeds, args.device)
    return sections, models


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected integers like 0,1,2") from None
    if not seeds:
        raise ValueError(f"--seeds {text!r}: no seed given")
    return seeds


def query_errors() -> tuple[type[BaseException], ...]:
    from pipeline.checkpoints import CheckpointError
    from pipeline.config.schema import ParamsError
    from pipeline.query.points import PointsError

    return (PointsError, ParamsError, CheckpointError, ValueError, FileNotFoundError)


def density(args: argparse.Namespace, repo: Path) -> None:
    """``geosgm density``: log-densities at the given places, printed or written as CSV.

    Raises:
        One of :func:`query_errors` on bad points, params or models.
    """
    from pipeline.query.points import PointsError, parse_latlon_pairs, read_points_csv

    if args.points is not None and args.coords:
        raise PointsError("give LAT LON pairs or --points FILE.csv, not both")
    if args.points is not None:
        lat, lon = read_points_csv(args.points)
    else:
        lat, lon = parse_latlon_pairs(args.coords)
    sections, models = load_models(args, repo)
    settings = sections["evaluate"]
    from pipeline.query.density import query_density

    table = query_density(
        models,
        lat,
        lon,
        rtol=float(settings.get("rtol", 1e-5)),
        atol=float(settings.get("atol", 1e-5)),
        batch_size=int(settings.get("batch_size", 4096)),
    )
    from pipeline.query.render import density_csv, density_text

    header = (
        f"{args.catalogue}/{args.model}, seeds {list(table.seeds)}: log-density in nats per "
        f"steradian (mean and sd over seeds), density per km² with Earth radius "
        f"{table.radius_km} km"
    )
    if args.csv is not None:
        from pipeline.atomic import atomic_write

        atomic_write(
            Path(args.csv), lambda tmp: tmp.write_text(density_csv(table, header)), suffix=".csv"
        )
        print(f"geosgm density: wrote {len(table.lat)} points to {args.csv}")
    elif args.format == "csv":
        sys.stdout.write(density_csv(table, header))
    else:
        print(density_text(table, header))


def sample(args: argparse.Namespace, repo: Path) -> None:
    """``geosgm sample``: a synthetic catalogue drawn from the chosen seeds' models.

    Streams :data:`pipeline.query.synthetic.CHUNK_SIZE` events at a time to the file, with
    a progress line per chunk on stderr when there are several (``args.chunk_size``, when
    the parser sets it, overrides the chunk size; the chunked seeding is described in
    :mod:`pipeline.query.synthetic`).

    Raises:
        One of :func:`query_errors` on a bad output name, params or models.
    """
    from pipeline.query.synthetic import (
        CHUNK_SIZE,
        output_format,
        sampler_description,
        write_samples,
    )

    out = Path(args.out)
    output_format(out)  # before the models load
    sections, models = load_models(args, repo)
    steps = int(args.steps or sections["maps"].get("sample_steps", 300))
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    comment = (
        f"geosgm sample: {args.n} events from {args.catalogue}/{args.model}, seeds "
        f"{list(models)} (equal-weight mixture), {sampler_description(models, steps)}, "
        f"--seed {args.seed}"
    )
    chunk_size = int(getattr(args, "chunk_size", None) or CHUNK_SIZE)
    if args.n > chunk_size:  # drawn in chunks: the seed gives the same file per chunk size
        comment += f", drawn in chunks of {chunk_size}"
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        # One line per chunk, only when there are several: a long run shows it is moving.
        if total > chunk_size:
            print(
                f"geosgm sample: {done}/{total} events written ({100.0 * done / total:.1f}%, "
                f"{time.perf_counter() - start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )

    write_samples(
        models, args.n, args.seed, steps, out, comment, chunk_size=chunk_size, progress=progress
    )
    print(f"geosgm sample: wrote {args.n} events to {out}")
