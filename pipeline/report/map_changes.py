"""What moved on the maps between two versions: Δ log-density maps from the netCDF grids that
the maps stage commits to git (``data/maps/<catalogue>/<model>.nc``, ``cache: false``).

Used by the report's versions section (this run against the previous version) and by
``geosgm compare REV_A REV_B --maps DIR``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_write
from pipeline.gitio import git_show
from pipeline.maps.change import density_change, draw_change_map
from pipeline.maps.netcdf import DensityGrid, read_density_netcdf
from pipeline.report.document import Block, Gallery, Image, Text
from pipeline.report.sections import change_caption

__all__ = [
    "GRIDS_DIR",
    "ChangeMap",
    "change_blocks",
    "change_maps",
    "grid_at_revision",
    "write_change_index",
]

#: Where the maps stage writes its grids, relative to the repository root.
GRIDS_DIR = "data/maps"


@dataclass(frozen=True)
class ChangeMap:
    """One pair's change map, or why there is none.

    Attributes:
        catalogue: Catalogue name.
        model: Model name.
        png: The Δ map, or ``None`` (see ``note``).
        note: Why there is no map (a grid missing at a revision, different grids).
        max_abs_delta: ``max |Δ log p|`` in nats.
        fraction_exceeding: Area fraction where ``|Δ|`` exceeds twice the seed spread
            (``None`` without spreads).
    """

    catalogue: str
    model: str
    png: Path | None
    note: str = ""
    max_abs_delta: float | None = None
    fraction_exceeding: float | None = None

    def summary(self) -> str:
        """``"cat/model: max |Δ| 0.50 nats, 12.5% of the sphere beyond 2× seed spread"``."""
        where = (
            "no seed spread"
            if self.fraction_exceeding is None
            else f"{100 * self.fraction_exceeding:.1f}% of the sphere beyond 2× seed spread"
        )
        return f"{self.catalogue}/{self.model}: max |Δ| {self.max_abs_delta:.2f} nats, {where}"


def grid_at_revision(repo_dir: str | os.PathLike[str], rev: str, path: str) -> DensityGrid:
    """A map grid as committed at ``rev`` (``git show``), or on disk for ``"workspace"``.

    Raises:
        FileNotFoundError: If git has no such file at ``rev`` (one line).
        ValueError: If it is not a density grid.
    """
    repo = Path(repo_dir)
    if rev == "workspace":
        if not (repo / path).is_file():
            raise FileNotFoundError(f"{path} is not in the workspace (run the maps stage)")
        return read_density_netcdf(repo / path)
    shown = git_show(repo, rev, path)
    if not shown.ok:
        raise FileNotFoundError(f"{path} is not in git at {rev}")
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "grid.nc"
        file.write_bytes(shown.stdout)
        return read_density_netcdf(file)


def change_maps(
    repo_dir: str | os.PathLike[str],
    rev_a: str,
    rev_b: str,
    pairs: Iterable[tuple[str, str]],
    out_dir: str | os.PathLike[str],
    *,
    naturalearth_dir: str | os.PathLike[str] | None = None,
    display_upsample: int = 4,
) -> list[ChangeMap]:
    """Draw ``out_dir/<catalogue>/<model>.png`` (Δ = B − A) for every pair both revisions have.

    Args:
        repo_dir: Repository root.
        rev_a: The older revision.
        rev_b: The newer revision, or ``"workspace"``.
        pairs: ``(catalogue, model)`` pairs to compare.
        out_dir: Folder of the PNGs.
        naturalearth_dir: The shipped coastlines (offline cartopy).
        display_upsample: Interpolation factor for drawing.

    Returns:
        One :class:`ChangeMap` per pair, in order.
    """
    out = []
    for cat, model in pairs:
        path = f"{GRIDS_DIR}/{cat}/{model}.nc"
        try:
            a = grid_at_revision(repo_dir, rev_a, path)
            b = grid_at_revision(repo_dir, rev_b, path)
            change = density_change(a, b)
        except (FileNotFoundError, ValueError) as exc:
            out.append(ChangeMap(cat, model, None, str(exc)))
            continue
        png = draw_change_map(
            change,
            f"{cat} / {model}: Δ log-density, {rev_b} − {rev_a}",
            Path(out_dir) / cat / f"{model}.png",
            naturalearth_dir=naturalearth_dir,
            display_upsample=display_upsample,
        )
        out.append(
            ChangeMap(
                cat,
                model,
                png,
                max_abs_delta=float(np.max(np.abs(change.delta))),
                fraction_exceeding=change.fraction_exceeding,
            )
        )
    return out


def change_blocks(changes: list[ChangeMap], label_a: str) -> list[Block]:
    """The report's "what moved on the maps" blocks: a gallery, or why there is none."""
    drawn = [c for c in changes if c.png is not None]
    missing = [c for c in changes if c.png is None]
    blocks: list[Block] = []
    if drawn:
        parts = [c.summary() for c in drawn]
        blocks.append(
            Text(
                f"Δ log-density of each map, this run − `{label_a}` (red: more likely now). "
                "Hatched cells changed by more than twice the seeds' spread. "
                + "; ".join(parts)
                + "."
            )
        )
        blocks.append(
            Gallery(
                [
                    Image(
                        c.png,
                        f"{c.catalogue} {c.model} change",
                        change_caption(c.catalogue, c.model, label_a),
                    )
                    for c in drawn
                    if c.png is not None
                ]
            )
        )
    if missing:
        reasons = sorted({c.note for c in missing})
        blocks.append(
            Text(
                f"No change map for {len(missing)} map(s): "
                + "; ".join(reasons[:3])
                + (" (and more)" if len(reasons) > 3 else "")
                + ". Grids are in git from this version on; `geosgm compare REV_A REV_B "
                "--maps DIR` draws them for any two such versions."
            )
        )
    return blocks


def write_change_index(
    out_dir: str | os.PathLike[str], changes: list[ChangeMap], rev_a: str | None, rev_b: str
) -> Path:
    """``out_dir/index.json``: which change maps exist and why the others do not (written even
    when there is nothing to compare with, so the folder always exists)."""
    rows = [
        {
            "catalogue": c.catalogue,
            "model": c.model,
            "png": None if c.png is None else c.png.name,
            "note": c.note,
            "max_abs_delta": c.max_abs_delta,
            "fraction_beyond_2x_seed_spread": c.fraction_exceeding,
        }
        for c in changes
    ]
    text = json.dumps({"rev_a": rev_a, "rev_b": rev_b, "maps": rows}, indent=2) + "\n"
    path = Path(out_dir) / "index.json"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
