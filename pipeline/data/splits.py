"""Train/val/test splits of a processed catalogue, one split per seed.

Protocols:

* ``rsgm``: the published labels of the RSGM benchmark (De Bortoli et al. 2022), read from
  ``<name>_rsgm_splits_seed0-4.csv`` (columns ``row, seed0..seed4``; ``row`` is the 0-based
  data row). Sizes are ``[int(f_train N), int(f_val N), rest]``.
* ``hash``: each event's part is decided by a stable hash of the seed, its coordinates and
  its occurrence index among events with identical coordinates, mapped to [0, 1) and
  compared with the cumulative fractions. Appending events never moves an existing one.
* ``rsgm+hash``: the published labels for the labelled rows, ``hash`` for rows appended after
  them (a refresh can grow a benchmark catalogue without moving its published split).
* ``auto``: ``rsgm+hash`` where the catalogue has published labels, ``hash`` otherwise (see
  :func:`resolve_protocol`), so a new catalogue needs no split setting of its own.

A split table has columns ``event, seed<k>...`` with values ``train``/``val``/``test``, one
row per event in processed order.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from pipeline.data.errors import SplitError
from pipeline.data.io import atomic_write, load_xyz

__all__ = [
    "PARTS",
    "PROTOCOLS",
    "check_nonempty_parts",
    "hash_split",
    "load_split",
    "make_split",
    "published_labels_path",
    "published_split",
    "read_split",
    "resolve_protocol",
    "seed_column",
    "split_sizes",
    "write_split",
]

PARTS = ("train", "val", "test")
PROTOCOLS = ("rsgm", "hash", "rsgm+hash", "auto")
Protocol = Literal["rsgm", "hash", "rsgm+hash"]


def seed_column(seed: int) -> str:
    """Column name of a seed in a split table, e.g. ``seed0``."""
    return f"seed{seed}"


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3:
        raise SplitError(f"split fractions must be [train, val, test], got {list(fractions)}")
    f = tuple(float(v) for v in fractions)
    if any(not math.isfinite(v) or v < 0.0 for v in f) or abs(sum(f) - 1.0) > 1e-9:
        raise SplitError(f"split fractions must be >= 0 and sum to 1, got {list(fractions)}")
    return f[0], f[1], f[2]


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out) or any(s < 0 for s in out):
        raise SplitError(f"split seeds must be distinct non-negative integers, got {list(seeds)}")
    return out


def split_sizes(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Part sizes of the ``rsgm`` protocol: ``[int(f0 n), int(f1 n), rest]``.

    Args:
        n: Number of events.
        fractions: ``[train, val, test]`` fractions summing to 1.

    Returns:
        ``(n_train, n_val, n_test)``.
    """
    f = _check_fractions(fractions)
    # The small epsilon guards against products like 0.1 * 4870 = 486.99999999999994.
    n_train = int(f[0] * n + 1e-9)
    n_val = int(f[1] * n + 1e-9)
    return n_train, n_val, n - n_train - n_val


def published_labels_path(directory: str | Path, name: str) -> Path:
    """Published RSGM labels of a catalogue: ``<dir>/<name>_rsgm_splits_seed0-4.csv``."""
    return Path(directory) / f"{name}_rsgm_splits_seed0-4.csv"


def published_split(
    labels_path: str | Path,
    n_events: int,
    seeds: Sequence[int],
    fractions: Sequence[float],
) -> pd.DataFrame:
    """Read the published RSGM split labels and check them against the catalogue.

    Args:
        labels_path: CSV with columns ``row, seed0..seed4``.
        n_events: Number of events N in the processed catalogue.
        seeds: Seeds to return; each must be a column of the labels file.
        fractions: ``[train, val, test]``; the label counts must equal
            :func:`split_sizes` of them.

    Returns:
        Split table with columns ``event, seed<k>...`` (N rows).

    Raises:
        SplitError: If the file is missing, its row count differs from N, its ``row``
            column is not 0..N-1, a seed column is missing, a label is unknown, or the part
            sizes disagree with ``fractions``.
    """
    path = Path(labels_path)
    if not path.is_file():
        raise SplitError(
            f"{path}: published split labels not found (protocol 'rsgm' needs them; use "
            "protocol 'hash' for a catalogue without published labels)"
        )
    labels = pd.read_csv(path, dtype=str, keep_default_na=False)
    if len(labels) != n_events:
        raise SplitError(
            f"{path}: {len(labels)} label rows but the processed catalogue has {n_events} "
            "events (were rows rejected or added? the published labels fit the original file)"
        )
    if "row" not in labels.columns or not np.array_equal(
        labels["row"].to_numpy(dtype=np.int64), np.arange(n_events)
    ):
        raise SplitError(f"{path}: column 'row' must hold 0..{n_events - 1} in order")
    seed_list = _check_seeds(seeds)
    expected = split_sizes(n_events, fractions)
    out = pd.DataFrame({"event": np.arange(n_events, dtype=np.int64)})
    for seed in seed_list:
        col = seed_column(seed)
        if col not in labels.columns:
            raise SplitError(f"{path}: no column {col!r} (columns: {list(labels.columns)})")
        values = labels[col].to_numpy()
        unknown = sorted(set(values) - set(PARTS))
        if unknown:
            raise SplitError(f"{path}: column {col!r} has unknown labels {unknown}")
        counts = tuple(int(np.count_nonzero(values == part)) for part in PARTS)
        if counts != expected:
            raise SplitError(
                f"{path}: column {col!r} has train/val/test sizes {counts}, but fractions "
                f"{list(fractions)} of {n_events} give {expected}"
            )
        out[col] = values
    return out


def _unit_hash(key: str) -> float:
    """Map a string to [0, 1) with the first 8 bytes of its SHA-256."""
    digest = hashlib.sha256(key.encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def hash_split(
    lat: ArrayLike, lon: ArrayLike, seeds: Sequence[int], fractions: Sequence[float]
) -> pd.DataFrame:
    """Append-stable split from a hash of each event.

    The key of event i for a seed is ``f"{seed}:{lat:.6f}:{lon:.6f}:{k}"`` where k is the
    number of earlier events with the same formatted coordinates; its SHA-256 is mapped to
    u in [0, 1) and the event goes to train if u < f0, val if u < f0 + f1, else test.

    Args:
        lat: Latitudes in degrees, shape (N,).
        lon: Longitudes in degrees, shape (N,), in [-180, 180).
        seeds: Seeds, one column each.
        fractions: ``[train, val, test]`` fractions summing to 1.

    Returns:
        Split table with columns ``event, seed<k>...`` (N rows).
    """
    lat_arr = np.asarray(lat, dtype=np.float64).reshape(-1)
    lon_arr = np.asarray(lon, dtype=np.float64).reshape(-1)
    if lat_arr.shape != lon_arr.shape:
        raise SplitError(f"lat and lon differ in length: {lat_arr.shape} vs {lon_arr.shape}")
    f_train, f_val, _ = _check_fractions(fractions)
    seed_list = _check_seeds(seeds)
    seen: dict[str, int] = {}
    locations: list[str] = []
    for la, lo in zip(lat_arr, lon_arr, strict=True):
        loc = f"{la + 0.0:.6f}:{lo + 0.0:.6f}"  # + 0.0 turns -0.0 into 0.0
        k = seen.get(loc, 0)
        seen[loc] = k + 1
        locations.append(f"{loc}:{k}")
    out = pd.DataFrame({"event": np.arange(lat_arr.shape[0], dtype=np.int64)})
    for seed in seed_list:
        u = np.fromiter((_unit_hash(f"{seed}:{loc}") for loc in locations), dtype=np.float64)
        labels = np.where(u < f_train, "train", np.where(u < f_train + f_val, "val", "test"))
        out[seed_column(seed)] = labels.astype(object)
    return out


def resolve_protocol(protocol: str, labels_path: str | Path | None) -> str:
    """The concrete protocol behind ``auto``: ``rsgm+hash`` when the published labels file
    exists, ``hash`` otherwise; any other protocol is returned as it is.

    Args:
        protocol: A protocol of :data:`PROTOCOLS`.
        labels_path: The catalogue's published labels file (it may not exist).

    Returns:
        ``"rsgm"``, ``"hash"`` or ``"rsgm+hash"`` (unknown names pass through, for
        :func:`make_split` to reject).
    """
    if protocol != "auto":
        return protocol
    has_labels = labels_path is not None and Path(labels_path).is_file()
    return "rsgm+hash" if has_labels else "hash"


def make_split(
    protocol: str,
    lat: ArrayLike,
    lon: ArrayLike,
    seeds: Sequence[int],
    fractions: Sequence[float],
    labels_path: str | Path | None = None,
) -> pd.DataFrame:
    """Build the split table of a catalogue with the chosen protocol.

    Args:
        protocol: ``"rsgm"`` (published labels), ``"hash"``, ``"rsgm+hash"`` (published
            labels for the labelled rows, hash labels for rows appended after them) or
            ``"auto"`` (:func:`resolve_protocol`).
        lat: Latitudes in degrees, shape (N,).
        lon: Longitudes in degrees, shape (N,).
        seeds: Seeds, one column each.
        fractions: ``[train, val, test]`` fractions summing to 1.
        labels_path: Published labels file; required for ``rsgm``.

    Returns:
        Split table with columns ``event, seed<k>...`` (N rows).

    Raises:
        SplitError: On an unknown protocol or inconsistent inputs.
    """
    protocol = resolve_protocol(protocol, labels_path)
    if protocol == "rsgm":
        if labels_path is None:
            raise SplitError("protocol 'rsgm' needs the published labels file")
        return published_split(labels_path, int(np.size(lat)), seeds, fractions)
    if protocol == "hash":
        return hash_split(lat, lon, seeds, fractions)
    if protocol == "rsgm+hash":
        # Published labels for the original rows, the append-stable hash split for rows that
        # a refresh appended after them (they have no published label).
        if labels_path is None:
            raise SplitError("protocol 'rsgm+hash' needs the published labels file")
        n_events = int(np.size(lat))
        path = Path(labels_path)
        if not path.is_file():
            raise SplitError(f"{path}: published split labels not found")
        n_labelled = len(pd.read_csv(path, usecols=["row"]))
        if n_events < n_labelled:
            raise SplitError(
                f"{path}: {n_labelled} label rows but only {n_events} events: protocol "
                "'rsgm+hash' needs the original rows first"
            )
        head = published_split(path, n_labelled, seeds, fractions)
        lat_a, lon_a = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
        tail = hash_split(lat_a[n_labelled:], lon_a[n_labelled:], seeds, fractions)
        tail["event"] = tail["event"].to_numpy() + n_labelled
        return pd.concat([head, tail], ignore_index=True)
    raise SplitError(f"unknown split protocol {protocol!r}; expected one of {PROTOCOLS}")


def check_nonempty_parts(table: pd.DataFrame, catalogue: str) -> None:
    """Fail when a seed's split leaves train, val or test empty.

    A tiny catalogue (a handful of events) otherwise splits "successfully" into empty
    val/test sets; training then exits 0 and evaluation fails much later with a non-finite
    test NLL. Checked here, the error names the cause.

    Args:
        table: Split table from :func:`make_split` (columns ``event, seed<k>...``).
        catalogue: Catalogue name, for the message.

    Raises:
        SplitError: One line naming the catalogue, its event count, the first seed whose
            split has an empty part, and that part.
    """
    for col in table.columns[1:]:
        labels = table[col].to_numpy()
        for part in PARTS:
            count = int((labels == part).sum())
            if count == 0:
                seed = col.removeprefix("seed")
                raise SplitError(
                    f"catalogue {catalogue} has {len(table)} events: split seed {seed} gives 0 "
                    f"{part} events (need at least 1 in train, val and test)"
                )


def write_split(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a split table as CSV atomically.

    Args:
        table: Columns ``event, seed<k>...``.
        path: Destination ``.csv`` file.

    Returns:
        The destination path.
    """
    return atomic_write(path, lambda tmp: table.to_csv(tmp, index=False, lineterminator="\n"))


def read_split(path: str | Path, n_events: int | None = None) -> pd.DataFrame:
    """Read and check a split table.

    Args:
        path: CSV written by :func:`write_split`.
        n_events: If given, the expected number of events N.

    Returns:
        The table (columns ``event, seed<k>...``).

    Raises:
        SplitError: If the file is missing, ``event`` is not 0..N-1, or a label is unknown.
    """
    path = Path(path)
    if not path.is_file():
        raise SplitError(f"{path}: split file not found (run the split stage)")
    table = pd.read_csv(path, dtype={"event": np.int64}, keep_default_na=False)
    n = len(table) if n_events is None else n_events
    if "event" not in table.columns or not np.array_equal(table["event"].to_numpy(), np.arange(n)):
        raise SplitError(
            f"{path}: column 'event' must hold 0..{n - 1} in order ({len(table)} rows found)"
        )
    for col in table.columns[1:]:
        unknown = sorted(set(table[col].astype(str)) - set(PARTS))
        if unknown:
            raise SplitError(f"{path}: column {col!r} has unknown labels {unknown}")
    return table


def load_split(
    processed_nc: str | Path, split_csv: str | Path, seed: int
) -> dict[str, NDArray[np.float64]]:
    """Points of one seed's train/val/test parts.

    Args:
        processed_nc: Processed catalogue (``data/processed/<name>.nc``).
        split_csv: Its split table (``data/splits/<name>.csv``).
        seed: Which seed's column to use.

    Returns:
        Dict with keys ``train``, ``val``, ``test``; each an array of shape (N_part, 3),
        float64, points on S² in processed order.

    Raises:
        SplitError: If the table does not match the catalogue or has no column for ``seed``.
    """
    xyz = load_xyz(processed_nc)
    table = read_split(split_csv, n_events=xyz.shape[0])
    col = seed_column(seed)
    if col not in table.columns:
        raise SplitError(f"{split_csv}: no column {col!r} (columns: {list(table.columns)})")
    labels = table[col].to_numpy()
    return {part: xyz[labels == part] for part in PARTS}
