"""Shared helpers of the refresh tests: incoming files and a minimal project."""

from __future__ import annotations

from pathlib import Path

FLOOD_RAW = b"# source: DFO\r\nlat,long\r\n35.8142,5.23026\r\n-18.7111,-45.3489"
"""A raw flood file with CRLF line endings, a comment and no final newline."""


def _drop(project: Path, catalogue: str, name: str, content: bytes) -> Path:
    path = project / "data" / "incoming" / catalogue / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _mini_project(tmp_path: Path, raw: bytes, columns: str, max_reject: float = 0.25) -> Path:
    """A project with one catalogue ``volcano`` and no DVC (for ``run_repro=False``)."""
    root = tmp_path / "mini"
    (root / "data" / "raw").mkdir(parents=True)
    (root / "data" / "raw" / "volerup.csv").write_bytes(raw)
    (root / "params.yaml").write_text(
        f"ingest:\n  max_reject_fraction: {max_reject}\n  catalogues:\n"
        f"    volcano: {{file: volerup.csv, {columns}, has_header: true}}\n"
    )
    return root
