"""When an incoming row is an event the raw catalogue already has (``geosgm refresh``).

This module imports no prefect; :func:`pipeline.refresh.batch_plan.plan_catalogue` applies
these rules while it plans a batch.

**Event identity** (:func:`event_identity`): an incoming row is first laid out in the raw
file's columns (:func:`relayout`: fields matched by header name, missing ones empty, extra
ones dropped). Two rows are the same event when all of those fields are equal after
whitespace normalisation (leading/trailing whitespace stripped, inner runs collapsed to one
space), with latitude and longitude compared as numbers (longitude normalised to
[-180, 180), so ``30.780`` equals ``30.78`` and ``190`` equals ``-170``); other fields compare
as text, case-sensitively. A valid incoming row identical to a valid raw row, or to a row
appended earlier in the same refresh, is a duplicate: dropped and counted. A new eruption at
a known volcano with a different date is a new event — when the raw layout has a date
column. When the raw layout is latitude and longitude only (as the shipped raw files are),
the identity is the location.

**Catalogues that record repeats** (:func:`records_repeats`): when the raw file itself holds
rows with the same identity (volcano: 827 eruptions as 827 rows at 267 locations, 560 of
them repeats), a repeated row is how the catalogue records a repeated event, so rows are not
matched against it; there a file is a duplicate only as a whole, when its bytes were already
merged (its SHA-256 is in a ``processed/`` record, :func:`merged_sha256s`) or appear earlier
in the same batch.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from pipeline.data.readers import RawLine, RawTable

__all__ = ["event_identity", "merged_sha256s", "records_repeats", "relayout"]


def event_identity(
    fields: Sequence[str], lat: float, lon: float, lat_index: int, lon_index: int
) -> tuple[str, ...]:
    """The identity of an event, used to drop duplicates (see the module docstring).

    Args:
        fields: The row's fields in the raw file's column layout.
        lat: Its validated latitude in degrees.
        lon: Its validated longitude in degrees, normalised to [-180, 180).
        lat_index: Index of the latitude field in ``fields``.
        lon_index: Index of the longitude field in ``fields``.

    Returns:
        Every field with whitespace normalised, latitude and longitude as ``repr`` of the
        numbers (``-0.0`` as ``0.0``). Two rows are the same event iff these are equal.
    """
    key = [" ".join(f.split()) for f in fields]
    key[lat_index] = repr(float(lat) + 0.0)
    key[lon_index] = repr(float(lon) + 0.0)
    return tuple(key)


def relayout(row: RawLine, incoming: RawTable, raw: RawTable) -> tuple[tuple[str, ...], str]:
    """Fields and text of an incoming row laid out in the raw file's columns.

    Verbatim when both files have the same columns; otherwise the raw file's fields are
    filled from the incoming fields of the same header name (latitude and longitude by
    their resolved columns), others left empty, and the text is CSV-quoted as needed.

    Args:
        row: A row of the incoming file.
        incoming: The incoming file's table (its header and columns).
        raw: The raw file's table (the layout to follow).

    Returns:
        (fields, text): the fields in the raw layout and the line to append.
    """
    same_header = (incoming.header is None and raw.header is None) or (
        incoming.header is not None
        and raw.header is not None
        and [h.lower() for h in incoming.header] == [h.lower() for h in raw.header]
    )
    if same_header and incoming.n_fields == raw.n_fields:
        return row.fields, row.text
    out = [""] * raw.n_fields
    if raw.header is not None and incoming.header is not None:
        by_name = {h.lower(): i for i, h in enumerate(incoming.header)}
        for j, name in enumerate(raw.header):
            i = by_name.get(name.lower())
            if i is not None and i < len(row.fields):
                out[j] = row.fields[i]
    out[raw.lat_index] = row.fields[incoming.lat_index]
    out[raw.lon_index] = row.fields[incoming.lon_index]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(out)
    return tuple(out), buf.getvalue()


def records_repeats(n_distinct: int, n_rows: int) -> bool:
    """Whether a raw catalogue records repeated events as repeated rows (see the module doc).

    Args:
        n_distinct: Distinct event identities among its valid rows.
        n_rows: Its valid rows.
    """
    return n_distinct < n_rows


def merged_sha256s(processed_dir: Path) -> set[str]:
    """SHA-256 of every incoming file already merged (from the ``processed/`` records).

    Args:
        processed_dir: A catalogue's ``processed/`` folder; the ``sha256`` of each JSON
            record there (:func:`pipeline.refresh.incoming_files.finish_merged_file`) is read,
            other files are skipped.

    Returns:
        The hex digests (empty when the folder does not exist).
    """
    out: set[str] = set()
    if not processed_dir.is_dir():
        return out
    for record in processed_dir.glob("*.json"):
        try:
            sha = json.loads(record.read_text(encoding="utf-8")).get("sha256")
        except (OSError, ValueError, AttributeError):
            continue  # not a record of ours
        if isinstance(sha, str):
            out.add(sha)
    return out
