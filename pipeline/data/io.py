"""Storage of processed catalogues (netCDF-4), rejects tables, and small JSON files.

Only numpy/pandas/xarray are imported here, so stages that just load processed catalogues
(split, train, evaluate) do not depend on the reading and validation code.

Every writer is atomic: it writes a temporary file in the destination folder and moves it
into place with :func:`os.replace`, so a reader never sees a half-written file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray

from pipeline.atomic import atomic_write
from pipeline.data.errors import CatalogueError

__all__ = [
    "NETCDF_ENGINE",
    "REJECT_COLUMNS",
    "atomic_write",
    "load_processed",
    "load_xyz",
    "write_json",
    "write_processed",
    "write_rejects",
]

NETCDF_ENGINE: Literal["netcdf4"] = "netcdf4"
REJECT_COLUMNS = ("line_number", "raw_line", "reason")
_REQUIRED_VARS = ("lat", "lon", "x", "y", "z", "source_line")


def write_processed(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a processed catalogue to netCDF-4 atomically.

    Args:
        ds: Output of :func:`pipeline.data.dataset.catalogue_to_dataset`.
        path: Destination ``.nc`` file.

    Returns:
        The destination path.
    """
    encoding = {name: {"_FillValue": None} for name in ds.variables}

    def write(tmp: Path) -> None:
        ds.to_netcdf(tmp, engine=NETCDF_ENGINE, format="NETCDF4", encoding=encoding)

    return atomic_write(path, write)


_NETCDF_LOCK = threading.Lock()


def load_processed(path: str | Path) -> xr.Dataset:
    """Load a processed catalogue fully into memory (the file is closed on return).

    Args:
        path: A ``.nc`` file written by :func:`write_processed`.

    Returns:
        The dataset (dimension ``event`` of size N).

    Raises:
        CatalogueError: If the file is missing or lacks a required variable.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogueError(f"{path}: processed catalogue not found (run the ingest stage)")
    # The netCDF4/HDF5 C library is not thread-safe: seeds fanned out on threads open the
    # same file at once, which crashes without this lock.
    with _NETCDF_LOCK, xr.open_dataset(path, engine=NETCDF_ENGINE) as ds:
        loaded = ds.load()
    missing = [v for v in _REQUIRED_VARS if v not in loaded.variables]
    if missing:
        raise CatalogueError(f"{path}: not a processed catalogue, missing variables {missing}")
    return loaded


def load_xyz(path: str | Path) -> NDArray[np.float64]:
    """Load the events of a processed catalogue as points on S².

    Args:
        path: A ``.nc`` file written by :func:`write_processed`.

    Returns:
        Array of shape (N, 3), float64, rows (x, y, z) in processed (event) order.
    """
    ds = load_processed(path)
    return np.stack([ds[c].to_numpy().astype(np.float64) for c in ("x", "y", "z")], axis=-1)


def write_rejects(rejects: pd.DataFrame, path: str | Path) -> Path:
    """Write a rejects table (``line_number, raw_line, reason``) as CSV atomically.

    Args:
        rejects: The table (may be empty: the file then holds only the header).
        path: Destination ``.csv`` file.

    Returns:
        The destination path.
    """
    missing = [c for c in REJECT_COLUMNS if c not in rejects.columns]
    if missing:
        raise CatalogueError(f"{path}: rejects table lacks columns {missing}")
    frame = rejects.loc[:, list(REJECT_COLUMNS)]

    def write(tmp: Path) -> None:
        frame.to_csv(tmp, index=False, lineterminator="\n")

    return atomic_write(path, write)


def write_json(obj: Mapping[str, Any], path: str | Path) -> Path:
    """Write a JSON object (sorted keys, indented, final newline) atomically.

    Args:
        obj: JSON-serialisable mapping.
        path: Destination file.

    Returns:
        The destination path.
    """
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
