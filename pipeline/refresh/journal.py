"""The refresh transaction: backups and a journal so that a refresh is all or nothing.

Before a refresh changes anything it copies every file it will change (the raw catalogues
that get rows, ``reports/version_comparison.json``) to ``data/.refresh-backup/`` and then
writes the journal ``data/.refresh.journal.json`` (atomically) naming those files with their
SHA-256, the planned moves of the incoming files to ``processed/`` with their record files,
and the commit marker: ``reports/versions.json`` with its SHA-256 before the refresh.

* :meth:`RefreshTransaction.rollback` restores every guarded file byte for byte (a
  temporary copy moved into place with :func:`os.replace`, or removed when it did not exist),
  removes the records and moves the incoming files back from ``processed/``.
* :meth:`RefreshTransaction.commit` deletes the journal, then the backups.
* The refresh is committed once the commit marker changed (the new version was written;
  without ``dvc repro`` there is no marker and deleting the journal commits).

:func:`recover_interrupted` runs at the start of every refresh, under the lock: a journal
left by a killed refresh is rolled back (or, when its version was recorded, committed),
and backups without a journal (a kill before the journal existed, when nothing had changed
yet) are removed. Rollback is idempotent, so a kill during a rollback is finished by the
next refresh. The guarantees hold when the process dies (``kill -9``, out of memory); no
``fsync`` is done, so a power loss is not covered.

Over 400 lines on purpose (issue 18): the backups, the journal, the rollback and the recovery
of an interrupted refresh are one protocol; each half only makes sense with the other's file
format, and a split would pass the journal's private layout between modules.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.data.io import atomic_write
from pipeline.refresh.batch_plan import BatchPlan
from pipeline.refresh.errors import RefreshError
from pipeline.refresh.incoming_files import (
    IncomingOutcome,
    PlannedMove,
    finish_merged_file,
    plan_move,
)
from pipeline.refresh.raw_append import replace_raw_file

__all__ = [
    "BACKUP_DIR",
    "JOURNAL_NAME",
    "RefreshTransaction",
    "RollbackReport",
    "Step",
    "apply_in_transaction",
    "recover_interrupted",
]

JOURNAL_NAME = "data/.refresh.journal.json"
BACKUP_DIR = "data/.refresh-backup"
_FORMAT = 1

_log = logging.getLogger("pipeline.refresh.flow")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str | None:
    return _sha256(path.read_bytes()) if path.is_file() else None


def _restore(path: Path, data: bytes) -> None:
    """Put ``data`` back at ``path``: a temporary copy moved into place with os.replace."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    atomic_write(path, write)


@dataclass(frozen=True)
class RollbackReport:
    """What a rollback put back.

    Attributes:
        restored: Guarded files whose pre-refresh bytes were put back (or that were removed
            because they did not exist before), relative to the project.
        moved_back: Incoming files moved back from ``processed/``, relative to the project.
    """

    restored: tuple[str, ...] = ()
    moved_back: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: what was restored and moved back."""
        restored = ", ".join(self.restored) if self.restored else "nothing had changed yet"
        return (
            f"data/raw restored to its pre-refresh bytes (put back: {restored}); "
            f"{len(self.moved_back)} incoming file(s) moved back to data/incoming/"
        )


@dataclass
class RefreshTransaction:
    """An open refresh transaction (see the module docstring).

    Attributes:
        repo_dir: Project root.
        started: ISO timestamp of the refresh.
        before: Guarded file -> its bytes before the refresh (``None``: it did not exist).
        moves: The planned moves of merged incoming files.
        marker: The commit marker (``reports/versions.json``), or ``None``.
        marker_sha256: The marker's SHA-256 before the refresh (``None``: it did not exist).
    """

    repo_dir: Path
    started: str
    before: dict[Path, bytes | None] = field(default_factory=dict)
    moves: tuple[PlannedMove, ...] = ()
    marker: Path | None = None
    marker_sha256: str | None = None

    @property
    def journal_path(self) -> Path:
        """The journal file."""
        return self.repo_dir / JOURNAL_NAME

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.repo_dir).as_posix()
        except ValueError:
            return str(path)

    def _abs(self, rel: str) -> Path:
        return self.repo_dir / rel

    @classmethod
    def begin(
        cls,
        repo_dir: Path,
        guarded: Sequence[Path],
        moves: Sequence[PlannedMove],
        marker: Path | None,
        now: datetime,
    ) -> RefreshTransaction:
        """Back up the files a refresh will change and write the journal.

        Nothing the refresh changes is touched; call this before the first change.

        Args:
            repo_dir: Project root.
            guarded: Files the refresh may change (raw catalogues, the comparison file).
            moves: The planned moves of the merged incoming files.
            marker: The commit marker (``reports/versions.json``), or ``None`` when the
                refresh records no version.
            now: Start time of the refresh.

        Returns:
            The open transaction.
        """
        txn = cls(
            repo_dir=repo_dir,
            started=now.isoformat(),
            before={p: (p.read_bytes() if p.is_file() else None) for p in guarded},
            moves=tuple(moves),
            marker=marker,
            marker_sha256=_file_sha256(marker) if marker is not None else None,
        )
        backup_dir = repo_dir / BACKUP_DIR
        shutil.rmtree(backup_dir, ignore_errors=True)
        backup_dir.mkdir(parents=True)
        files: list[dict[str, Any]] = []
        for i, (path, data) in enumerate(txn.before.items()):
            backup = None
            if data is not None:
                backup = backup_dir / f"{i}-{path.name}"
                backup.write_bytes(data)
            files.append(
                {
                    "path": txn._rel(path),
                    "backup": None if backup is None else txn._rel(backup),
                    "sha256_before": None if data is None else _sha256(data),
                }
            )
        journal = {
            "format": _FORMAT,
            "started": txn.started,
            "pid": os.getpid(),
            "files": files,
            "moves": [
                {
                    "source": txn._rel(m.source),
                    "dest": txn._rel(m.dest),
                    "records": [txn._rel(r) for r in m.records],
                }
                for m in txn.moves
            ],
            "commit_marker": None
            if marker is None
            else {"path": txn._rel(marker), "sha256_before": txn.marker_sha256},
        }
        text = json.dumps(journal, indent=2) + "\n"
        atomic_write(txn.journal_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return txn

    @classmethod
    def load(cls, repo_dir: Path) -> RefreshTransaction | None:
        """The transaction of an interrupted refresh, from its journal.

        Args:
            repo_dir: Project root.

        Returns:
            The transaction, or ``None`` when there is no journal.

        Raises:
            RefreshError: If the journal or a backup it needs is unreadable or corrupt.
        """
        path = repo_dir / JOURNAL_NAME
        if not path.is_file():
            return None
        try:
            journal = json.loads(path.read_text(encoding="utf-8"))
            txn = cls(repo_dir=repo_dir, started=str(journal["started"]))
            for entry in journal["files"]:
                target = txn._abs(entry["path"])
                if entry["backup"] is None:
                    txn.before[target] = None
                    continue
                data = txn._abs(entry["backup"]).read_bytes()
                if _sha256(data) != entry["sha256_before"]:
                    raise RefreshError(f"backup {entry['backup']} does not match the journal")
                txn.before[target] = data
            txn.moves = tuple(
                PlannedMove(
                    txn._abs(m["source"]),
                    txn._abs(m["dest"]),
                    tuple(txn._abs(r) for r in m["records"]),
                )
                for m in journal["moves"]
            )
            marker = journal.get("commit_marker")
            if marker is not None:
                txn.marker = txn._abs(marker["path"])
                txn.marker_sha256 = marker["sha256_before"]
        except (OSError, ValueError, KeyError, TypeError, RefreshError) as exc:
            raise RefreshError(
                f"{path}: an interrupted refresh left this journal, but it cannot be used "
                f"({exc}); restore data/raw from {BACKUP_DIR}/ or git by hand, then delete it"
            ) from exc
        return txn

    def committed(self) -> bool:
        """True when the commit marker changed: the refresh recorded its version."""
        return self.marker is not None and _file_sha256(self.marker) != self.marker_sha256

    def rollback(self) -> RollbackReport:
        """Undo the refresh: restore the guarded files, move the incoming files back.

        Idempotent; the journal and the backups are deleted only once everything is back.

        Returns:
            What was restored.
        """
        restored: list[str] = []
        for path, data in self.before.items():
            if data is None:
                if path.exists():
                    path.unlink()
                    restored.append(self._rel(path))
            elif not path.is_file() or path.read_bytes() != data:
                _restore(path, data)
                restored.append(self._rel(path))
        moved_back: list[str] = []
        for move in reversed(self.moves):
            for record in move.records:
                record.unlink(missing_ok=True)
            if move.dest.exists() and not move.source.exists():
                move.source.parent.mkdir(parents=True, exist_ok=True)
                os.replace(move.dest, move.source)
                moved_back.append(self._rel(move.source))
            try:
                move.dest.parent.rmdir()  # processed/, when the refresh left it empty
            except OSError:
                pass
        self._clear()
        return RollbackReport(tuple(restored), tuple(reversed(moved_back)))

    def commit(self) -> None:
        """Keep the refresh's changes: delete the journal, then the backups."""
        self._clear()

    def _clear(self) -> None:
        self.journal_path.unlink(missing_ok=True)
        shutil.rmtree(self.repo_dir / BACKUP_DIR, ignore_errors=True)


def recover_interrupted(repo_dir: Path) -> str | None:
    """Finish or undo a refresh that was killed; call it under the refresh lock.

    Args:
        repo_dir: Project root.

    Returns:
        One line saying what was done, or ``None`` when no refresh was interrupted.

    Raises:
        RefreshError: If the journal cannot be used (the data are then left as they are).
    """
    txn = RefreshTransaction.load(repo_dir)
    if txn is None:
        shutil.rmtree(repo_dir / BACKUP_DIR, ignore_errors=True)  # killed before the journal
        return None
    if txn.committed():
        txn.commit()
        return (
            f"a refresh started {txn.started} was interrupted after recording its version: "
            "its changes are kept"
        )
    report = txn.rollback()
    return f"a refresh started {txn.started} was interrupted and rolled back: {report.describe()}"


@dataclass
class Step:
    """What a refresh is doing, for the message of a failure.

    Attributes:
        name: The current step, e.g. ``"`dvc repro`"``.
    """

    name: str


def apply_in_transaction(
    repo_dir: Path,
    plan: BatchPlan,
    now: datetime,
    finish: Callable[[list[IncomingOutcome], Step], None] | None = None,
    marker: Path | None = None,
    also_guard: Sequence[Path] = (),
    say: Callable[[str], None] = _log.info,
) -> list[IncomingOutcome]:
    """Merge a planned batch, then run ``finish``, all or nothing.

    Opens the transaction (backups, then the journal), replaces each changed raw file,
    moves each merged file to ``processed/`` with its records, runs ``finish`` (the refresh
    flow's ``dvc repro`` and version record), and commits. On any exception before the
    commit marker changed, KeyboardInterrupt included, it rolls back and raises.

    Args:
        repo_dir: Project root.
        plan: The batch plan (:func:`pipeline.refresh.batch_plan.plan_batch`).
        now: Timestamp of the records and the journal.
        finish: Called with the merged files' outcomes and the :class:`Step` (to name what
            it is doing) once the data are in place; ``None`` to do nothing more.
        marker: The commit marker ``finish`` writes last (``reports/versions.json``), or
            ``None``: deleting the journal commits.
        also_guard: More files ``finish`` may change, restored on rollback.
        say: Progress logger.

    Returns:
        The merged files' outcomes, in plan order.

    Raises:
        RefreshError: If a step failed; the message says what failed and that data/raw
            was restored (or why the rollback could not finish: the journal is then kept).
        KeyboardInterrupt: Re-raised after the rollback.
    """
    moves = {f.source: plan_move(f.source, now) for f in plan.merging}
    guarded = [cp.raw_path for cp in plan.catalogues if cp.changed] + list(also_guard)
    txn = RefreshTransaction.begin(repo_dir, guarded, list(moves.values()), marker, now)
    outcomes: list[IncomingOutcome] = []
    step = Step("the append to data/raw")
    try:
        for cp in plan.catalogues:
            if cp.changed:
                replace_raw_file(cp.raw_path, cp.old, cp.new)
        step.name = "moving the merged files to processed/"
        for cp in plan.catalogues:
            for fp in cp.files:
                outcome = finish_merged_file(fp, cp.raw_path, moves[fp.source], now)
                outcomes.append(outcome)
                say(
                    f"{fp.catalogue}: merged {fp.source.name}: {outcome.n_appended} rows "
                    f"appended to {cp.raw_path.name}, {outcome.n_duplicates} duplicates "
                    f"dropped, {outcome.n_rejected} rejected"
                )
        if finish is not None:
            finish(outcomes, step)
    except BaseException as exc:
        if txn.committed():  # the version was recorded: the refresh is done
            txn.commit()
            raise
        verb = "was interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        what = f"{verb} at {step.name}"
        try:
            report = txn.rollback()
        except BaseException as rollback_exc:
            raise RefreshError(
                f"refresh {what}, and the rollback failed too ({rollback_exc}); "
                f"{JOURNAL_NAME} is kept, so the next refresh finishes the rollback. "
                f"Cause: {exc}"
            ) from exc
        message = f"refresh {what}, rolled back: {report.describe()}; no version recorded"
        say(message)
        if not isinstance(exc, Exception):
            raise
        raise RefreshError(f"{message}. Cause: {exc}") from exc
    txn.commit()
    return outcomes
