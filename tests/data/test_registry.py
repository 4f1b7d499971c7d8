"""Tests for the catalogue registry (params -> CatalogueSpec)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.data.errors import CatalogueError
from pipeline.data.registry import CatalogueSpec, parse_catalogues
from tests.errors import raises_naming

BASE: dict[str, Any] = {"file": "a.csv", "lat_col": "lat", "lon_col": "lon"}


def test_defaults_and_parse_order() -> None:
    specs = parse_catalogues({"b": BASE, "a": {**BASE, "lat_col": 0, "lon_col": 1}})
    assert list(specs) == ["b", "a"]
    assert specs["b"] == CatalogueSpec("b", "a.csv", "lat", "lon", "auto", "auto")
    assert (specs["a"].lat_col, specs["a"].lon_col) == (0, 1)


@pytest.mark.parametrize(
    ("cfg", "names"),
    [
        ({**BASE, "extra": 1}, ("ingest.catalogues.x", "['extra']")),
        ({"file": "a.csv", "lat_col": "lat"}, ("ingest.catalogues.x", "['lon_col']")),
        ({**BASE, "file": "/abs/a.csv"}, ("ingest.catalogues.x.file", "'/abs/a.csv'")),
        ({**BASE, "file": "../a.csv"}, ("ingest.catalogues.x.file", "'../a.csv'")),
        ({**BASE, "lat_col": True}, ("ingest.catalogues.x.lat_col", "True")),
        ({**BASE, "lat_col": -1}, ("ingest.catalogues.x.lat_col", "-1")),
        ({**BASE, "lat_col": " "}, ("ingest.catalogues.x.lat_col", "' '")),
        ({**BASE, "lon_col": "LAT"}, ("ingest.catalogues.x", "lat_col", "lon_col", "'lat'")),
        ({**BASE, "skip_lines": -1}, ("ingest.catalogues.x.skip_lines", "-1")),
        ({**BASE, "skip_lines": True}, ("ingest.catalogues.x.skip_lines", "True")),
        ({**BASE, "skip_lines": "some"}, ("ingest.catalogues.x.skip_lines", "'some'")),
        ({**BASE, "has_header": "yes"}, ("ingest.catalogues.x.has_header", "'yes'")),
        ({**BASE, "has_header": False}, ("ingest.catalogues.x", "has_header", "lat_col/lon_col")),
    ],
)
def test_invalid_specs(cfg: dict[str, Any], names: tuple[str, ...]) -> None:
    with raises_naming(CatalogueError, *names):
        CatalogueSpec.from_dict("x", cfg)


@pytest.mark.parametrize("name", ["", "a b", "../x", "_x"])
def test_invalid_names(name: str) -> None:
    with raises_naming(CatalogueError, f"ingest.catalogues.{name}", repr(name)):
        CatalogueSpec.from_dict(name, BASE)


def test_empty_registry() -> None:
    with raises_naming(CatalogueError, "ingest.catalogues"):
        parse_catalogues({})
