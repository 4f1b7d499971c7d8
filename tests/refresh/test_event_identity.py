"""Event identity in a refresh: full rows, not locations; repeats recorded as rows."""

from __future__ import annotations

from pathlib import Path

from refresh_helpers import _drop, _mini_project

from pipeline.refresh.flow import refresh

DATED_RAW = b"Latitude,Longitude,Date\n-30.2,-178.47,1990-01-01\n30.78,130.28,2001-05-03\n"


def test_duplicates_are_full_rows_not_locations(prefect_harness: None, tmp_path: Path) -> None:
    root = _mini_project(tmp_path, DATED_RAW, "lat_col: Latitude, lon_col: Longitude")
    _drop(
        root,
        "volcano",
        "a.csv",
        b"Latitude,Longitude,Date\n"
        b"30.78,130.28,2001-05-03\n"  # exact duplicate of a raw row
        b" 30.78 , 130.28 ,  2001-05-03\n"  # the same after whitespace normalisation
        b"30.780,130.2800,2001-05-03\n"  # the same numbers
        b"30.78,130.28,2024-02-11\n"  # a new eruption at a known volcano
        b"30.78,130.28,2024-02-11\n",  # ... given twice
    )
    _drop(
        root,
        "volcano",
        "b.csv",
        b"Date,Longitude,Latitude\n"  # another column order: laid out in the raw's
        b"2024-02-11,130.28,30.78\n"  # appended earlier in this refresh
        b"1990-01-01,-178.47,-30.2\n"  # a raw row
        b"2025-07-01,130.28,30.78\n",  # another new eruption there
    )

    result = refresh(root, run_repro=False)

    raw = (root / "data" / "raw" / "volerup.csv").read_bytes()
    assert raw == DATED_RAW + b"30.78,130.28,2024-02-11\n30.78,130.28,2025-07-01\n"
    assert [(o.n_appended, o.n_duplicates) for o in result.merged] == [(1, 4), (1, 2)]
    assert result.appended == {"volcano": 2} and result.duplicates == {"volcano": 6}


def test_a_catalogue_that_records_repeats_takes_new_eruptions_at_known_volcanoes(
    prefect_harness: None, tmp_path: Path
) -> None:
    """Lat/lon-only volcano rows repeat (827 eruptions at 267 places): a row is never a
    duplicate there, but a file delivered twice is."""
    raw_bytes = b"Latitude,Longitude\n-30.2,-178.47\n30.78,130.28\n30.78,130.28\n"
    root = _mini_project(tmp_path, raw_bytes, "lat_col: Latitude, lon_col: Longitude")
    batch = b"Latitude,Longitude\n30.78,130.28\n-30.2,-178.47\n"  # two eruptions at known places
    _drop(root, "volcano", "2026-11.csv", batch)
    _drop(root, "volcano", "2026-11-copy.csv", batch)  # the same file twice in one batch
    result = refresh(root, run_repro=False)
    raw = root / "data" / "raw" / "volerup.csv"
    assert raw.read_bytes() == raw_bytes + b"30.78,130.28\n-30.2,-178.47\n"
    # Files are taken in name order: "2026-11-copy.csv" first.
    assert [(o.n_appended, o.n_duplicates) for o in result.merged] == [(2, 0), (0, 2)]

    _drop(root, "volcano", "again.csv", batch)  # re-delivered in a later refresh
    result = refresh(root, run_repro=False)
    assert raw.read_bytes() == raw_bytes + b"30.78,130.28\n-30.2,-178.47\n"
    assert [(o.n_appended, o.n_duplicates) for o in result.merged] == [(0, 2)]
