"""A split that leaves train, val or test empty fails with one line (issue 33)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.errors import SplitError
from pipeline.data.splits import check_nonempty_parts, make_split
from tests.errors import raises_naming


def _coords(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(-80.0, 80.0, n), rng.uniform(-179.0, 179.0, n)


def test_five_events_fail_naming_catalogue_seed_and_part() -> None:
    lat, lon = _coords(5)
    table = make_split("hash", lat, lon, seeds=[0, 1], fractions=[0.8, 0.1, 0.1])
    with pytest.raises(SplitError) as info:
        check_nonempty_parts(table, "tiny")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("catalogue tiny has 5 events: split seed 0 gives 0 ")
    assert message.endswith("events (need at least 1 in train, val and test)")


def test_empty_part_is_named() -> None:
    lat, lon = _coords(4)
    table = make_split("hash", lat, lon, seeds=[3], fractions=[0.8, 0.1, 0.1])
    table["seed3"] = ["train", "train", "val", "val"]
    with raises_naming(SplitError, "seed 3", "0 test"):
        check_nonempty_parts(table, "cat")


def test_large_catalogue_passes() -> None:
    lat, lon = _coords(500)
    table = make_split("hash", lat, lon, seeds=[0, 1, 2], fractions=[0.8, 0.1, 0.1])
    check_nonempty_parts(table, "big")
