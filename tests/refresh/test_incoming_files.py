"""Incoming files in a refresh: an unreadable one is quarantined with all its reasons."""

from __future__ import annotations

from pathlib import Path

from refresh_helpers import _drop, _mini_project

from pipeline.refresh.flow import refresh


def test_unreadable_files_are_quarantined_with_all_reasons_and_the_batch_goes_on(
    prefect_harness: None, tmp_path: Path
) -> None:
    raw_bytes = b"Latitude,Longitude,Name\n1.0,2.0,Alpha\n"
    root = _mini_project(tmp_path, raw_bytes, "lat_col: Latitude, lon_col: Longitude")
    huge = b'Latitude,Longitude,Name\n5,6,ok\n7,8,"' + b"x" * 200_000 + b'"\n'
    junk = bytes((i * 37 + 11) % 256 for i in range(4096))  # NULs, invalid UTF-8
    latin1 = b"Latitude,Longitude,Name\n3.5,4.5,Cerro Negro\n9.5,10.5,Volc\xe1n\n"
    _drop(root, "volcano", "a_huge_field.csv", huge)
    _drop(root, "volcano", "b_binary.csv", junk)
    _drop(root, "volcano", "c_good.csv", b"Latitude,Longitude,Name\n1.0,2.0,Alpha\n3,4,Beta\n")
    _drop(root, "volcano", "d_latin1.csv", latin1)

    result = refresh(root, run_repro=False)

    assert (root / "data" / "raw" / "volerup.csv").read_bytes() == raw_bytes + b"3,4,Beta\n"
    assert [o.source.name for o in result.merged] == ["c_good.csv"]
    quarantine = root / "data" / "incoming" / "volcano" / "quarantine"
    reasons = {
        o.source.name: (quarantine / f"{o.source.name}.reasons.txt").read_text()
        for o in result.quarantined
    }
    assert sorted(reasons) == ["a_huge_field.csv", "b_binary.csv", "d_latin1.csv"]
    assert "field larger than field limit" in reasons["a_huge_field.csv"]
    assert "line 3" in reasons["a_huge_field.csv"]
    assert len(reasons["a_huge_field.csv"]) < 5_000  # the field is not copied
    assert "not UTF-8 text" in reasons["b_binary.csv"] and "NUL byte" in reasons["b_binary.csv"]
    assert "line 3: not UTF-8 text (byte b'\\xe1'" in reasons["d_latin1.csv"]
    assert (quarantine / "a_huge_field.csv").read_bytes() == huge
    assert (quarantine / "b_binary.csv").read_bytes() == junk
    assert not result.ok and "QUARANTINED volcano/b_binary.csv" in result.summary()

    # A later refresh is not stuck on them.
    again = refresh(root, run_repro=False)
    assert again.outcomes == [] and again.ok
