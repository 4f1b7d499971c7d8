"""Tests for the catalogue registry (params -> CatalogueSpec)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.data.errors import CatalogueError
from pipeline.data.registry import CatalogueSpec, parse_catalogues

BASE: dict[str, Any] = {"file": "a.csv", "lat_col": "lat", "lon_col": "lon"}


def test_defaults_and_parse_order() -> None:
    specs = parse_catalogues({"b": BASE, "a": {**BASE, "lat_col": 0, "lon_col": 1}})
    assert list(specs) == ["b", "a"]
    assert specs["b"] == CatalogueSpec("b", "a.csv", "lat", "lon", "auto", "auto")
    assert (specs["a"].lat_col, specs["a"].lon_col) == (0, 1)


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({**BASE, "extra": 1}, r"unknown keys \['extra'\]"),
        ({"file": "a.csv", "lat_col": "lat"}, r"missing keys \['lon_col'\]"),
        ({**BASE, "file": "/abs/a.csv"}, "relative file name"),
        ({**BASE, "file": "../a.csv"}, "relative file name"),
        ({**BASE, "lat_col": True}, "column name or index"),
        ({**BASE, "lat_col": -1}, "must be >= 0"),
        ({**BASE, "lat_col": " "}, "column name or index"),
        ({**BASE, "lon_col": "LAT"}, "same column"),
        ({**BASE, "skip_lines": -1}, "skip_lines"),
        ({**BASE, "skip_lines": True}, "skip_lines"),
        ({**BASE, "skip_lines": "some"}, "skip_lines"),
        ({**BASE, "has_header": "yes"}, "has_header"),
        ({**BASE, "has_header": False}, "must be integer indices"),
    ],
)
def test_invalid_specs(cfg: dict[str, Any], match: str) -> None:
    with pytest.raises(CatalogueError, match=match):
        CatalogueSpec.from_dict("x", cfg)


@pytest.mark.parametrize("name", ["", "a b", "../x", "_x"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(CatalogueError, match="catalogue name"):
        CatalogueSpec.from_dict(name, BASE)


def test_empty_registry() -> None:
    with pytest.raises(CatalogueError, match="non-empty mapping"):
        parse_catalogues({})
