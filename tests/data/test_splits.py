"""Tests for train/val/test splits (pipeline.data.splits)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.data.dataset import catalogue_to_dataset, catalogue_to_geodataframe
from pipeline.data.errors import SplitError
from pipeline.data.io import write_processed
from pipeline.data.registry import CatalogueSpec
from pipeline.data.splits import (
    PARTS,
    hash_split,
    load_split,
    make_split,
    published_labels_path,
    published_split,
    read_split,
    split_sizes,
    write_split,
)
from pipeline.data.validation import build_catalogue
from pipeline.geometry.coords import latlon_to_xyz
from tests.errors import raises_naming

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "data" / "published_splits"
SEEDS = [0, 1, 2, 3, 4]
FRACTIONS = [0.8, 0.1, 0.1]
SIZES = {
    "volcano": (827, (661, 82, 84)),
    "earthquake": (6120, (4896, 612, 612)),
    "flood": (4875, (3900, 487, 488)),
    "fire": (12809, (10247, 1280, 1282)),
}


def _seed_cols(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c != "event"]


@pytest.mark.parametrize("name", list(SIZES))
def test_split_sizes_match_published(name: str) -> None:
    n, sizes = SIZES[name]
    assert split_sizes(n, FRACTIONS) == sizes


@pytest.mark.parametrize("name", list(SIZES))
def test_published_split_sizes_and_shape(name: str) -> None:
    n, sizes = SIZES[name]
    table = published_split(published_labels_path(PUBLISHED, name), n, SEEDS, FRACTIONS)
    assert list(table.columns) == ["event", "seed0", "seed1", "seed2", "seed3", "seed4"]
    np.testing.assert_array_equal(table["event"], np.arange(n))
    for col in _seed_cols(table):
        assert tuple(int((table[col] == p).sum()) for p in PARTS) == sizes
    # Different seeds give different splits.
    assert (table["seed0"] != table["seed1"]).any()


def test_published_split_errors(tmp_path: Path) -> None:
    path = published_labels_path(PUBLISHED, "volcano")
    with raises_naming(SplitError, path.name, "827", "826"):
        published_split(path, 826, SEEDS, FRACTIONS)
    with raises_naming(SplitError, path.name, "'seed7'"):
        published_split(path, 827, [0, 7], FRACTIONS)
    with raises_naming(SplitError, path.name, "'seed0'", "(661, 82, 84)", "(578, 124, 125)"):
        published_split(path, 827, SEEDS, [0.7, 0.15, 0.15])
    with raises_naming(SplitError, "none.csv", "'hash'"):
        published_split(tmp_path / "none.csv", 827, SEEDS, FRACTIONS)
    bad = tmp_path / "bad.csv"
    bad.write_text("row,seed0\n0,train\n1,tset\n")
    with raises_naming(SplitError, "bad.csv", "'seed0'", "['tset']"):
        published_split(bad, 2, [0], [0.5, 0.5, 0.0])
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("row,seed0\n1,train\n0,test\n")
    with raises_naming(SplitError, "shuffled.csv", "'row'", "0..1"):
        published_split(shuffled, 2, [0], [0.5, 0.0, 0.5])


@pytest.mark.parametrize(
    ("fractions", "seeds"),
    [([0.8, 0.1], SEEDS), ([0.8, 0.1, 0.2], SEEDS), ([1.1, -0.1, 0.0], SEEDS), (FRACTIONS, [])],
)
def test_bad_fractions_or_seeds(fractions: list[float], seeds: list[int]) -> None:
    with pytest.raises(SplitError):
        hash_split([0.0], [0.0], seeds, fractions)


def test_hash_split_key_formula() -> None:
    lat = np.array([12.5, -0.0, 12.5])
    lon = np.array([-45.0, 0.0, -45.0])
    table = hash_split(lat, lon, [3], FRACTIONS)
    keys = ["3:12.500000:-45.000000:0", "3:0.000000:0.000000:0", "3:12.500000:-45.000000:1"]
    for key, label in zip(keys, table["seed3"], strict=True):
        u = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64
        expected = "train" if u < 0.8 else ("val" if u < 0.9 else "test")
        assert label == expected


def test_hash_split_fractions_deterministic_and_seeded() -> None:
    rng = np.random.default_rng(0)
    n = 20000
    lat = rng.uniform(-90, 90, n)
    lon = rng.uniform(-180, 180, n)
    a = hash_split(lat, lon, SEEDS, FRACTIONS)
    b = hash_split(lat.copy(), lon.copy(), SEEDS, FRACTIONS)
    pd.testing.assert_frame_equal(a, b)
    for col, f in zip(["train", "val", "test"], FRACTIONS, strict=True):
        share = (a["seed0"] == col).mean()
        assert abs(share - f) < 4 * np.sqrt(f * (1 - f) / n)  # binomial 4-sigma band
    # Seeds are independent: agreement is about sum f_i^2 = 0.66, not 1.
    agree = (a["seed0"] == a["seed1"]).mean()
    assert abs(agree - 0.66) < 0.02


def test_hash_split_stable_when_rows_are_appended() -> None:
    rng = np.random.default_rng(1)
    lat = np.round(rng.uniform(-60, 60, 500), 2)
    lon = np.round(rng.uniform(-180, 180, 500), 2)
    lat[100:110], lon[100:110] = lat[5], lon[5]  # a repeated location
    base = hash_split(lat, lon, SEEDS, FRACTIONS)
    # Append new rows, including more copies of existing locations.
    lat2 = np.concatenate([lat, [lat[5], lat[7], 33.33], np.round(rng.uniform(-60, 60, 200), 2)])
    lon2 = np.concatenate([lon, [lon[5], lon[7], 44.44], np.round(rng.uniform(-9, 9, 200), 2)])
    grown = hash_split(lat2, lon2, SEEDS, FRACTIONS)
    pd.testing.assert_frame_equal(grown.iloc[:500].reset_index(drop=True), base)
    # Copies of one location are split independently (not all in one part).
    assert base.loc[100:109, "seed0"].nunique() > 1


def test_make_split_dispatch(tmp_path: Path) -> None:
    lat, lon = np.zeros(827), np.zeros(827)
    rsgm = make_split(
        "rsgm", lat, lon, SEEDS, FRACTIONS, published_labels_path(PUBLISHED, "volcano")
    )
    assert len(rsgm) == 827
    pd.testing.assert_frame_equal(
        make_split("hash", lat, lon, SEEDS, FRACTIONS), hash_split(lat, lon, SEEDS, FRACTIONS)
    )
    with raises_naming(SplitError, "'random'"):
        make_split("random", lat, lon, SEEDS, FRACTIONS)
    with raises_naming(SplitError, "'rsgm'"):
        make_split("rsgm", lat, lon, SEEDS, FRACTIONS)


def test_read_split_checks(tmp_path: Path) -> None:
    table = hash_split(np.arange(5.0), np.arange(5.0), [0, 1], FRACTIONS)
    path = write_split(table, tmp_path / "s.csv")
    pd.testing.assert_frame_equal(read_split(path, 5), table, check_dtype=False)
    with raises_naming(SplitError, "s.csv", "'event'", "0..5", "5 rows"):
        read_split(path, 6)
    with raises_naming(SplitError, "none.csv"):
        read_split(tmp_path / "none.csv")
    (tmp_path / "bad.csv").write_text("event,seed0\n0,train\n1,holdout\n")
    with raises_naming(SplitError, "bad.csv", "'seed0'", "['holdout']"):
        read_split(tmp_path / "bad.csv")


@pytest.fixture
def tiny_processed(tmp_path: Path, tiny_catalogue: Any) -> Path:
    spec = CatalogueSpec.from_dict("tiny", tiny_catalogue.spec)
    cat = build_catalogue(tiny_catalogue.path, spec, 0.0)
    ds = catalogue_to_dataset(catalogue_to_geodataframe(cat), cat)
    return write_processed(ds, tmp_path / "tiny.nc")


def test_load_split_disjoint_and_complete(
    tmp_path: Path, tiny_processed: Path, tiny_catalogue: Any
) -> None:
    table = hash_split(tiny_catalogue.lat, tiny_catalogue.lon, SEEDS, FRACTIONS)
    split_csv = write_split(table, tmp_path / "splits" / "tiny.csv")
    xyz = latlon_to_xyz(tiny_catalogue.lat, tiny_catalogue.lon)
    for seed in SEEDS:
        parts = load_split(tiny_processed, split_csv, seed)
        assert set(parts) == set(PARTS)
        labels = table[f"seed{seed}"].to_numpy()
        for part in PARTS:
            assert parts[part].dtype == np.float64 and parts[part].shape[1] == 3
            np.testing.assert_array_equal(parts[part], xyz[labels == part])
        assert sum(len(p) for p in parts.values()) == 60
    with raises_naming(SplitError, "tiny.csv", "'seed9'"):
        load_split(tiny_processed, split_csv, 9)
    short = write_split(table.iloc[:59], tmp_path / "short.csv")
    with raises_naming(SplitError, "short.csv", "'event'", "0..59"):
        load_split(tiny_processed, short, 0)


def test_load_split_real_volcano_published(tmp_path: Path) -> None:
    spec = CatalogueSpec.from_dict(
        "volcano", {"file": "volerup.csv", "lat_col": "Latitude", "lon_col": "Longitude"}
    )
    cat = build_catalogue(ROOT / "data" / "raw" / "volerup.csv", spec, 0.0)
    nc = write_processed(
        catalogue_to_dataset(catalogue_to_geodataframe(cat), cat), tmp_path / "v.nc"
    )
    table = make_split(
        "rsgm", cat.lat, cat.lon, SEEDS, FRACTIONS, published_labels_path(PUBLISHED, "volcano")
    )
    split_csv = write_split(table, tmp_path / "v.csv")
    xyz = latlon_to_xyz(cat.lat, cat.lon)
    for seed in SEEDS:
        parts = load_split(nc, split_csv, seed)
        assert tuple(len(parts[p]) for p in PARTS) == (661, 82, 84)
        # Complete and disjoint: the parts re-assemble the catalogue (as a multiset of rows).
        joined = np.concatenate([parts[p] for p in PARTS])
        np.testing.assert_array_equal(joined[np.lexsort(joined.T)], xyz[np.lexsort(xyz.T)])


def test_rsgm_plus_hash_keeps_published_labels_and_hashes_appended_rows() -> None:
    from pipeline.data.splits import make_split

    labels = PUBLISHED / "volcano_rsgm_splits_seed0-4.csv"
    published = pd.read_csv(labels, dtype=str)
    n0 = len(published)
    rng = np.random.default_rng(0)
    lat = rng.uniform(-80, 80, n0 + 40)
    lon = rng.uniform(-180, 180, n0 + 40)
    seeds, fractions = [0, 1], [0.8, 0.1, 0.1]
    table = make_split("rsgm+hash", lat, lon, seeds, fractions, labels_path=labels)
    assert table["event"].tolist() == list(range(n0 + 40))
    for col in ("seed0", "seed1"):
        assert table[col].iloc[:n0].tolist() == published[col].tolist()
    # Appending more rows never moves an already appended one.
    more = make_split(
        "rsgm+hash",
        np.r_[lat, rng.uniform(-80, 80, 10)],
        np.r_[lon, rng.uniform(-180, 180, 10)],
        seeds,
        fractions,
        labels_path=labels,
    )
    pd.testing.assert_frame_equal(more.iloc[: n0 + 40].reset_index(drop=True), table)
    with raises_naming(SplitError, labels.name, "'rsgm+hash'"):
        make_split("rsgm+hash", lat[:10], lon[:10], seeds, fractions, labels_path=labels)


def test_auto_is_the_published_split_where_labels_exist_and_hash_elsewhere(
    tmp_path: Path,
) -> None:
    from pipeline.config.params_schema import SPLIT_PROTOCOLS
    from pipeline.data.splits import PROTOCOLS, resolve_protocol

    assert SPLIT_PROTOCOLS == PROTOCOLS
    labels = published_labels_path(PUBLISHED, "volcano")
    assert resolve_protocol("auto", labels) == "rsgm+hash"
    assert resolve_protocol("auto", tmp_path / "none.csv") == "hash"
    assert resolve_protocol("auto", None) == "hash"
    assert resolve_protocol("rsgm", None) == "rsgm"
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(-80, 80, 827), rng.uniform(-180, 180, 827)
    # With no appended rows, auto writes byte for byte the published split's file.
    auto = write_split(make_split("auto", lat, lon, SEEDS, FRACTIONS, labels), tmp_path / "a.csv")
    rsgm = write_split(make_split("rsgm", lat, lon, SEEDS, FRACTIONS, labels), tmp_path / "r.csv")
    assert auto.read_bytes() == rsgm.read_bytes()
    pd.testing.assert_frame_equal(
        make_split("auto", lat, lon, SEEDS, FRACTIONS, tmp_path / "none.csv"),
        hash_split(lat, lon, SEEDS, FRACTIONS),
    )
