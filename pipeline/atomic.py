"""Atomic file writes: a half-written output never replaces a good one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_copy_tree", "atomic_write"]


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


def atomic_copy_tree(src: str | Path, dest: str | Path) -> Path:
    """Replace the folder ``dest`` by a copy of ``src``, never leaving a partial copy there.

    The copy is made in a temporary folder beside ``dest``; the old ``dest`` is moved aside
    and deleted only after the new one is in place. Files are copied with their bytes only
    (no timestamps), so the copy hashes like the original.

    Args:
        src: Folder to copy.
        dest: Destination folder (its parent is created).

    Returns:
        ``dest``.

    Raises:
        FileNotFoundError: If ``src`` is not a folder.
    """
    src, dest = Path(src), Path(dest)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such folder to copy")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    old = dest.parent / f"{tmp.name}.old"
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True, copy_function=shutil.copyfile)
        tmp.chmod(0o755)  # mkdtemp creates 0700
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return dest
