"""Appending new events to a raw catalogue file, append-only (``geosgm refresh``).

This module imports no prefect. :func:`appended_bytes` computes a raw file's new bytes (the
planner, :func:`pipeline.refresh.batch_plan.plan_catalogue`, calls it); :func:`replace_raw_file`
writes them, one atomic :func:`os.replace` per raw file, inside the refresh transaction
(:mod:`pipeline.refresh.journal`). The old bytes always stay a byte-for-byte prefix,
and the raw file's line ending and final-newline convention are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.data.io import atomic_write
from pipeline.refresh.errors import RefreshError

__all__ = ["appended_bytes", "replace_raw_file"]


def _line_ending(data: bytes) -> bytes:
    """The raw file's line ending: CRLF if it has one, else CR-only, else LF."""
    if b"\r\n" in data:
        return b"\r\n"
    if b"\r" in data:
        return b"\r"
    return b"\n"


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
