"""Read, validate and de-duplicate incoming catalogue files; append them to the raw file.

This module imports no prefect; :mod:`pipeline.flows.refresh` runs it inside the refresh
transaction (:mod:`pipeline.flows.refresh_journal`).

Planning (:func:`plan_catalogue`, :func:`plan_batch`) only reads: it decides, for every
incoming file, whether it is quarantined (with all its reasons) or merged, and which of its
rows are new events, and computes the raw file's new bytes. Applying the plan is separate:
:func:`replace_raw_file` (one atomic :func:`os.replace` per raw file),
:func:`finish_merged_file` (the incoming file moves to ``processed/`` with its records) and
:func:`quarantine_file`.

**Event identity** (:func:`event_identity`): an incoming row is first laid out in the raw
file's columns (fields matched by header name, missing ones empty, extra ones dropped).
Two rows are the same event when all of those fields are equal after whitespace
normalisation (leading/trailing whitespace stripped, inner runs collapsed to one space),
with latitude and longitude compared as numbers (longitude normalised to [-180, 180), so
``30.780`` equals ``30.78`` and ``190`` equals ``-170``); other fields compare as text,
case-sensitively. A valid incoming row identical to a valid raw row, or to a row appended
earlier in the same refresh, is a duplicate: dropped and counted. A new eruption at a known
volcano with a different date is a new event — when the raw layout has a date column. When
the raw layout is latitude and longitude only (as the shipped raw files are), the identity
is the location.

**Catalogues that record repeats** (:func:`records_repeats`): when the raw file itself holds
rows with the same identity (volcano: 827 eruptions as 827 rows at 267 locations, 560 of
them repeats), a repeated row is how the catalogue records a repeated event, so rows are not
matched against it; there a file is a duplicate only as a whole, when its bytes were already
merged (its SHA-256 is in a ``processed/`` record) or appear earlier in the same batch.

**Unreadable files**: a file that cannot be read for any reason (an ``OSError``, bytes that
are not UTF-8, NUL bytes, a CSV error such as a field over csv's 128 KB limit, any
:class:`~pipeline.data.errors.CatalogueError` of the reader or the validation, the reject
budget) is quarantined with every reason found; the rest of the batch goes on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from pipeline.data.errors import CatalogueError
from pipeline.data.io import atomic_write, write_rejects
from pipeline.data.readers import RawLine, RawTable, read_raw
from pipeline.data.registry import CatalogueSpec
from pipeline.data.validation import Catalogue, check_rejects, validate_table
from pipeline.flows.refresh_errors import RefreshError

__all__ = [
    "BatchPlan",
    "CataloguePlan",
    "FilePlan",
    "IncomingOutcome",
    "PlannedMove",
    "appended_bytes",
    "event_identity",
    "finish_merged_file",
    "plan_batch",
    "plan_catalogue",
    "plan_move",
    "quarantine_file",
    "record_paths",
    "replace_raw_file",
]

#: Longest reason text kept per problem (a 200 KB field is not copied into the reasons).
_MAX_REASON_CHARS = 600
#: Rejected lines listed in the reasons of a file over its reject budget.
_MAX_LISTED_REJECTS = 20


@dataclass(frozen=True)
class IncomingOutcome:
    """What happened to one incoming file.

    Attributes:
        catalogue: Catalogue name (the incoming sub-folder).
        source: The incoming file as found.
        status: ``"merged"`` or ``"quarantined"``.
        moved_to: Where the file is now (under ``processed/`` or ``quarantine/``).
        n_rows_read: Data lines examined (0 when the file could not be read).
        n_appended: Rows appended to the raw file.
        n_duplicates: Valid rows dropped as duplicates of existing events.
        n_rejected: Rows rejected by validation (not appended).
        reasons: Why the file was quarantined (empty when merged).
    """

    catalogue: str
    source: Path
    status: str
    moved_to: Path
    n_rows_read: int = 0
    n_appended: int = 0
    n_duplicates: int = 0
    n_rejected: int = 0
    reasons: str = ""


@dataclass(frozen=True)
class FilePlan:
    """The decision for one incoming file (nothing applied yet).

    Attributes:
        catalogue: Catalogue name.
        source: The incoming file.
        reasons: Why it must be quarantined, one problem per line; empty when it merges.
        sha256: Hex SHA-256 of its bytes (empty when unreadable).
        new_lines: Text of its new events, laid out in the raw file's columns, in order.
        n_rows_read: Data lines examined.
        n_valid: Valid rows.
        n_duplicates: Valid rows that are duplicates (see :func:`event_identity`).
        rejects: Rejected rows (columns ``line_number, raw_line, reason``), or ``None``.
        raw_sha256_before: Raw file's SHA-256 before this file's rows are appended.
        raw_sha256_after: Raw file's SHA-256 after they are.
    """

    catalogue: str
    source: Path
    reasons: str = ""
    sha256: str = ""
    new_lines: tuple[str, ...] = ()
    n_rows_read: int = 0
    n_valid: int = 0
    n_duplicates: int = 0
    rejects: pd.DataFrame | None = None
    raw_sha256_before: str = ""
    raw_sha256_after: str = ""

    @property
    def quarantined(self) -> bool:
        """True when the file cannot be merged."""
        return bool(self.reasons)

    @property
    def n_rejected(self) -> int:
        """Rejected rows (not appended)."""
        return 0 if self.rejects is None else len(self.rejects)


@dataclass(frozen=True)
class CataloguePlan:
    """One catalogue's part of a refresh: its raw file's bytes before and after.

    Attributes:
        spec: The catalogue's reading spec.
        raw_path: Its raw file.
        old: The raw file's bytes before the refresh.
        new: Its bytes after appending every merged file's new events (``old`` if none).
        files: The files to merge, in processing order.
        quarantined: The files to quarantine, in processing order.
    """

    spec: CatalogueSpec
    raw_path: Path
    old: bytes
    new: bytes
    files: tuple[FilePlan, ...] = ()
    quarantined: tuple[FilePlan, ...] = ()

    @property
    def changed(self) -> bool:
        """True when the raw file gets new rows."""
        return self.new != self.old

    @property
    def n_appended(self) -> int:
        """Rows appended to the raw file."""
        return sum(len(f.new_lines) for f in self.files)


@dataclass(frozen=True)
class BatchPlan:
    """The plan of a whole refresh batch.

    Attributes:
        catalogues: One plan per catalogue that has incoming files.
        order: Every incoming file's plan, in scan order.
    """

    catalogues: tuple[CataloguePlan, ...] = ()
    order: tuple[FilePlan, ...] = field(default_factory=tuple)

    @property
    def merging(self) -> list[FilePlan]:
        """Plans of the files to merge."""
        return [f for f in self.order if not f.quarantined]

    @property
    def quarantined(self) -> list[FilePlan]:
        """Plans of the files to quarantine."""
        return [f for f in self.order if f.quarantined]


@dataclass(frozen=True)
class PlannedMove:
    """Where a merged incoming file goes, decided before anything moves.

    Attributes:
        source: The incoming file.
        dest: Its place under ``processed/``.
        records: The record files written beside ``dest`` (JSON record, rejects).
    """

    source: Path
    dest: Path
    records: tuple[Path, ...]


def stamp(now: datetime) -> str:
    """Compact UTC timestamp used in file names and version ids."""
    return now.strftime("%Y%m%dT%H%M%S%fZ")


def _write_text_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _clip(text: str, limit: int = _MAX_REASON_CHARS) -> str:
    """One line of at most ``limit`` characters (huge fields are not copied whole)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else f"{flat[:limit]}... ({len(flat):,} characters)"


def _line_ending(data: bytes) -> bytes:
    """The raw file's line ending: CRLF if it has one, else CR-only, else LF."""
    if b"\r\n" in data:
        return b"\r\n"
    if b"\r" in data:
        return b"\r"
    return b"\n"


def _line_of_offset(data: bytes, offset: int) -> int:
    """1-based line number of a byte offset (LF, CRLF or CR line endings)."""
    head = data[:offset].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return head.count(b"\n") + 1


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


def _relayout(row: RawLine, incoming: RawTable, raw: RawTable) -> tuple[tuple[str, ...], str]:
    """Fields and text of an incoming row laid out in the raw file's columns.

    Verbatim when both files have the same columns; otherwise the raw file's fields are
    filled from the incoming fields of the same header name (latitude and longitude by
    their resolved columns), others left empty, and the text is CSV-quoted as needed.
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


def appended_bytes(old: bytes, lines: Sequence[str]) -> bytes:
    """The raw file's bytes with ``lines`` appended, keeping its conventions.

    The old bytes stay a byte-for-byte prefix; the line ending (LF, CRLF or CR) and the
    final-newline convention of the raw file are kept.

    Args:
        old: The raw file's bytes.
        lines: Lines to append (without line endings).

    Returns:
        The new bytes (``old`` when ``lines`` is empty).
    """
    if not lines:
        return old
    eol = _line_ending(old)
    ends_with_eol = old.endswith((b"\n", b"\r"))
    body = eol.join(line.encode("utf-8") for line in lines)
    return old + (b"" if ends_with_eol or not old else eol) + body + (eol if ends_with_eol else b"")


def _describe(exc: BaseException, path: Path) -> str:
    """One line for an exception raised while reading an incoming file."""
    if isinstance(exc, CatalogueError):
        return _clip(str(exc))
    return _clip(f"{path}: unreadable ({type(exc).__name__}: {exc})")


def _read_incoming(
    path: Path, spec: CatalogueSpec, max_reject_fraction: float
) -> tuple[list[str], RawTable | None, Catalogue | None]:
    """Read and validate one incoming file; collect every reason it cannot merge.

    Returns:
        (reasons, table, catalogue); the table and catalogue are ``None`` when unreadable.
        The file can merge iff ``reasons`` is empty.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [_clip(f"{path}: cannot read the file ({exc})")], None, None
    reasons: list[str] = []
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1]
        reasons.append(
            f"{path}: line {_line_of_offset(data, exc.start)}: not UTF-8 text (byte {bad!r} "
            f"at offset {exc.start}: {exc.reason})"
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        reasons.append(
            f"{path}: line {_line_of_offset(data, nul)}: NUL byte at offset {nul} (a binary "
            "file, not CSV text)"
        )
    try:
        table = read_raw(path, spec)
        cat = validate_table(table, spec.name)
    except Exception as exc:  # any failure to read this file is one of its reasons
        reasons.append(_describe(exc, path))
        return reasons, None, None
    try:
        check_rejects(cat, max_reject_fraction)
    except CatalogueError as exc:
        reasons.append(_clip(str(exc)))
        listed = cat.rejects.head(_MAX_LISTED_REJECTS).itertuples()
        reasons.extend(f"  line {r.line_number}: {_clip(str(r.reason), 200)}" for r in listed)
        if cat.n_rejected > _MAX_LISTED_REJECTS:
            reasons.append(f"  ... and {cat.n_rejected - _MAX_LISTED_REJECTS} more rejected")
    return reasons, table, cat


def records_repeats(n_distinct: int, n_rows: int) -> bool:
    """Whether a raw catalogue records repeated events as repeated rows (see the module doc).

    Args:
        n_distinct: Distinct event identities among its valid rows.
        n_rows: Its valid rows.
    """
    return n_distinct < n_rows


def _merged_sha256s(processed_dir: Path) -> set[str]:
    """SHA-256 of every incoming file already merged (from the ``processed/`` records)."""
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


def plan_catalogue(
    spec: CatalogueSpec, raw_path: Path, paths: Sequence[Path], max_reject_fraction: float
) -> CataloguePlan:
    """Decide what to do with a catalogue's incoming files (reads only, changes nothing).

    Files are taken in order; a row that duplicates a raw event or a row of an earlier
    file of the batch (see :func:`event_identity`) is dropped and counted.

    Args:
        spec: The catalogue's reading spec.
        raw_path: Its raw file.
        paths: Its incoming files, in processing order.
        max_reject_fraction: The ingest reject budget.

    Returns:
        The catalogue's plan.

    Raises:
        RefreshError: If the raw catalogue itself cannot be read.
    """
    try:
        old = raw_path.read_bytes()
        raw = read_raw(raw_path, spec)
        raw_cat = validate_table(raw, spec.name)
    except (CatalogueError, OSError, ValueError, csv.Error) as exc:
        raise RefreshError(
            f"{raw_path}: the raw catalogue {spec.name!r} cannot be read, so nothing was "
            f"changed: {_clip(str(exc))}"
        ) from exc
    if raw.sha256 != hashlib.sha256(old).hexdigest():
        raise RefreshError(f"{raw_path}: changed while it was being read; nothing was changed")
    raw_rows = {row.line_number: row for row in raw.rows}
    seen = {
        event_identity(raw_rows[int(n)].fields, la, lo, raw.lat_index, raw.lon_index)
        for la, lo, n in zip(raw_cat.lat, raw_cat.lon, raw_cat.source_line, strict=True)
    }
    repeats = records_repeats(len(seen), len(raw_cat.lat))
    delivered = _merged_sha256s(paths[0].parent / "processed") if repeats and paths else set()
    merged: list[FilePlan] = []
    bad: list[FilePlan] = []
    lines: list[str] = []
    for path in paths:
        reasons, table, cat = _read_incoming(path, spec, max_reject_fraction)
        if reasons or table is None or cat is None:
            bad.append(FilePlan(spec.name, path, reasons="\n".join(reasons)))
            continue
        by_line = {row.line_number: row for row in table.rows}
        new_lines: list[str] = []
        n_dup = 0
        redelivered = repeats and table.sha256 in delivered
        delivered.add(table.sha256)
        for la, lo, n in zip(cat.lat, cat.lon, cat.source_line, strict=True):
            fields, text = _relayout(by_line[int(n)], table, raw)
            key = event_identity(fields, la, lo, raw.lat_index, raw.lon_index)
            if redelivered or (key in seen and not repeats):
                n_dup += 1
                continue
            seen.add(key)
            new_lines.append(text)
        before = hashlib.sha256(appended_bytes(old, lines)).hexdigest()
        lines.extend(new_lines)
        merged.append(
            FilePlan(
                spec.name,
                path,
                sha256=table.sha256,
                new_lines=tuple(new_lines),
                n_rows_read=cat.n_rows_read,
                n_valid=cat.n_valid,
                n_duplicates=n_dup,
                rejects=cat.rejects,
                raw_sha256_before=before,
                raw_sha256_after=hashlib.sha256(appended_bytes(old, lines)).hexdigest(),
            )
        )
    new = appended_bytes(old, lines)
    if not new.startswith(old):  # pragma: no cover - guards the append-only contract
        raise RefreshError(f"{raw_path}: refusing a write that is not an append")
    return CataloguePlan(spec, raw_path, old, new, tuple(merged), tuple(bad))


def plan_batch(
    items: Sequence[tuple[str, Path]],
    specs: Mapping[str, CatalogueSpec],
    raw_dir: Path,
    max_reject_fraction: float,
) -> BatchPlan:
    """Plan a whole batch of incoming files (reads only, changes nothing).

    Args:
        items: (catalogue, file) pairs in processing order (:func:`scan_incoming`).
        specs: Catalogue name -> reading spec.
        raw_dir: Folder of the raw catalogue files.
        max_reject_fraction: The ingest reject budget.

    Returns:
        The batch plan.

    Raises:
        RefreshError: If the raw file of a catalogue with incoming files cannot be read.
    """
    names = list(dict.fromkeys(name for name, _ in items))
    plans = tuple(
        plan_catalogue(
            specs[name],
            raw_dir / specs[name].file,
            [p for n, p in items if n == name],
            max_reject_fraction,
        )
        for name in names
    )
    by_source = {f.source: f for cp in plans for f in (*cp.files, *cp.quarantined)}
    return BatchPlan(plans, tuple(by_source[p] for _, p in items))


def replace_raw_file(path: Path, old: bytes, new: bytes) -> None:
    """Write a raw file's new bytes atomically (temporary file + :func:`os.replace`).

    Args:
        path: The raw file.
        old: Its bytes as planned on (they must still be its bytes).
        new: Its new bytes; ``old`` must be a prefix.

    Raises:
        RefreshError: If the file changed since it was planned, or ``new`` is not an append.
    """
    if not new.startswith(old):
        raise RefreshError(f"{path}: refusing a write that is not an append")
    if path.read_bytes() != old:
        raise RefreshError(f"{path}: changed since the refresh read it; not overwritten")
    atomic_write(path, lambda tmp: tmp.write_bytes(new))


def record_paths(dest: Path) -> tuple[Path, Path]:
    """The JSON record and the rejects table written beside a processed file."""
    return dest.with_name(dest.name + ".json"), dest.with_name(dest.stem + ".rejects.csv")


def _free(dest: Path) -> bool:
    return not dest.exists() and not any(p.exists() for p in record_paths(dest))


def plan_move(source: Path, now: datetime) -> PlannedMove:
    """Choose a merged file's place under ``processed/`` (timestamped when taken).

    Args:
        source: The incoming file.
        now: Timestamp for a name that is taken.

    Returns:
        The planned move (nothing is moved).
    """
    folder = source.parent / "processed"
    dest = folder / source.name
    if not _free(dest):
        dest = folder / f"{source.stem}.{stamp(now)}{source.suffix}"
    return PlannedMove(source, dest, record_paths(dest))


def _move_unique(src: Path, dest_dir: Path, now: datetime) -> Path:
    """Move ``src`` into ``dest_dir``, adding a timestamp when the name is taken."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    if dest.exists():
        dest = dest_dir / f"{src.stem}.{stamp(now)}{src.suffix}"
    os.replace(src, dest)
    return dest


def quarantine_file(plan: FilePlan, now: datetime) -> IncomingOutcome:
    """Move an unreadable file to ``quarantine/`` beside ``<name>.reasons.txt``.

    Args:
        plan: The file's plan (with its reasons).
        now: Timestamp for the reasons file and for a name that is taken.

    Returns:
        The outcome (status ``"quarantined"``).
    """
    path = plan.source
    dest = _move_unique(path, path.parent / "quarantine", now)
    _write_text_atomic(
        dest.with_name(dest.name + ".reasons.txt"),
        f"file: {path.name}\ncatalogue: {plan.catalogue}\nquarantined: {now.isoformat()}\n"
        f"reasons:\n{plan.reasons}\n",
    )
    return IncomingOutcome(plan.catalogue, path, "quarantined", dest, reasons=plan.reasons)


def finish_merged_file(
    plan: FilePlan, raw_path: Path, move: PlannedMove, now: datetime
) -> IncomingOutcome:
    """Move a merged file to ``processed/`` and write its JSON record (and rejects).

    Call it after the raw file holds the file's rows (:func:`replace_raw_file`).

    Args:
        plan: The file's plan.
        raw_path: The raw file its rows went to.
        move: Where it goes (:func:`plan_move`).
        now: Timestamp of the record.

    Returns:
        The outcome (status ``"merged"``).
    """
    move.dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(move.source, move.dest)
    record_json, rejects_csv = record_paths(move.dest)
    record = {
        "file": plan.source.name,
        "catalogue": plan.catalogue,
        "processed": now.isoformat(),
        "sha256": plan.sha256,
        "raw_file": raw_path.name,
        "raw_sha256_before": plan.raw_sha256_before,
        "raw_sha256_after": plan.raw_sha256_after,
        "n_rows_read": plan.n_rows_read,
        "n_valid": plan.n_valid,
        "n_appended": len(plan.new_lines),
        "n_duplicates": plan.n_duplicates,
        "n_rejected": plan.n_rejected,
    }
    _write_text_atomic(record_json, json.dumps(record, indent=2) + "\n")
    if plan.rejects is not None and plan.n_rejected:
        write_rejects(plan.rejects, rejects_csv)
    return IncomingOutcome(
        plan.catalogue,
        plan.source,
        "merged",
        move.dest,
        n_rows_read=plan.n_rows_read,
        n_appended=len(plan.new_lines),
        n_duplicates=plan.n_duplicates,
        n_rejected=plan.n_rejected,
    )
