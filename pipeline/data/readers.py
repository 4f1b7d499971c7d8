"""Read a raw catalogue CSV into header + data lines, without interpreting the values.

Handles ``#`` comment lines anywhere, blank lines, CRLF / CR / LF line endings, a missing
final newline, a UTF-8 byte-order mark, quoted fields, header names in any letter case, and
files without a header. The raw file is only ever opened for reading.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pipeline.data.errors import CatalogueError
from pipeline.data.registry import CatalogueSpec, ColumnRef

__all__ = ["RawLine", "RawTable", "read_raw", "split_fields"]


@dataclass(frozen=True)
class RawLine:
    """One data line of a raw file.

    Attributes:
        line_number: 1-based line number in the raw file.
        text: The line without its line ending.
        fields: The comma-separated fields, whitespace-stripped.
    """

    line_number: int
    text: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class RawTable:
    """The structure of a raw catalogue file: where the data are and which columns to use.

    Attributes:
        path: The raw file.
        sha256: Hex SHA-256 of the raw file's bytes.
        header: Header field names, or ``None`` for a file without a header.
        n_fields: Number of fields every data line must have (the header's, or the most
            common count among data lines for a file without a header).
        lat_index: 0-based index of the latitude field.
        lon_index: 0-based index of the longitude field.
        rows: The data lines (comments, blank lines, skipped lines and header excluded),
            in file order.
    """

    path: Path
    sha256: str
    header: tuple[str, ...] | None
    n_fields: int
    lat_index: int
    lon_index: int
    rows: tuple[RawLine, ...]


def split_fields(text: str) -> tuple[str, ...]:
    """Split one CSV line into whitespace-stripped fields (quotes honoured).

    Args:
        text: A single line without its line ending.

    Returns:
        The fields.
    """
    row = next(csv.reader([text]), [])
    return tuple(field.strip() for field in row)


def _fields(text: str, line_number: int, path: Path) -> tuple[str, ...]:
    """:func:`split_fields` with csv's own errors (a field over its size limit, a stray
    quote in strict mode) turned into a :class:`CatalogueError` naming the file and line."""
    try:
        return split_fields(text)
    except csv.Error as exc:
        raise CatalogueError(
            f"{path}: line {line_number}: unreadable CSV ({exc}; {len(text):,} characters)"
        ) from exc


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _is_comment(text: str) -> bool:
    return text.lstrip().startswith("#")


def _resolve_column(
    ref: ColumnRef, header: tuple[str, ...] | None, n_fields: int, what: str, path: Path
) -> int:
    if isinstance(ref, int):
        if ref >= n_fields:
            raise CatalogueError(
                f"{path}: {what} column index {ref} is out of range for {n_fields} fields"
            )
        return ref
    if header is None:
        raise CatalogueError(
            f"{path}: {what} column {ref!r} given by name, but the file has no header"
        )
    wanted = ref.strip().lower()
    matches = [i for i, name in enumerate(header) if name.strip().lower() == wanted]
    if not matches:
        raise CatalogueError(
            f"{path}: header has no {what} column {ref!r} (header fields: {list(header)})"
        )
    if len(matches) > 1:
        raise CatalogueError(f"{path}: header has {len(matches)} columns named {ref!r}")
    return matches[0]


def read_raw(path: str | Path, spec: CatalogueSpec) -> RawTable:
    """Read a raw catalogue file's lines and locate its header and lat/lon columns.

    Lines are numbered from 1 as in the file. The first ``spec.skip_lines`` lines are
    skipped (``"auto"``: the leading ``#`` comment lines); after that, ``#`` comment lines
    and blank lines are ignored wherever they are. If the file has a header (``has_header``
    true, or ``"auto"`` and the first remaining line's lat/lon fields are not numbers), the
    first remaining line is the header. Everything after is a data line; its values are
    checked by :func:`pipeline.data.validation.validate_table`.

    Args:
        path: The raw CSV file.
        spec: How to read it.

    Returns:
        The file's structure and data lines.

    Raises:
        CatalogueError: If the file is missing or empty, has no data lines, lacks a
            required header or column, a named column is ambiguous, or a line is not
            readable CSV (e.g. a field over csv's 128 KB limit).
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogueError(f"{path}: catalogue file {spec.name!r} not found")
    data = path.read_bytes()
    if not data.strip():
        raise CatalogueError(f"{path}: catalogue file is empty")
    sha256 = hashlib.sha256(data).hexdigest()
    # Undecodable bytes become U+FFFD, so the affected lines are rejected, not the file.
    text = data.decode("utf-8-sig", errors="replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file ended with a newline

    start = 0
    if spec.skip_lines == "auto":
        while start < len(lines) and _is_comment(lines[start]):
            start += 1
    else:
        start = min(spec.skip_lines, len(lines))
    content = [
        (number, line)
        for number, line in enumerate(lines[start:], start=start + 1)
        if line.strip() and not _is_comment(line)
    ]
    if not content:
        raise CatalogueError(
            f"{path}: no data lines (only comments, blank or skipped lines; skip_lines="
            f"{spec.skip_lines!r})"
        )

    first_number, first_line = content[0]
    first_fields = _fields(first_line, first_number, path)
    has_header = spec.has_header
    if has_header == "auto":
        if isinstance(spec.lat_col, str) or isinstance(spec.lon_col, str):
            has_header = True
        else:
            values = [
                first_fields[i] if i < len(first_fields) else ""
                for i in (spec.lat_col, spec.lon_col)
            ]
            has_header = not all(_is_number(v) for v in values)
    header: tuple[str, ...] | None = None
    if has_header:
        header = first_fields
        if all(_is_number(f) for f in header):
            raise CatalogueError(
                f"{path}: line {first_number}: expected a header naming the columns "
                f"{spec.lat_col!r}, {spec.lon_col!r}, found numbers {first_line!r}"
            )
        content = content[1:]
        if not content:
            raise CatalogueError(f"{path}: no data lines after the header (line {first_number})")

    rows = tuple(RawLine(number, line, _fields(line, number, path)) for number, line in content)
    if header is not None:
        n_fields = len(header)
    else:
        n_fields = Counter(len(row.fields) for row in rows).most_common(1)[0][0]
    lat_index = _resolve_column(spec.lat_col, header, n_fields, "latitude", path)
    lon_index = _resolve_column(spec.lon_col, header, n_fields, "longitude", path)
    return RawTable(
        path=path,
        sha256=sha256,
        header=header,
        n_fields=n_fields,
        lat_index=lat_index,
        lon_index=lon_index,
        rows=rows,
    )
