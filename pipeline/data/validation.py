"""Validate the data lines of a raw catalogue: every row is kept or rejected with a reason.

A row is valid when it has the expected number of fields and its latitude and longitude
fields are finite decimal numbers with latitude in [-90, 90] and longitude in [-180, 180]
or [0, 360). Longitudes are stored normalised to [-180, 180) (so 180 and 270 become -180
and -90). Rejected rows keep their 1-based raw line number, the raw text and the reason.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pipeline.data.errors import CatalogueError
from pipeline.data.io import REJECT_COLUMNS
from pipeline.data.readers import RawLine, RawTable, read_raw
from pipeline.data.registry import CatalogueSpec
from pipeline.geometry.coords import normalize_longitude

__all__ = [
    "Catalogue",
    "build_catalogue",
    "check_rejects",
    "validate_table",
]

_DECIMAL = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_NON_FINITE = re.compile(r"^[+-]?(?:nan|inf|infinity)$", re.IGNORECASE)


@dataclass(frozen=True)
class Catalogue:
    """The valid events of one catalogue and the rows that were rejected.

    Attributes:
        name: Catalogue name.
        source_file: Path of the raw file as given to the reader.
        source_sha256: Hex SHA-256 of the raw file's bytes.
        lat: Latitudes in degrees, shape (N,), float64, in [-90, 90].
        lon: Longitudes in degrees, shape (N,), float64, in [-180, 180).
        source_line: 1-based raw line number of each event, shape (N,), int64.
        rejects: One row per rejected line, columns ``line_number, raw_line, reason``.
        n_rows_read: Number of data lines examined (valid + rejected).
        n_lon_wrapped: Number of valid rows whose longitude was changed by normalising
            to [-180, 180) (given in [0, 360) or equal to 180).
    """

    name: str
    source_file: str
    source_sha256: str
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    source_line: NDArray[np.int64]
    rejects: pd.DataFrame
    n_rows_read: int
    n_lon_wrapped: int

    @property
    def n_valid(self) -> int:
        """Number of valid events N."""
        return int(self.lat.shape[0])

    @property
    def n_rejected(self) -> int:
        """Number of rejected data lines."""
        return len(self.rejects)

    @property
    def reject_fraction(self) -> float:
        """Rejected share of the data lines examined."""
        return self.n_rejected / self.n_rows_read if self.n_rows_read else 0.0


def _parse_value(field: str, what: str) -> float | str:
    """Parse one coordinate field; return the value, or the rejection reason (a str)."""
    if field == "":
        return f"empty {what}"
    if _NON_FINITE.match(field):
        return f"non-finite {what} {field!r}"
    if not _DECIMAL.match(field):
        return f"non-numeric {what} {field!r}"
    value = float(field)
    if not math.isfinite(value):  # e.g. 1e999 overflows to inf
        return f"non-finite {what} {field!r}"
    return value


def _check_row(row: RawLine, table: RawTable) -> tuple[float, float] | str:
    """Return (lat, lon) for a valid row, else the rejection reason."""
    if len(row.fields) != table.n_fields:
        return f"wrong field count: expected {table.n_fields}, got {len(row.fields)}"
    lat = _parse_value(row.fields[table.lat_index], "latitude")
    if isinstance(lat, str):
        return lat
    lon = _parse_value(row.fields[table.lon_index], "longitude")
    if isinstance(lon, str):
        return lon
    if not -90.0 <= lat <= 90.0:
        return f"latitude {lat!r} outside [-90, 90]"
    if not -180.0 <= lon < 360.0:
        return f"longitude {lon!r} outside [-180, 180] and [0, 360)"
    return lat, lon


def validate_table(table: RawTable, name: str) -> Catalogue:
    """Check every data line of a raw table and split it into events and rejects.

    Args:
        table: Output of :func:`pipeline.data.readers.read_raw`.
        name: Catalogue name.

    Returns:
        The catalogue; use :func:`check_rejects` to enforce the reject budget.
    """
    lats: list[float] = []
    lons: list[float] = []
    lines: list[int] = []
    rejects: list[tuple[int, str, str]] = []
    for row in table.rows:
        result = _check_row(row, table)
        if isinstance(result, str):
            rejects.append((row.line_number, row.text, result))
        else:
            lats.append(result[0])
            lons.append(result[1])
            lines.append(row.line_number)
    lon_raw = np.asarray(lons, dtype=np.float64)
    lon = np.asarray(normalize_longitude(lon_raw), dtype=np.float64) + 0.0  # no -0.0
    rejects_df = pd.DataFrame(rejects, columns=list(REJECT_COLUMNS)).astype(
        {"line_number": "int64", "raw_line": "str", "reason": "str"}
    )
    return Catalogue(
        name=name,
        source_file=str(table.path),
        source_sha256=table.sha256,
        lat=np.asarray(lats, dtype=np.float64) + 0.0,
        lon=lon,
        source_line=np.asarray(lines, dtype=np.int64),
        rejects=rejects_df,
        n_rows_read=len(table.rows),
        n_lon_wrapped=int(np.count_nonzero(lon != lon_raw)),
    )


def check_rejects(catalogue: Catalogue, max_reject_fraction: float) -> None:
    """Fail when a catalogue has no valid rows or rejects more than its budget.

    Args:
        catalogue: A validated catalogue.
        max_reject_fraction: Largest allowed share of rejected data lines, in [0, 1].

    Raises:
        CatalogueError: If there are no valid rows, or
            ``n_rejected / n_rows_read > max_reject_fraction``; the message names the file
            and the first rejected lines with their reasons.
    """
    if not 0.0 <= max_reject_fraction <= 1.0:
        raise CatalogueError(f"max_reject_fraction must be in [0, 1], got {max_reject_fraction}")
    examples = "; ".join(
        f"line {r.line_number}: {r.reason}" for r in catalogue.rejects.head(3).itertuples()
    )
    if catalogue.n_valid == 0:
        raise CatalogueError(
            f"{catalogue.source_file}: no valid rows among {catalogue.n_rows_read} data lines "
            f"({examples})"
        )
    if catalogue.reject_fraction > max_reject_fraction:
        raise CatalogueError(
            f"{catalogue.source_file}: {catalogue.n_rejected} of {catalogue.n_rows_read} data "
            f"lines rejected ({catalogue.reject_fraction:.2%} > max_reject_fraction "
            f"{max_reject_fraction:.2%}); first: {examples}"
        )


def build_catalogue(path: str | Path, spec: CatalogueSpec, max_reject_fraction: float) -> Catalogue:
    """Read, validate and budget-check one raw catalogue file.

    Args:
        path: The raw CSV file.
        spec: How to read it.
        max_reject_fraction: Largest allowed share of rejected data lines.

    Returns:
        The validated catalogue.

    Raises:
        CatalogueError: See :func:`pipeline.data.readers.read_raw` and :func:`check_rejects`.
    """
    catalogue = validate_table(read_raw(path, spec), spec.name)
    check_rejects(catalogue, max_reject_fraction)
    return catalogue
