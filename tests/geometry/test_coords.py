"""Tests for pipeline.geometry.coords: the single lat/lon <-> xyz convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.geometry.coords import latlon_to_xyz, normalize_longitude, xyz_to_latlon
from tests.errors import raises_naming

KNOWN = [
    # lat, lon, expected xyz
    (0.0, 0.0, (1.0, 0.0, 0.0)),
    (0.0, 90.0, (0.0, 1.0, 0.0)),
    (0.0, -90.0, (0.0, -1.0, 0.0)),
    (0.0, -180.0, (-1.0, 0.0, 0.0)),
    (0.0, 180.0, (-1.0, 0.0, 0.0)),
    (90.0, 0.0, (0.0, 0.0, 1.0)),
    (-90.0, 123.0, (0.0, 0.0, -1.0)),
    (45.0, 45.0, (0.5, 0.5, np.sqrt(0.5))),
    (-30.0, 60.0, (np.sqrt(3) / 4, 3.0 / 4.0, -0.5)),
]


@pytest.mark.parametrize(("lat", "lon", "expected"), KNOWN)
def test_known_points_numpy(lat: float, lon: float, expected: tuple[float, float, float]) -> None:
    xyz = latlon_to_xyz(np.float64(lat), np.float64(lon))
    assert xyz.shape == (3,)
    assert xyz.dtype == np.float64
    np.testing.assert_allclose(xyz, expected, atol=1e-15)


@pytest.mark.parametrize(("lat", "lon", "expected"), KNOWN)
def test_known_points_torch(lat: float, lon: float, expected: tuple[float, float, float]) -> None:
    xyz = latlon_to_xyz(
        torch.tensor(lat, dtype=torch.float64), torch.tensor(lon, dtype=torch.float64)
    )
    assert isinstance(xyz, torch.Tensor)
    assert xyz.dtype == torch.float64
    torch.testing.assert_close(xyz, torch.tensor(expected, dtype=torch.float64), atol=1e-15, rtol=0)


def test_round_trip_numpy_float64() -> None:
    rng = np.random.default_rng(0)
    lat = rng.uniform(-89.9, 89.9, size=(50, 4))
    lon = rng.uniform(-180.0, 180.0, size=(50, 4))
    xyz = latlon_to_xyz(lat, lon)
    assert xyz.shape == (50, 4, 3)
    np.testing.assert_allclose(np.linalg.norm(xyz, axis=-1), 1.0, atol=1e-15)
    lat2, lon2 = xyz_to_latlon(xyz)
    assert lat2.dtype == np.float64 and lon2.dtype == np.float64
    np.testing.assert_allclose(lat2, lat, atol=1e-11)
    np.testing.assert_allclose(lon2, lon, atol=1e-11)


def test_round_trip_torch_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    lat = rng.uniform(-90.0, 90.0, size=200)
    lon = rng.uniform(-180.0, 180.0, size=200)
    xyz_np = latlon_to_xyz(lat, lon)
    xyz_t = latlon_to_xyz(torch.from_numpy(lat), torch.from_numpy(lon))
    assert xyz_t.dtype == torch.float64
    np.testing.assert_allclose(xyz_t.numpy(), xyz_np, atol=1e-15)
    lat_t, lon_t = xyz_to_latlon(xyz_t)
    assert isinstance(lat_t, torch.Tensor) and lat_t.dtype == torch.float64
    np.testing.assert_allclose(lat_t.numpy(), lat, atol=1e-11)
    # Near the poles longitude is ill-conditioned; compare on the sphere instead.
    np.testing.assert_allclose(latlon_to_xyz(lat_t, lon_t).numpy(), xyz_np, atol=1e-12)


def test_torch_float32_keeps_dtype() -> None:
    xyz = latlon_to_xyz(torch.tensor([10.0, 20.0]), torch.tensor([30.0, 40.0]))
    assert xyz.dtype == torch.float32
    lat, lon = xyz_to_latlon(xyz)
    assert lat.dtype == torch.float32
    torch.testing.assert_close(lat, torch.tensor([10.0, 20.0]), atol=1e-4, rtol=0)
    torch.testing.assert_close(lon, torch.tensor([30.0, 40.0]), atol=1e-4, rtol=0)


def test_poles_give_latitude_pm90_and_unnormalised_input() -> None:
    lat, lon = xyz_to_latlon(np.array([[0.0, 0.0, 2.0], [0.0, 0.0, -0.5], [3.0, 0.0, 0.0]]))
    np.testing.assert_array_equal(lat, [90.0, -90.0, 0.0])
    np.testing.assert_array_equal(lon, [0.0, 0.0, 0.0])


def test_antimeridian_maps_to_minus_180() -> None:
    # (-1, 0, 0) is on the 180° meridian; the convention returns lon in [-180, 180).
    lat, lon = xyz_to_latlon(np.array([-1.0, 0.0, 0.0]))
    assert lat == 0.0
    assert lon == -180.0
    _, lon_t = xyz_to_latlon(torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64))
    assert lon_t.item() == -180.0


def test_lon_0_360_gives_same_points() -> None:
    lon360 = np.array([0.0, 90.0, 180.0, 270.0, 359.5])
    lon180 = np.array([0.0, 90.0, -180.0, -90.0, -0.5])
    np.testing.assert_allclose(latlon_to_xyz(12.0, lon360), latlon_to_xyz(12.0, lon180), atol=1e-15)


@pytest.mark.parametrize(
    ("lon", "expected"),
    [
        (0.0, 0.0),
        (179.5, 179.5),
        (180.0, -180.0),
        (-180.0, -180.0),
        (181.0, -179.0),
        (270.0, -90.0),
        (359.999, -0.001),
        (360.0, 0.0),
        (-181.0, 179.0),
        (-1e-20, -1e-20),
    ],
)
def test_normalize_longitude(lon: float, expected: float) -> None:
    out = normalize_longitude(np.array([lon]))
    np.testing.assert_allclose(out, [expected], atol=1e-12)
    assert -180.0 <= out[0] < 180.0
    out_t = normalize_longitude(torch.tensor([lon], dtype=torch.float64))
    np.testing.assert_allclose(out_t.numpy(), [expected], atol=1e-12)


def test_normalize_longitude_tiny_negative_below_minus_180_stays_in_range() -> None:
    # (-180 - 1e-14) + 180 mod 360 rounds to 360: the result must still be in [-180, 180).
    out = normalize_longitude(np.array([-180.0 - 1e-13, np.nextafter(-180.0, -np.inf)]))
    assert np.all(out >= -180.0) and np.all(out < 180.0)
    out_t = normalize_longitude(torch.tensor([np.nextafter(-180.0, -np.inf)], dtype=torch.float64))
    assert -180.0 <= out_t.item() < 180.0


def test_integer_input_becomes_float64() -> None:
    xyz = latlon_to_xyz(np.array([0, 90]), np.array([0, 0]))
    assert xyz.dtype == np.float64
    np.testing.assert_allclose(xyz, [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], atol=1e-15)


def test_invalid_inputs_raise() -> None:
    with raises_naming(ValueError, "latlon_to_xyz", "latitude"):
        latlon_to_xyz(np.array([91.0]), np.array([0.0]))
    with raises_naming(ValueError, "latlon_to_xyz", "latitude"):
        latlon_to_xyz(torch.tensor([-90.5]), torch.tensor([0.0]))
    with raises_naming(ValueError, "xyz_to_latlon", "(4, 2)"):
        xyz_to_latlon(np.zeros((4, 2)))
    with raises_naming(ValueError, "xyz_to_latlon", "(4, 2)"):
        xyz_to_latlon(torch.zeros(4, 2))
