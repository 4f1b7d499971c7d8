"""Tests for reading, validating and storing catalogues (pipeline.data readers/validation/io)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.data.dataset import catalogue_to_dataset, catalogue_to_geodataframe
from pipeline.data.errors import CatalogueError
from pipeline.data.io import (
    REJECT_COLUMNS,
    atomic_write,
    load_processed,
    load_xyz,
    write_processed,
    write_rejects,
)
from pipeline.data.readers import read_raw
from pipeline.data.registry import CatalogueSpec, parse_catalogues
from pipeline.data.validation import (
    Catalogue,
    build_catalogue,
    check_rejects,
    validate_table,
)
from pipeline.geometry.coords import latlon_to_xyz
from tests.errors import raises_naming

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "data" / "raw"

# name -> (valid rows, first event (lat, lon, line), last line number, lon values wrapped)
REAL = {
    "volcano": (827, (-30.2, -178.47, 3), 829, 0),
    "earthquake": (6120, (31.1, 35.5, 5), 6124, 1),  # one longitude is exactly 180.0
    "flood": (4875, (35.8142, 5.23026, 3), 4877, 0),
    "fire": (12809, (-25.088, 152.358, 2), 12810, 0),
}
PROVENANCE_SHA256 = {
    "volcano": "f7bbaf32a412f5fe82350f48e0c55100be260803969c16557343f687fd0593fc",
    "earthquake": "3e5e1a10fb2faf1899106264289334037d039f00f5265d13dad388a93d8ff2f7",
    "flood": "ffb1e3182c3053afcdeceec4727c262a29da10255d20747c08144da5b0963486",
    "fire": "c5c6c9490b1d8c58ba9eb78d9e2f82d1c1e62694ca5cff917c54600d3d83f459",
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def real_specs() -> dict[str, CatalogueSpec]:
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    return parse_catalogues(params["ingest"]["catalogues"])


def _spec(**kw: Any) -> CatalogueSpec:
    cfg: dict[str, Any] = {"file": "t.csv", "lat_col": "lat", "lon_col": "lon"}
    cfg.update(kw)
    return CatalogueSpec.from_dict("t", cfg)


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "t.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _read(path: Path, spec: CatalogueSpec | None = None) -> Catalogue:
    return validate_table(read_raw(path, spec or _spec()), "t")


# --- the four real catalogues ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(REAL))
def test_real_catalogue_counts_and_values(name: str, real_specs: dict[str, CatalogueSpec]) -> None:
    n_valid, (lat0, lon0, line0), last_line, n_wrapped = REAL[name]
    path = RAW / real_specs[name].file
    before = _sha(path)
    cat = build_catalogue(path, real_specs[name], max_reject_fraction=0.0)
    assert _sha(path) == before == PROVENANCE_SHA256[name]  # raw bytes untouched
    assert cat.source_sha256 == before
    assert (cat.n_valid, cat.n_rejected, cat.n_rows_read) == (n_valid, 0, n_valid)
    assert (cat.lat[0], cat.lon[0], cat.source_line[0]) == (lat0, lon0, line0)
    assert cat.source_line[-1] == last_line
    assert np.all(np.diff(cat.source_line) == 1)  # no gaps: every data line kept
    assert cat.lat.dtype == np.float64 and cat.lon.dtype == np.float64
    assert np.all(np.abs(cat.lat) <= 90.0)
    assert np.all((cat.lon >= -180.0) & (cat.lon < 180.0))
    assert cat.n_lon_wrapped == n_wrapped


def test_params_spell_the_expected_files(real_specs: dict[str, CatalogueSpec]) -> None:
    files = {name: spec.file for name, spec in real_specs.items()}
    assert files == {
        "volcano": "volerup.csv",
        "earthquake": "quakes_all.csv",
        "flood": "flood.csv",
        "fire": "fire.csv",
    }


# --- file-level errors ----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with raises_naming(CatalogueError, "nope.csv"):
        read_raw(tmp_path / "nope.csv", _spec())


@pytest.mark.parametrize("content", [b"", b"\n\r\n  \n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    with raises_naming(CatalogueError, "t.csv"):
        read_raw(_write(tmp_path, content), _spec())


def test_comments_only(tmp_path: Path) -> None:
    with raises_naming(CatalogueError, "t.csv"):
        read_raw(_write(tmp_path, "# one\n# two\n"), _spec())


def test_header_only(tmp_path: Path) -> None:
    with raises_naming(CatalogueError, "t.csv", "line 2"):
        read_raw(_write(tmp_path, "# c\nlat,lon"), _spec())


def test_named_column_missing_from_header(tmp_path: Path) -> None:
    with raises_naming(CatalogueError, "t.csv", "'lat'", "['y', 'x']"):
        read_raw(_write(tmp_path, "y,x\n1,2\n"), _spec())


def test_named_column_needs_header(tmp_path: Path) -> None:
    # With has_header auto and named columns the first line must be a header.
    with raises_naming(CatalogueError, "t.csv", "line 1", "'lat', 'lon'"):
        read_raw(_write(tmp_path, "1,2\n3,4\n"), _spec())


def test_index_out_of_range(tmp_path: Path) -> None:
    spec = _spec(lat_col=0, lon_col=2, has_header=False)
    with raises_naming(CatalogueError, "t.csv", "longitude", "index 2"):
        read_raw(_write(tmp_path, "1,2\n3,4\n"), spec)


# --- header variants, line endings, layout --------------------------------------------------


@pytest.mark.parametrize(
    ("header", "lat_col", "lon_col"),
    [
        ("Latitude,Longitude", "latitude", "LONGITUDE"),
        ("LATITUDE,LONGITUDE", "Latitude", "longitude"),
        ("lat,long", "lat", "long"),
        (" lat , lon ", "LAT", "LON"),
        ('"lon","lat"', "lat", "lon"),
    ],
)
def test_header_variants(tmp_path: Path, header: str, lat_col: str, lon_col: str) -> None:
    swapped = header.replace('"', "").split(",")[0].strip() == "lon"
    rows = "10.5,-20.25\n-3,4" if not swapped else "-20.25,10.5\n4,-3"
    cat = _read(_write(tmp_path, f"# c\n{header}\n{rows}"), _spec(lat_col=lat_col, lon_col=lon_col))
    np.testing.assert_array_equal(cat.lat, [10.5, -3.0])
    np.testing.assert_array_equal(cat.lon, [-20.25, 4.0])
    np.testing.assert_array_equal(cat.source_line, [3, 4])


def test_crlf_no_final_newline_and_lf_agree(tmp_path: Path) -> None:
    text = "# c1\n# c2\nlat,lon\n1.5,2.5\n-3.25,170\n89.9,-179.9"
    lf = _read(_write(tmp_path, text + "\n"))
    crlf = _read(_write(tmp_path, text.replace("\n", "\r\n")))  # no final newline either
    cr = _read(_write(tmp_path, text.replace("\n", "\r") + "\r"))
    for cat in (crlf, cr):
        np.testing.assert_array_equal(cat.lat, lf.lat)
        np.testing.assert_array_equal(cat.lon, lf.lon)
        np.testing.assert_array_equal(cat.source_line, lf.source_line)
    np.testing.assert_array_equal(lf.lat, [1.5, -3.25, 89.9])
    np.testing.assert_array_equal(lf.source_line, [4, 5, 6])
    assert crlf.n_rejected == 0


def test_no_header_integer_columns(tmp_path: Path) -> None:
    spec = _spec(lat_col=0, lon_col=1, has_header=False)
    cat = _read(_write(tmp_path, "# url\n-25.088,152.358\n-30.087,150.998"), spec)
    np.testing.assert_array_equal(cat.lat, [-25.088, -30.087])
    np.testing.assert_array_equal(cat.source_line, [2, 3])


@pytest.mark.parametrize(("first", "n_events"), [("lat,lon", 2), ("10,20", 3)])
def test_has_header_auto_with_indices(tmp_path: Path, first: str, n_events: int) -> None:
    spec = _spec(lat_col=0, lon_col=1, has_header="auto")
    cat = _read(_write(tmp_path, f"# c\n{first}\n1,2\n3,4\n"), spec)
    assert cat.n_valid == n_events and cat.n_rejected == 0


def test_columns_among_others_and_quotes(tmp_path: Path) -> None:
    text = 'id,name,LAT,LON\n1,"Etna, Sicily",37.75,14.99\n2,x,"-8.34","115.51"\n'
    cat = _read(_write(tmp_path, text))
    np.testing.assert_array_equal(cat.lat, [37.75, -8.34])
    np.testing.assert_array_equal(cat.lon, [14.99, 115.51])


def test_comments_and_blank_lines_in_the_middle_keep_line_numbers(tmp_path: Path) -> None:
    text = "lat,lon\n1,1\n\n# note\n  # indented note\n2,2\n   \n3,3"
    cat = _read(_write(tmp_path, text))
    np.testing.assert_array_equal(cat.source_line, [2, 6, 8])
    assert cat.n_rows_read == 3 and cat.n_rejected == 0


def test_integer_skip_lines(tmp_path: Path) -> None:
    # Two junk lines without '#' are skipped by skip_lines: 2; the header follows.
    text = "exported by tool X\nversion 3\nlat,lon\n5,6\n"
    cat = _read(_write(tmp_path, text), _spec(skip_lines=2, has_header=True))
    assert cat.n_valid == 1 and cat.source_line[0] == 4


def test_utf8_bom(tmp_path: Path) -> None:
    cat = _read(_write(tmp_path, b"\xef\xbb\xbflat,lon\n1,2\n"))
    assert cat.n_valid == 1


# --- row-level validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("abc,10", "non-numeric latitude 'abc'"),
        ("10,1_000", "non-numeric longitude '1_000'"),
        ("10,0x1A", "non-numeric longitude '0x1A'"),
        (",10", "empty latitude"),
        ("nan,10", "non-finite latitude 'nan'"),
        ("10,-Inf", "non-finite longitude '-Inf'"),
        ("1e999,10", "non-finite latitude '1e999'"),
        ("90.5,10", "latitude 90.5 outside [-90, 90]"),
        ("-91,10", "latitude -91.0 outside [-90, 90]"),
        ("10,360", "longitude 360.0 outside [-180, 180] and [0, 360)"),
        ("10,-180.5", "longitude -180.5 outside [-180, 180] and [0, 360)"),
        ("10,20,30", "wrong field count: expected 2, got 3"),
        ("10", "wrong field count: expected 2, got 1"),
    ],
)
def test_bad_row_is_rejected_with_reason(tmp_path: Path, row: str, reason: str) -> None:
    path = _write(tmp_path, f"# c\nlat,lon\n1,2\n{row}\n3,4\n")
    before = _sha(path)
    cat = _read(path)
    assert _sha(path) == before
    assert cat.n_valid == 2 and cat.n_rows_read == 3
    assert list(cat.rejects.columns) == list(REJECT_COLUMNS)
    assert cat.rejects.to_dict("records") == [{"line_number": 4, "raw_line": row, "reason": reason}]
    np.testing.assert_array_equal(cat.source_line, [3, 5])


def test_boundary_values_are_valid(tmp_path: Path) -> None:
    cat = _read(_write(tmp_path, "lat,lon\n90,-180\n-90,180\n0,359.5\n+1.5e1,.5\n"))
    assert cat.n_rejected == 0
    np.testing.assert_array_equal(cat.lat, [90.0, -90.0, 0.0, 15.0])
    # 180 and [0, 360) longitudes are normalised to [-180, 180), exactly.
    np.testing.assert_array_equal(cat.lon, [-180.0, -180.0, -0.5, 0.5])
    assert cat.n_lon_wrapped == 2


def test_lon_0_360_catalogue_is_normalised(tmp_path: Path) -> None:
    cat = _read(_write(tmp_path, "lat,lon\n10,0\n10,90\n10,180\n10,270\n10,359.999\n"))
    np.testing.assert_array_equal(cat.lon, [0.0, 90.0, -180.0, -90.0, 359.999 - 360.0])
    assert cat.n_lon_wrapped == 3
    np.testing.assert_allclose(cat.lon[-1], -0.001, atol=1e-12)


def test_too_many_rejects_raises_with_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "lat,lon\n1,2\nbad,2\n3,4\n5,6\n")
    cat = _read(path)
    check_rejects(cat, 0.25)  # 1 of 4 is allowed at 25 %
    with raises_naming(CatalogueError, "t.csv", "1 of 4", "line 3"):
        check_rejects(cat, 0.2)
    with raises_naming(CatalogueError, "t.csv", "1 of 4"):
        build_catalogue(path, _spec(), max_reject_fraction=0.01)


def test_no_valid_rows(tmp_path: Path) -> None:
    cat = _read(_write(tmp_path, "lat,lon\nx,1\n100,1\n"))
    with raises_naming(CatalogueError, "t.csv", "2 data lines", "line 2"):
        check_rejects(cat, 1.0)


def test_reject_budget_must_be_a_fraction(tmp_path: Path) -> None:
    cat = _read(_write(tmp_path, "lat,lon\n1,2\n"))
    with raises_naming(CatalogueError, "max_reject_fraction", "1.5"):
        check_rejects(cat, 1.5)


def test_no_header_mode_field_count(tmp_path: Path) -> None:
    # Without a header the expected field count is the most common one.
    spec = _spec(lat_col=0, lon_col=1, has_header=False)
    cat = _read(_write(tmp_path, "1,2\n3,4,5\n6,7\n"), spec)
    assert cat.rejects["reason"].tolist() == ["wrong field count: expected 2, got 3"]


# --- storage --------------------------------------------------------------------------------


def test_rejects_csv_round_trip(tmp_path: Path) -> None:
    cat = _read(_write(tmp_path, 'lat,lon\n1,2\n"a,b",3\nnan,1\n'))
    out = write_rejects(cat.rejects, tmp_path / "rejects" / "t.csv")
    back = pd.read_csv(out, keep_default_na=False)
    assert back.to_dict("records") == [
        {"line_number": 3, "raw_line": '"a,b",3', "reason": "non-numeric latitude 'a,b'"},
        {"line_number": 4, "raw_line": "nan,1", "reason": "non-finite latitude 'nan'"},
    ]
    empty = write_rejects(_read(_write(tmp_path, "lat,lon\n1,2\n")).rejects, tmp_path / "e.csv")
    assert empty.read_text() == "line_number,raw_line,reason\n"


def test_netcdf_round_trip(tmp_path: Path, tiny_catalogue: Any) -> None:
    cat = build_catalogue(
        tiny_catalogue.path, CatalogueSpec.from_dict("tiny", tiny_catalogue.spec), 0.0
    )
    gdf = catalogue_to_geodataframe(cat)
    assert gdf.crs.to_epsg() == 4326
    np.testing.assert_array_equal(gdf.geometry.x, tiny_catalogue.lon)
    np.testing.assert_array_equal(gdf.geometry.y, tiny_catalogue.lat)
    ds = catalogue_to_dataset(gdf, cat)
    path = write_processed(ds, tmp_path / "processed" / "tiny.nc")
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.nc"]  # no temp files left

    back = load_processed(path)
    assert back.sizes["event"] == 60
    np.testing.assert_array_equal(back["lat"].to_numpy(), tiny_catalogue.lat)
    np.testing.assert_array_equal(back["lon"].to_numpy(), tiny_catalogue.lon)
    np.testing.assert_array_equal(back["source_line"].to_numpy(), np.arange(3, 63))
    assert back["lat"].attrs["units"] == "degrees_north"
    assert back["lon"].attrs["standard_name"] == "longitude"
    assert back["lon"].attrs["units"] == "degrees_east"
    for var in ("x", "y", "z"):
        assert back[var].dtype == np.float64
        assert "_FillValue" not in back[var].encoding or back[var].encoding["_FillValue"] is None
    assert back.attrs["Conventions"] == "CF-1.8"
    assert back.attrs["source_file"] == "tiny.csv"
    assert back.attrs["source_sha256"] == _sha(tiny_catalogue.path)
    assert (back.attrs["n_rows_read"], back.attrs["n_valid"], back.attrs["n_rejected"]) == (
        60,
        60,
        0,
    )

    xyz = load_xyz(path)
    assert xyz.shape == (60, 3) and xyz.dtype == np.float64
    np.testing.assert_allclose(xyz, latlon_to_xyz(tiny_catalogue.lat, tiny_catalogue.lon), atol=0)
    np.testing.assert_allclose(np.linalg.norm(xyz, axis=1), 1.0, atol=1e-15)


def test_dataset_rejects_wrong_crs(tiny_catalogue: Any) -> None:
    cat = build_catalogue(
        tiny_catalogue.path, CatalogueSpec.from_dict("tiny", tiny_catalogue.spec), 0.0
    )
    gdf = catalogue_to_geodataframe(cat).to_crs("EPSG:3857")
    with raises_naming(CatalogueError, "tiny", "EPSG:4326", "EPSG:3857"):
        catalogue_to_dataset(gdf, cat)


def test_load_processed_errors(tmp_path: Path) -> None:
    with raises_naming(CatalogueError, "missing.nc"):
        load_processed(tmp_path / "missing.nc")
    import xarray as xr

    xr.Dataset({"lat": ("event", np.zeros(2))}).to_netcdf(tmp_path / "bad.nc", engine="netcdf4")
    with raises_naming(CatalogueError, "bad.nc", "'lon'", "'x'"):
        load_processed(tmp_path / "bad.nc")


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")

    def failing(tmp: Path) -> None:
        tmp.write_text("partial")
        raise RuntimeError("disk full")

    with raises_naming(RuntimeError, "disk full"):
        atomic_write(target, failing)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_field_over_the_csv_limit_is_one_error_naming_file_and_line(tmp_path: Path) -> None:
    """csv refuses fields over 128 KB; that used to be a 150-line traceback naming nothing."""
    path = tmp_path / "huge.csv"
    path.write_bytes(b'lat,lon,note\n1.0,2.0,ok\n3.0,4.0,"' + b"x" * 200_000 + b'"\n')
    with raises_naming(CatalogueError, "huge.csv", "line 3"):
        read_raw(path, _spec())
