"""Query points: parsing, ranges, longitude wrapping and one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.query.points import PointsError, parse_latlon_pairs, read_points_csv
from tests.errors import raises_naming


def test_pairs_parse_and_wrap_longitudes_into_the_project_range() -> None:
    lat, lon = parse_latlon_pairs(["10", "20", "-33.5", "200", "90", "-180", "0", "360"])
    np.testing.assert_array_equal(lat, [10.0, -33.5, 90.0, 0.0])
    np.testing.assert_array_equal(lon, [20.0, -160.0, -180.0, 0.0])
    assert lat.dtype == lon.dtype == np.float64


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["95", "0"], "point 1: latitude 95 is outside [-90, 90]"),
        (["0", "0", "10", "abc"], "point 2: longitude 'abc' is not a number"),
        (["0", "400"], "point 1: longitude 400 is outside [-180, 360]"),
        (["nan", "0"], "point 1: latitude 'nan' is not a finite number"),
        (["1", "2", "3"], "3 numbers given: points are LAT LON pairs"),
        ([], "no points"),
    ],
)
def test_bad_pairs_are_one_line_errors_naming_the_point(values: list[str], message: str) -> None:
    with pytest.raises(PointsError) as err:
        parse_latlon_pairs(values)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_csv_points_by_header_name_with_comments_and_extra_columns(tmp_path: Path) -> None:
    path = tmp_path / "pts.csv"
    path.write_text("# sites\nname,Latitude,LONGITUDE\nA,10.5,20\n\nB,-5,350.25\n")
    lat, lon = read_points_csv(path)
    np.testing.assert_array_equal(lat, [10.5, -5.0])
    np.testing.assert_array_equal(lon, [20.0, -9.75])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lat,lon\n1,2\n95,3\n", "line 3: latitude 95 is outside [-90, 90]"),
        ("# c\nlat,lon\n1,x\n", "line 3: longitude 'x' is not a number"),
        ("lat,lon\n1\n", "line 2: 1 fields, expected 2"),
        ("y,x\n1,2\n", "no lat column (header: y, x"),
        ("lat,lon\n", "no points"),
        ("", "empty file"),
    ],
)
def test_bad_csv_rows_name_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pts.csv"
    path.write_text(text)
    with pytest.raises(PointsError) as err:
        read_points_csv(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_missing_points_file(tmp_path: Path) -> None:
    with raises_naming(PointsError, str(tmp_path / "none.csv")):
        read_points_csv(tmp_path / "none.csv")
