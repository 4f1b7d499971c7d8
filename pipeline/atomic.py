"""Atomic file writes: a half-written output never replaces a good one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: str | Path, write: Callable[[Path], object], suffix: str = ".tmp") -> Path:
    """Write a file atomically: ``write(tmp)`` in the same folder, then ``os.replace(tmp, path)``.

    The temporary file gets mode 0644 (``mkstemp`` creates 0600) and is removed on failure.

    Args:
        path: Destination; its parent folders are created.
        write: Callable that writes the complete file to the path it is given.
        suffix: Suffix of the temporary file (some writers infer the format from it).

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.chmod(0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
