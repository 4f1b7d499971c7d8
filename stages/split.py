"""DVC stage ``split@<catalogue>``: train/val/test labels for every seed.

Reads the ``split`` section of params.yaml::

    split:
      protocol: auto          # rsgm | hash | rsgm+hash | auto (published labels where they exist)
      overrides: {}           # optional per-catalogue protocol, e.g. {volcano: rsgm}
      seeds: [0, 1, 2, 3, 4]
      fractions: [0.8, 0.1, 0.1]

and writes ``<splits-dir>/<name>.csv`` with columns ``event, seed0..seed4`` (values
``train``/``val``/``test``), one row per event of ``<processed-dir>/<name>.nc``.

Usage::

    python -m stages.split --catalogue volcano
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.config.schema import ParamsError
from pipeline.data.errors import CatalogueError
from pipeline.data.io import load_processed
from pipeline.data.splits import (
    PARTS,
    check_nonempty_parts,
    make_split,
    published_labels_path,
    resolve_protocol,
    write_split,
)
from stages.common import load_params, section

SECTION = "split"


def catalogue_protocol(section: Mapping[str, Any], catalogue: str) -> str:
    """The protocol of one catalogue: ``split.overrides.<catalogue>`` if set, else
    ``split.protocol`` (``auto`` is resolved later, against the labels file)."""
    overrides = section.get("overrides") or {}
    return str(overrides.get(catalogue, section["protocol"]))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line of the stage."""
    parser = argparse.ArgumentParser(prog="python -m stages.split", description=__doc__)
    parser.add_argument("--catalogue", required=True, help="catalogue name")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--processed-dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--published-dir", type=Path, default=Path("data/published_splits"))
    parser.add_argument("--splits-dir", type=Path, default=Path("data/splits"))
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, dict[str, int]]:
    """Split one catalogue; return the part sizes per seed column.

    Raises:
        CatalogueError: On bad params or a split that does not fit the catalogue, including
            a seed whose train, val or test part would be empty (too few events).
    """
    params_section = section(load_params(args.params), SECTION, args.params)
    missing = [k for k in ("protocol", "seeds", "fractions") if k not in params_section]
    if missing:
        raise CatalogueError(f"{args.params}: missing split keys {missing}")
    labels_path = published_labels_path(args.published_dir, args.catalogue)
    protocol = resolve_protocol(catalogue_protocol(params_section, args.catalogue), labels_path)
    ds = load_processed(args.processed_dir / f"{args.catalogue}.nc")
    table = make_split(
        protocol,
        ds["lat"].to_numpy(),
        ds["lon"].to_numpy(),
        seeds=[int(s) for s in params_section["seeds"]],
        fractions=[float(f) for f in params_section["fractions"]],
        labels_path=labels_path,
    )
    # Before writing: an empty part must fail this stage, not evaluation three stages later.
    check_nonempty_parts(table, args.catalogue)
    write_split(table, args.splits_dir / f"{args.catalogue}.csv")
    sizes = {
        col: {part: int((table[col] == part).sum()) for part in PARTS} for col in table.columns[1:]
    }
    print(f"split {args.catalogue} ({protocol}): {sizes}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    """Entry point: one Prefect flow run; 0 on success, 1 on a catalogue/split error."""
    from pipeline.flows.stage import stage_main

    args = parse_args(argv)
    expected = (CatalogueError, ParamsError, KeyError, FileNotFoundError, ValueError)
    return stage_main(lambda: run(args), f"split-{args.catalogue}", expected, "split")


if __name__ == "__main__":
    sys.exit(main())
