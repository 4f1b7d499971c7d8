"""Shared test fixtures (keep generic: any test may use them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from pipeline.flows.settings import apply_prefect_defaults

# Before anything imports prefect: its home in the project's ignored .prefect/, offline, quiet.
apply_prefect_defaults(Path(__file__).resolve().parents[1])


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API and database shared by every test of the session (~10 s).

    Flow tests and tests that call a stage's ``main`` in-process (each stage is a flow run)
    use it; without it every flow would start its own ephemeral server.
    """
    from prefect.testing.utilities import prefect_test_harness

    # It waits on the server's health check; the bound only catches a server that never comes
    # up. 60 s was too short with two suites of two xdist workers on 2 cores: the harness of
    # one worker timed out, and every later test of that worker that needs it errored.
    with prefect_test_harness(server_startup_timeout=300):
        yield


@dataclass(frozen=True)
class TinyCatalogue:
    """A small synthetic raw catalogue written to ``tmp_path/data/raw``.

    Attributes:
        name: Catalogue name (``"tiny"``).
        raw_dir: Folder holding the raw file.
        path: The raw CSV (a ``#`` comment, header ``lat,lon``, N rows, LF, final newline).
        lat: Latitudes as written, shape (N,), float64.
        lon: Longitudes as written, shape (N,), float64, in [-180, 180).
        spec: Its ``ingest.catalogues`` entry.
    """

    name: str
    raw_dir: Path
    path: Path
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    spec: dict[str, Any]


@pytest.fixture
def tiny_catalogue(tmp_path: Path) -> TinyCatalogue:
    """60 events, 4 decimals, with one duplicated location (rows 10 and 11)."""
    rng = np.random.default_rng(12345)
    # Round through the decimal text so the arrays equal what a reader parses.
    lat = np.array([float(f"{v:.4f}") for v in rng.uniform(-80.0, 80.0, size=60)])
    lon = np.array([float(f"{v:.4f}") for v in rng.uniform(-179.0, 179.0, size=60)])
    lat[11], lon[11] = lat[10], lon[10]
    raw_dir = tmp_path / "data" / "raw"
    raw_dir.mkdir(parents=True)
    path = raw_dir / "tiny.csv"
    lines = ["# synthetic test catalogue", "lat,lon"]
    lines += [f"{a:.4f},{b:.4f}" for a, b in zip(lat, lon, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = {
        "file": "tiny.csv",
        "lat_col": "lat",
        "lon_col": "lon",
        "skip_lines": "auto",
        "has_header": "auto",
    }
    return TinyCatalogue("tiny", raw_dir, path, lat, lon, spec)
