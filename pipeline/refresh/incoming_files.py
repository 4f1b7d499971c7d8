"""One incoming catalogue file of ``geosgm refresh``: read, then merged or quarantined.

This module imports no prefect. :func:`read_incoming` reads and validates a file and
collects every reason it cannot merge; the planner
(:func:`pipeline.refresh.batch_plan.plan_catalogue`) turns that into the file's
:class:`FilePlan`. Applying the plan, inside the refresh transaction
(:mod:`pipeline.refresh.journal`): :func:`finish_merged_file` moves a merged file to
``processed/`` (at the place :func:`plan_move` chose) with its JSON record and rejects, and
:func:`quarantine_file` moves an unreadable one to ``quarantine/`` with its reasons. Each
gives the file's :class:`IncomingOutcome`.

**Unreadable files**: a file that cannot be read for any reason (an ``OSError``, bytes that
are not UTF-8, NUL bytes, a CSV error such as a field over csv's 128 KB limit, any
:class:`~pipeline.data.errors.CatalogueError` of the reader or the validation, the reject
budget) is quarantined with every reason found; the rest of the batch goes on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from pipeline.data.errors import CatalogueError
from pipeline.data.io import atomic_write, write_rejects
from pipeline.data.readers import RawTable, read_raw
from pipeline.data.registry import CatalogueSpec
from pipeline.data.validation import Catalogue, check_rejects, validate_table

__all__ = [
    "FilePlan",
    "IncomingOutcome",
    "PlannedMove",
    "clip_reason",
    "finish_merged_file",
    "plan_move",
    "quarantine_file",
    "read_incoming",
    "record_paths",
    "stamp",
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
        n_duplicates: Valid rows that are duplicates (see
            :func:`pipeline.refresh.event_identity.event_identity`).
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


def clip_reason(text: str, limit: int = _MAX_REASON_CHARS) -> str:
    """One line of at most ``limit`` characters (huge fields are not copied whole).

    Args:
        text: A reason or an error message.
        limit: Most characters kept.

    Returns:
        ``text`` with its whitespace runs collapsed, cut at ``limit`` with its length noted.
    """
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else f"{flat[:limit]}... ({len(flat):,} characters)"


def _line_of_offset(data: bytes, offset: int) -> int:
    """1-based line number of a byte offset (LF, CRLF or CR line endings)."""
    head = data[:offset].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return head.count(b"\n") + 1


def _describe(exc: BaseException, path: Path) -> str:
    """One line for an exception raised while reading an incoming file."""
    if isinstance(exc, CatalogueError):
        return clip_reason(str(exc))
    return clip_reason(f"{path}: unreadable ({type(exc).__name__}: {exc})")


def read_incoming(
    path: Path, spec: CatalogueSpec, max_reject_fraction: float
) -> tuple[list[str], RawTable | None, Catalogue | None]:
    """Read and validate one incoming file; collect every reason it cannot merge.

    Args:
        path: The incoming file.
        spec: Its catalogue's reading spec.
        max_reject_fraction: The ingest reject budget.

    Returns:
        (reasons, table, catalogue); the table and catalogue are ``None`` when unreadable.
        The file can merge iff ``reasons`` is empty.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [clip_reason(f"{path}: cannot read the file ({exc})")], None, None
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
        reasons.append(clip_reason(str(exc)))
        listed = cat.rejects.head(_MAX_LISTED_REJECTS).itertuples()
        reasons.extend(f"  line {r.line_number}: {clip_reason(str(r.reason), 200)}" for r in listed)
        if cat.n_rejected > _MAX_LISTED_REJECTS:
            reasons.append(f"  ... and {cat.n_rejected - _MAX_LISTED_REJECTS} more rejected")
    return reasons, table, cat


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

    Call it after the raw file holds the file's rows
    (:func:`pipeline.refresh.raw_append.replace_raw_file`).

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
