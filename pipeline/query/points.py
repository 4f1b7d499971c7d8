"""Query points given by a user: latitude/longitude pairs on the command line or in a CSV file.

Latitudes must lie in [-90, 90]; longitudes in [-180, 360] (0–360 input is common in
geophysics) and are wrapped into the project's [-180, 180) by
:func:`pipeline.geometry.coords.normalize_longitude`. Every error is one line that names the
point (1-based, as a user counts) or the file and row, and the reason.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipeline.geometry.coords import normalize_longitude

__all__ = ["PointsError", "check_latlon", "parse_latlon_pairs", "read_points_csv"]

LAT_NAMES = ("lat", "latitude")
LON_NAMES = ("lon", "longitude", "long", "lng")


class PointsError(ValueError):
    """Bad query points; the message is one line naming the point or file row."""


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PointsError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise PointsError(f"{where}: {what} {text!r} is not a finite number")
    return value


def check_latlon(lat: float, lon: float, where: str) -> tuple[float, float]:
    """Check one point's range and wrap its longitude into [-180, 180).

    Args:
        lat: Latitude in degrees.
        lon: Longitude in degrees.
        where: What to call the point in an error (``"point 3"``, ``"pts.csv line 4"``).

    Returns:
        ``(lat, lon)`` with ``lon`` in [-180, 180).

    Raises:
        PointsError: Latitude outside [-90, 90] or longitude outside [-180, 360].
    """
    if not -90.0 <= lat <= 90.0:
        raise PointsError(f"{where}: latitude {lat:g} is outside [-90, 90]")
    if not -180.0 <= lon <= 360.0:
        raise PointsError(f"{where}: longitude {lon:g} is outside [-180, 360]")
    return lat, float(normalize_longitude(np.float64(lon)))


def parse_latlon_pairs(values: Sequence[str]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Parse ``LAT LON [LAT LON ...]`` from the command line.

    Args:
        values: Flat list of strings, an even number of them.

    Returns:
        ``(lat, lon)``, each shape (N,), float64 degrees, ``lon`` in [-180, 180).

    Raises:
        PointsError: An odd count, text that is not a number, or a value out of range.
    """
    if not values:
        raise PointsError("no points: give LAT LON pairs or --points FILE.csv")
    if len(values) % 2:
        raise PointsError(
            f"{len(values)} numbers given: points are LAT LON pairs (the last has no longitude)"
        )
    lat, lon = [], []
    for i in range(0, len(values), 2):
        where = f"point {i // 2 + 1}"
        a = _number(values[i], "latitude", where)
        b = _number(values[i + 1], "longitude", where)
        a, b = check_latlon(a, b, where)
        lat.append(a)
        lon.append(b)
    return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)


def _column(header: list[str], names: tuple[str, ...], path: Path) -> int:
    folded = [h.strip().lower() for h in header]
    for name in names:
        if name in folded:
            return folded.index(name)
    raise PointsError(
        f"{path}: no {names[0]} column (header: {', '.join(header)}; expected one of "
        f"{', '.join(names)})"
    )


def read_points_csv(path: str | Path) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Read query points from a CSV file with a header naming ``lat``/``lon`` columns.

    Column names are matched case-insensitively (``lat``/``latitude``, ``lon``/``longitude``/
    ``long``/``lng``); other columns are ignored; lines starting with ``#`` are comments.

    Args:
        path: The CSV file.

    Returns:
        ``(lat, lon)``, each shape (N,), float64 degrees, ``lon`` in [-180, 180).

    Raises:
        PointsError: A missing file or column, an empty file, or a bad row (named by line).
    """
    path = Path(path)
    if not path.is_file():
        raise PointsError(f"{path}: no such file")
    lat, lon = [], []
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header: list[str] | None = None
            i_lat = i_lon = 0
            for row in reader:
                if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                    continue
                if header is None:
                    header = row
                    i_lat = _column(header, LAT_NAMES, path)
                    i_lon = _column(header, LON_NAMES, path)
                    continue
                where = f"{path} line {reader.line_num}"
                if len(row) <= max(i_lat, i_lon):
                    raise PointsError(f"{where}: {len(row)} fields, expected {len(header)}")
                a = _number(row[i_lat].strip(), "latitude", where)
                b = _number(row[i_lon].strip(), "longitude", where)
                a, b = check_latlon(a, b, where)
                lat.append(a)
                lon.append(b)
            if header is None:
                raise PointsError(f"{path}: empty file (expected a header with lat, lon)")
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PointsError(f"{path}: not a readable CSV file ({exc})") from None
    if not lat:
        raise PointsError(f"{path}: no points (a header and no rows)")
    return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
