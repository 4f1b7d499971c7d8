"""The memorisation-free protocol: distances to the training split and the restricted NLL."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pipeline.split_scores import far_scores, nearest_train_distance_deg


def _xyz(lat_lon_deg: list[tuple[float, float]]) -> np.ndarray:
    lat, lon = np.radians(np.array(lat_lon_deg, dtype=np.float64).T)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)


def test_nearest_distance_is_the_geodesic_angle_even_when_tiny() -> None:
    train = _xyz([(0.0, 0.0), (0.0, 90.0)])
    test = _xyz([(0.0, 1e-5), (0.0, 0.5), (0.0, 89.0), (0.0, 0.0)])
    np.testing.assert_allclose(
        nearest_train_distance_deg(test, train), [1e-5, 0.5, 1.0, 0.0], rtol=1e-7, atol=1e-12
    )


def test_far_scores_keep_only_events_beyond_r() -> None:
    train = _xyz([(0.0, 0.0)])
    test = _xyz([(0.0, 0.0), (0.0, 0.05), (0.0, 0.5), (0.0, 5.0)])
    logp = np.array([10.0, 5.0, -1.0, -3.0])
    out = far_scores(logp, test, train, [0.1, 1.0, 10.0])
    assert out["0.1"] == {"test_nll": pytest.approx(2.0), "n": 2, "share": 0.5}
    assert out["1"] == {"test_nll": pytest.approx(3.0), "n": 1, "share": 0.25}
    assert out["10"]["n"] == 0 and math.isnan(out["10"]["test_nll"])


def test_a_non_finite_test_density_names_the_folder_the_count_and_the_first_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.split_scores as split_scores

    test = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    logp = np.array([-1.0, -np.inf, np.nan, -2.0])
    monkeypatch.setattr(split_scores, "load_trained", lambda *a, **k: None)
    monkeypatch.setattr(split_scores, "log_density", lambda *a, **k: (logp, 0))
    settings = {"rtol": 1e-5, "atol": 1e-5}
    with pytest.raises(RuntimeError) as info:
        split_scores.score_seed(
            tmp_path, "kde", {"test": test, "val": test[:0]}, settings, seed=0, normalize=False
        )
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path}: test NLL is not finite: 2 of 4 test events")
    # Row 1 is (1, 0, 0): latitude 0, longitude 0.
    assert "first: test row 1, lat 0.000, lon 0.000" in message
