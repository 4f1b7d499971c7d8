"""Appending to a raw file: its line endings, final newline and column order are kept."""

from __future__ import annotations

from pathlib import Path

from refresh_helpers import FLOOD_RAW

from pipeline.data.registry import CatalogueSpec
from pipeline.refresh.flow import merge_incoming_file


def test_merge_keeps_crlf_and_raw_column_order(tmp_path: Path) -> None:
    raw = tmp_path / "flood.csv"
    raw.write_bytes(FLOOD_RAW)
    incoming = tmp_path / "incoming" / "new.csv"
    incoming.parent.mkdir()
    # Columns in the other order, LF endings, a duplicate of a raw event (given as 5.23026).
    incoming.write_bytes(b"long,lat\n5.23026,35.8142\n-60.5,12.25\n190,-3\n")
    spec = CatalogueSpec("flood", "flood.csv", "lat", "long", "auto", True)

    out = merge_incoming_file.fn(incoming, spec, raw, 0.0)

    assert (out.status, out.n_appended, out.n_duplicates, out.n_rejected) == ("merged", 2, 1, 0)
    # The raw file keeps CRLF and its lat,long order; 190 stays as given (ingest wraps it).
    assert raw.read_bytes() == FLOOD_RAW + b"\r\n12.25,-60.5\r\n-3,190"


def test_merge_keeps_a_final_newline(tmp_path: Path) -> None:
    raw = tmp_path / "fire.csv"
    raw.write_bytes(b"# FIRMS\n-25.088,152.358\n-30.087,150.998\n")
    incoming = tmp_path / "new.csv"
    incoming.write_bytes(b"-30.087,150.998\n10,20\n")
    spec = CatalogueSpec("fire", "fire.csv", 0, 1, "auto", False)

    out = merge_incoming_file.fn(incoming, spec, raw, 0.0)

    assert (out.n_appended, out.n_duplicates) == (1, 1)
    assert raw.read_bytes() == b"# FIRMS\n-25.088,152.358\n-30.087,150.998\n10,20\n"
