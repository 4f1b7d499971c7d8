"""Planning a ``geosgm refresh`` batch: what each incoming file does to its raw catalogue.

This module imports no prefect; :mod:`pipeline.refresh.flow` plans the whole batch before
anything changes and applies the plan inside the refresh transaction
(:mod:`pipeline.refresh.journal`).

Planning (:func:`plan_catalogue`, :func:`plan_batch`) only reads: it decides, for every
incoming file, whether it is quarantined (with all its reasons,
:func:`pipeline.refresh.incoming_files.read_incoming`) or merged, and which of its rows are new
events (:mod:`pipeline.refresh.event_identity`), and computes the raw file's new bytes
(:func:`pipeline.refresh.raw_append.appended_bytes`). Applying the plan is separate:
:func:`pipeline.refresh.raw_append.replace_raw_file` (one atomic :func:`os.replace` per raw
file), :func:`pipeline.refresh.incoming_files.finish_merged_file` (the incoming file moves to
``processed/`` with its records) and :func:`pipeline.refresh.incoming_files.quarantine_file`.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data.errors import CatalogueError
from pipeline.data.readers import read_raw
from pipeline.data.registry import CatalogueSpec
from pipeline.data.validation import validate_table
from pipeline.refresh.errors import RefreshError
from pipeline.refresh.event_identity import (
    event_identity,
    merged_sha256s,
    records_repeats,
    relayout,
)
from pipeline.refresh.incoming_files import FilePlan, clip_reason, read_incoming
from pipeline.refresh.raw_append import appended_bytes

__all__ = ["BatchPlan", "CataloguePlan", "plan_batch", "plan_catalogue"]


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


def plan_catalogue(
    spec: CatalogueSpec, raw_path: Path, paths: Sequence[Path], max_reject_fraction: float
) -> CataloguePlan:
    """Decide what to do with a catalogue's incoming files (reads only, changes nothing).

    Files are taken in order; a row that duplicates a raw event or a row of an earlier
    file of the batch (see :func:`pipeline.refresh.event_identity.event_identity`) is dropped
    and counted.

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
            f"changed: {clip_reason(str(exc))}"
        ) from exc
    if raw.sha256 != hashlib.sha256(old).hexdigest():
        raise RefreshError(f"{raw_path}: changed while it was being read; nothing was changed")
    raw_rows = {row.line_number: row for row in raw.rows}
    seen = {
        event_identity(raw_rows[int(n)].fields, la, lo, raw.lat_index, raw.lon_index)
        for la, lo, n in zip(raw_cat.lat, raw_cat.lon, raw_cat.source_line, strict=True)
    }
    repeats = records_repeats(len(seen), len(raw_cat.lat))
    delivered = merged_sha256s(paths[0].parent / "processed") if repeats and paths else set()
    merged: list[FilePlan] = []
    bad: list[FilePlan] = []
    lines: list[str] = []
    for path in paths:
        reasons, table, cat = read_incoming(path, spec, max_reject_fraction)
        if reasons or table is None or cat is None:
            bad.append(FilePlan(spec.name, path, reasons="\n".join(reasons)))
            continue
        by_line = {row.line_number: row for row in table.rows}
        new_lines: list[str] = []
        n_dup = 0
        redelivered = repeats and table.sha256 in delivered
        delivered.add(table.sha256)
        for la, lo, n in zip(cat.lat, cat.lon, cat.source_line, strict=True):
            fields, text = relayout(by_line[int(n)], table, raw)
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
        items: (catalogue, file) pairs in processing order
            (:func:`pipeline.refresh.flow.scan_incoming`).
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
