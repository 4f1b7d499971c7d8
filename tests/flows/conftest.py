"""Fixtures for the flow tests: one Prefect test harness for the whole session (~10 s)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.flows.settings import apply_prefect_defaults

apply_prefect_defaults(Path(__file__).resolve().parents[2])


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API and database shared by all flow tests of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield
