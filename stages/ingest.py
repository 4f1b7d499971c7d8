"""DVC stage ``ingest@<catalogue>``: raw CSV -> validated, CF-style netCDF on S².

Reads the ``ingest`` section of params.yaml::

    ingest:
      max_reject_fraction: 0.01
      catalogues:
        volcano: {file: volerup.csv, lat_col: Latitude, lon_col: Longitude,
                  skip_lines: auto, has_header: auto}

and, for one catalogue, writes ``<processed-dir>/<name>.nc``, ``<rejects-dir>/<name>.csv``
(always, so the rejected lines can be inspected even when the stage fails on too many of
them) and ``<metrics-dir>/<name>.json`` (counts). The raw file is only read.

Usage::

    python -m stages.ingest --catalogue volcano
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.data.dataset import catalogue_to_dataset, catalogue_to_geodataframe
from pipeline.data.errors import CatalogueError
from pipeline.data.io import write_json, write_processed, write_rejects
from pipeline.data.readers import read_raw
from pipeline.data.registry import parse_catalogues
from pipeline.data.validation import check_rejects, validate_table
from stages.common import load_params, section

SECTION = "ingest"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line of the stage."""
    parser = argparse.ArgumentParser(prog="python -m stages.ingest", description=__doc__)
    parser.add_argument("--catalogue", required=True, help="name under ingest.catalogues")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--raw-dir", type=Path, default=Path("data/raw"))
    parser.add_argument("--processed-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--rejects-dir", type=Path, default=Path("data/rejects"))
    parser.add_argument("--metrics-dir", type=Path, default=Path("reports/data"))
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Ingest one catalogue; return its metrics.

    Raises:
        CatalogueError: On any input problem (unknown catalogue, bad file, too many rejects).
    """
    params = section(load_params(args.params), SECTION, args.params)
    specs = parse_catalogues(params.get("catalogues", {}))
    if args.catalogue not in specs:
        raise CatalogueError(
            f"{args.params}: unknown catalogue {args.catalogue!r}; known: {sorted(specs)}"
        )
    if "max_reject_fraction" not in params:
        raise CatalogueError(f"{args.params}: missing ingest.max_reject_fraction")
    max_reject_fraction = float(params["max_reject_fraction"])
    spec = specs[args.catalogue]

    start = time.perf_counter()
    catalogue = validate_table(read_raw(args.raw_dir / spec.file, spec), spec.name)
    write_rejects(catalogue.rejects, args.rejects_dir / f"{spec.name}.csv")
    check_rejects(catalogue, max_reject_fraction)
    ds = catalogue_to_dataset(catalogue_to_geodataframe(catalogue), catalogue)
    write_processed(ds, args.processed_dir / f"{spec.name}.nc")
    metrics: dict[str, Any] = {
        "catalogue": spec.name,
        "source_file": spec.file,
        "n_rows_read": catalogue.n_rows_read,
        "n_valid": catalogue.n_valid,
        "n_rejected": catalogue.n_rejected,
        "n_lon_wrapped": catalogue.n_lon_wrapped,
        "reject_fraction": round(catalogue.reject_fraction, 6),
    }
    write_json(metrics, args.metrics_dir / f"{spec.name}.json")
    elapsed = time.perf_counter() - start
    print(
        f"ingest {spec.name}: {catalogue.n_valid} valid, {catalogue.n_rejected} rejected of "
        f"{catalogue.n_rows_read} rows ({elapsed:.2f} s)"
    )
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Entry point: one Prefect flow run; 0 on success, 1 on a catalogue error (on stderr)."""
    from pipeline.flows.stage import stage_main

    args = parse_args(argv)
    expected = (
        CatalogueError,
        KeyError,
        ValueError,
        FileNotFoundError,
    )  # ParamsError: a ValueError
    return stage_main(lambda: run(args), f"ingest-{args.catalogue}", expected, "ingest")


if __name__ == "__main__":
    sys.exit(main())
