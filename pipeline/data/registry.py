"""Catalogue registry: which raw files exist and how to read them.

A catalogue is declared in ``params.yaml`` under ``ingest.catalogues`` (name -> spec), so
adding one is a parameter change only::

    ingest:
      catalogues:
        volcano: {file: volerup.csv, lat_col: Latitude, lon_col: Longitude,
                  skip_lines: auto, has_header: auto}
        fire: {file: fire.csv, lat_col: 0, lon_col: 1, skip_lines: auto, has_header: false}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.data.errors import CatalogueError

__all__ = ["CatalogueSpec", "ColumnRef", "parse_catalogues"]

ColumnRef = str | int
"""A column given by its header name (matched case-insensitively) or 0-based index."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_REQUIRED = ("file", "lat_col", "lon_col")
_OPTIONAL = ("skip_lines", "has_header")


@dataclass(frozen=True)
class CatalogueSpec:
    """How to read one raw catalogue file.

    Attributes:
        name: Catalogue name (used for output file names), e.g. ``"volcano"``.
        file: Raw file name relative to the raw-data directory, e.g. ``"volerup.csv"``.
        lat_col: Latitude column: header name (case-insensitive) or 0-based index.
        lon_col: Longitude column: header name (case-insensitive) or 0-based index.
        skip_lines: Number of leading lines to skip before the header/data, or ``"auto"``
            to skip the leading ``#`` comment lines. ``#`` lines later on are always ignored.
        has_header: Whether the first line after the skipped ones is a header, or
            ``"auto"``: it is a header when its latitude/longitude fields are not numbers.
    """

    name: str
    file: str
    lat_col: ColumnRef
    lon_col: ColumnRef
    skip_lines: int | Literal["auto"] = "auto"
    has_header: bool | Literal["auto"] = "auto"

    @classmethod
    def from_dict(cls, name: str, cfg: Mapping[str, Any]) -> CatalogueSpec:
        """Build and check a spec from its params entry.

        Args:
            name: Catalogue name (the key under ``ingest.catalogues``).
            cfg: Mapping with keys ``file``, ``lat_col``, ``lon_col`` and optionally
                ``skip_lines``, ``has_header``.

        Returns:
            The validated spec.

        Raises:
            CatalogueError: On unknown or missing keys or values of the wrong type.
        """
        where = f"ingest.catalogues.{name}"
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise CatalogueError(
                f"{where}: catalogue name must match {_NAME_RE.pattern!r}, got {name!r}"
            )
        if not isinstance(cfg, Mapping):
            raise CatalogueError(f"{where}: expected a mapping, got {type(cfg).__name__}")
        unknown = sorted(set(cfg) - set(_REQUIRED) - set(_OPTIONAL))
        if unknown:
            raise CatalogueError(f"{where}: unknown keys {unknown}")
        missing = [k for k in _REQUIRED if k not in cfg]
        if missing:
            raise CatalogueError(f"{where}: missing keys {missing}")
        file = cfg["file"]
        if not isinstance(file, str) or not file or file.startswith(("/", "..")):
            raise CatalogueError(f"{where}.file: expected a relative file name, got {file!r}")
        lat_col = _check_column(cfg["lat_col"], f"{where}.lat_col")
        lon_col = _check_column(cfg["lon_col"], f"{where}.lon_col")
        if lat_col == lon_col or (
            isinstance(lat_col, str)
            and isinstance(lon_col, str)
            and lat_col.strip().lower() == lon_col.strip().lower()
        ):
            raise CatalogueError(f"{where}: lat_col and lon_col are the same column ({lat_col!r})")
        skip_lines = cfg.get("skip_lines", "auto")
        if not (
            skip_lines == "auto"
            or (
                isinstance(skip_lines, int) and not isinstance(skip_lines, bool) and skip_lines >= 0
            )
        ):
            raise CatalogueError(
                f"{where}.skip_lines: expected a non-negative integer or 'auto', got {skip_lines!r}"
            )
        has_header = cfg.get("has_header", "auto")
        if not (has_header == "auto" or isinstance(has_header, bool)):
            raise CatalogueError(
                f"{where}.has_header: expected true, false or 'auto', got {has_header!r}"
            )
        if has_header is False and (isinstance(lat_col, str) or isinstance(lon_col, str)):
            raise CatalogueError(
                f"{where}: has_header is false, so lat_col/lon_col must be integer indices"
            )
        return cls(
            name=name,
            file=file,
            lat_col=lat_col,
            lon_col=lon_col,
            skip_lines=skip_lines,
            has_header=has_header,
        )


def _check_column(value: object, where: str) -> ColumnRef:
    if isinstance(value, bool):
        raise CatalogueError(f"{where}: expected a column name or index, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise CatalogueError(f"{where}: column index must be >= 0, got {value}")
        return value
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise CatalogueError(f"{where}: expected a column name or index, got {value!r}")


def parse_catalogues(cfg: Mapping[str, Any]) -> dict[str, CatalogueSpec]:
    """Parse the ``ingest.catalogues`` mapping into specs.

    Args:
        cfg: Mapping catalogue name -> spec mapping (see :class:`CatalogueSpec`).

    Returns:
        Dict name -> :class:`CatalogueSpec`, in the input order.

    Raises:
        CatalogueError: If the mapping is empty or any entry is invalid.
    """
    if not isinstance(cfg, Mapping) or not cfg:
        raise CatalogueError("ingest.catalogues: expected a non-empty mapping of catalogues")
    return {name: CatalogueSpec.from_dict(name, spec) for name, spec in cfg.items()}
