"""Tests for pipeline.maps: grids, exact cell areas, CF netCDF output and offline cartopy maps."""

from __future__ import annotations

import math
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.geometry.coords import latlon_to_xyz
from pipeline.geometry.vmf import vmf_logp_s2
from pipeline.maps.figure import draw_density_map
from pipeline.maps.grid import (
    UNIFORM_LOG_DENSITY,
    grid_cell_areas,
    grid_normalization,
    latlon_grid,
)
from pipeline.maps.netcdf import write_density_netcdf
from pipeline.maps.offline import OfflineDataError, configure_offline_cartopy
from tests.errors import raises_naming

NATURALEARTH = Path(__file__).resolve().parents[1] / "data" / "naturalearth"


@pytest.fixture
def restore_cartopy_config() -> Iterator[None]:
    """Undo the global cartopy configuration a test makes."""
    import cartopy

    saved_dir = cartopy.config["pre_existing_data_dir"]
    saved_downloaders = dict(cartopy.config["downloaders"])
    yield
    cartopy.config["pre_existing_data_dir"] = saved_dir
    cartopy.config["downloaders"].clear()
    cartopy.config["downloaders"].update(saved_downloaders)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make any socket connection or cartopy download fail loudly and record the attempt."""
    import cartopy.io

    attempts: list[Any] = []

    def refuse_connect(self: socket.socket, address: Any) -> None:
        attempts.append(("connect", address))
        raise OSError(f"network access attempted during a map test: {address}")

    def refuse_download(self: Any, target_path: Any, format_dict: Any) -> None:
        attempts.append(("download", format_dict))
        raise OSError(f"cartopy download attempted: {format_dict}")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(cartopy.io.Downloader, "acquire_resource", refuse_download)
    return attempts


def _vmf_mixture_logp(xyz: np.ndarray) -> np.ndarray:
    """Log-density of an equal mixture of two von Mises-Fisher laws on S² (closed form)."""
    mus = np.asarray(latlon_to_xyz(np.array([35.0, -10.0]), np.array([139.0, -75.0])))
    comp = [vmf_logp_s2(xyz, mus[k : k + 1], kappa)[:, 0] for k, kappa in enumerate((30.0, 8.0))]
    return np.logaddexp.reduce(np.stack(comp, axis=1) + np.log(0.5), axis=1)


def test_latlon_grid_cell_centres_and_row_major_points() -> None:
    lat, lon, xyz = latlon_grid(6, 8)
    np.testing.assert_allclose(lat, [-75.0, -45.0, -15.0, 15.0, 45.0, 75.0])
    np.testing.assert_allclose(lon, -180.0 + 22.5 + 45.0 * np.arange(8))
    assert xyz.shape == (48, 3) and xyz.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(xyz, axis=1), 1.0, atol=1e-15)
    # row-major: point (i, j) is latitude i, longitude j
    i, j = 4, 3
    expected = np.asarray(latlon_to_xyz(lat[i], lon[j]))
    np.testing.assert_allclose(xyz[i * 8 + j], expected, atol=1e-15)
    assert np.all(lon >= -180.0) and np.all(lon < 180.0)
    with raises_naming(ValueError, "latlon_grid", "(0, 4)"):
        latlon_grid(0, 4)


def test_cell_areas_are_exact_and_tile_the_sphere() -> None:
    lat, lon, _ = latlon_grid(7, 5)
    areas = grid_cell_areas(lat, lon)
    assert areas.shape == (7, 5)
    assert math.isclose(float(areas.sum()), 4.0 * math.pi, rel_tol=1e-13)
    # first row: a polar cap slice between -90 and -90 + 180/7 degrees, 72 degrees wide
    cap = (2.0 * math.pi / 5.0) * (math.sin(math.radians(-90.0 + 180.0 / 7.0)) + 1.0)
    assert math.isclose(float(areas[0, 0]), cap, rel_tol=1e-13)


def test_grid_normalization_uniform_is_one_and_vmf_mixture_close_to_one() -> None:
    lat, lon, xyz = latlon_grid(90, 180)
    uniform = np.full((90, 180), UNIFORM_LOG_DENSITY)
    assert math.isclose(grid_normalization(lat, lon, uniform), 1.0, rel_tol=1e-13)
    logp = _vmf_mixture_logp(xyz).reshape(90, 180)
    # midpoint rule on a 2-degree grid: error O(h^2 * kappa) for the kappa = 30 bump
    assert abs(grid_normalization(lat, lon, logp) - 1.0) < 2e-3
    with raises_naming(ValueError, "log_density", "(90, 10)", "(90, 180)"):
        grid_normalization(lat, lon, uniform[:, :10])


def test_write_density_netcdf_round_trip_with_cf_metadata(tmp_path: Path) -> None:
    import xarray as xr

    lat, lon, xyz = latlon_grid(12, 24)
    logp = _vmf_mixture_logp(xyz).reshape(12, 24)
    out = write_density_netcdf(
        tmp_path / "sub" / "map.nc",
        lat,
        lon,
        logp,
        {"catalogue": "volcano", "rtol": 1e-5, "model_config": {"width": 256}, "exact": True},
    )
    assert sorted(p.name for p in out.parent.iterdir()) == ["map.nc"]  # no temp file left
    with xr.open_dataset(out) as ds:
        np.testing.assert_array_equal(ds["log_density"].values, logp)
        np.testing.assert_array_equal(ds["lat"].values, lat)
        np.testing.assert_array_equal(ds["lon"].values, lon)
        assert ds["log_density"].dims == ("lat", "lon")
        assert ds["lat"].attrs["units"] == "degrees_north"
        assert ds["lon"].attrs["units"] == "degrees_east"
        assert ds["lat"].attrs["standard_name"] == "latitude"
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert ds.attrs["catalogue"] == "volcano"
        assert ds.attrs["rtol"] == 1e-5
        assert ds.attrs["model_config"] == '{"width": 256}'
        assert ds.attrs["exact"] == 1
    with raises_naming(ValueError, "log_density", "(24, 12)", "(12, 24)"):
        write_density_netcdf(tmp_path / "bad.nc", lat, lon, logp.T)
    with raises_naming(TypeError, "'x'", "object"):
        write_density_netcdf(tmp_path / "bad.nc", lat, lon, logp, {"x": object()})


def test_draw_density_map_offline(
    tmp_path: Path, restore_cartopy_config: None, no_network: list[Any]
) -> None:
    from PIL import Image

    lat, lon, xyz = latlon_grid(36, 72)
    logp = _vmf_mixture_logp(xyz).reshape(36, 72)
    rng = np.random.default_rng(0)
    events = np.stack([rng.normal(35.0, 4.0, 50), rng.normal(139.0, 4.0, 50)], axis=1)
    samples = np.stack([rng.normal(-10.0, 8.0, 300), rng.normal(-75.0, 8.0, 300)], axis=1)
    out = draw_density_map(
        lat,
        lon,
        logp,
        events,
        samples,
        "test map",
        tmp_path / "maps" / "m.png",
        projection="mollweide",
        naturalearth_dir=NATURALEARTH,
        dpi=60,
    )
    assert no_network == []
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as img:
        width, height = img.size
        pixels = np.asarray(img.convert("RGB"), dtype=np.float64)
    assert height > width  # two stacked panels
    assert pixels.std() > 20.0  # not a blank canvas
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.png"]
    with raises_naming(ValueError, "'merc'"):
        draw_density_map(lat, lon, logp, None, None, "t", tmp_path / "x.png", projection="merc")
    with raises_naming(ValueError, "log_density", "(72, 36)", "(36, 72)"):
        draw_density_map(lat, lon, logp.T, None, None, "t", tmp_path / "x.png")
    with raises_naming(ValueError, "log_density", "1 non-finite"):
        bad = logp.copy()
        bad[0, 0] = np.nan
        draw_density_map(lat, lon, bad, None, None, "t", tmp_path / "x.png")


def test_unshipped_natural_earth_layer_raises_instead_of_downloading(
    restore_cartopy_config: None, no_network: list[Any]
) -> None:
    import cartopy
    import cartopy.io.shapereader as shpreader

    data_dir = configure_offline_cartopy(NATURALEARTH)
    assert cartopy.config["pre_existing_data_dir"] == data_dir
    shipped = shpreader.natural_earth(resolution="110m", category="physical", name="coastline")
    assert Path(shipped) == data_dir / "shapefiles/natural_earth/physical/ne_110m_coastline.shp"
    with raises_naming(OfflineDataError, "ne_10m_coastline.shp"):
        shpreader.natural_earth(resolution="10m", category="physical", name="coastline")
    assert no_network == []


def test_configure_offline_cartopy_rejects_folder_without_data(tmp_path: Path) -> None:
    with raises_naming(FileNotFoundError, str(tmp_path), "ne_110m_coastline.shp"):
        configure_offline_cartopy(tmp_path)


def _map_cfg(**changes: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "n_lat": 18,
        "n_lon": 36,
        "rtol": 1e-5,
        "atol": 1e-5,
        "batch_size": 64,
        "model_seed": 0,
        "n_samples": 40,
        "sample_steps": 10,
        "sample_seed": 0,
        "projection": "robinson",
        "dynamic_range": 8,
        "dpi": 50,
        "naturalearth_dir": str(NATURALEARTH),
        "display_upsample": 2,
        "spread_seeds": [],
        "spread_grid": [6, 12],
    }
    cfg.update(changes)
    return cfg


def test_maps_stage_config_is_checked() -> None:
    from pipeline.maps.render import MapConfig

    cfg = MapConfig.from_params(_map_cfg())
    assert cfg.dynamic_range == 8.0 and isinstance(cfg.dynamic_range, float)
    with raises_naming(ValueError, "maps", "['extra']"):
        MapConfig.from_params({**_map_cfg(), "extra": 1})
    with raises_naming(ValueError, "maps.n_lat", "7.5"):
        MapConfig.from_params(_map_cfg(n_lat=7.5))
    with raises_naming(ValueError, "maps.rtol", "0.0"):
        MapConfig.from_params(_map_cfg(rtol=0.0))
    with raises_naming(ValueError, "maps.projection"):
        MapConfig.from_params(_map_cfg(projection="mercator"))
    with raises_naming(ValueError, "maps.spread_seeds", "[0]"):
        MapConfig.from_params(_map_cfg(spread_seeds=[0]))
    with raises_naming(ValueError, "maps.spread_grid", "[6]"):
        MapConfig.from_params(_map_cfg(spread_grid=[6]))
    with raises_naming(ValueError, "maps.display_upsample", "0"):
        MapConfig.from_params(_map_cfg(display_upsample=0))


def test_maps_stage_renders_a_known_density(
    tmp_path: Path, restore_cartopy_config: None, no_network: list[Any]
) -> None:
    """The stage core on a closed-form vMF mixture: grid values, Z and outputs are exact."""
    import xarray as xr

    from pipeline.maps.render import MapConfig, render_map

    cfg = MapConfig.from_params(_map_cfg())
    calls: list[int] = []

    def density_fn(xyz: np.ndarray) -> tuple[np.ndarray, int]:
        calls.append(len(xyz))
        return _vmf_mixture_logp(xyz), 77

    def sample_fn(n: int) -> np.ndarray:
        v = np.random.default_rng(1).normal(size=(n, 3))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    test_xyz = np.asarray(latlon_to_xyz(np.array([30.0, -20.0]), np.array([140.0, -70.0])))
    stats = render_map(
        density_fn,
        sample_fn,
        test_xyz,
        cfg,
        tmp_path / "reports" / "maps" / "volcano" / "rsgm.png",
        tmp_path / "data" / "maps" / "volcano" / "rsgm.nc",
        title="volcano / rsgm",
        attrs={"catalogue": "volcano", "model": "rsgm"},
    )
    assert calls == [18 * 36]
    lat, lon, xyz = latlon_grid(18, 36)
    expected = _vmf_mixture_logp(xyz).reshape(18, 36)
    assert stats["nfe"] == 77.0
    assert math.isclose(stats["normalization"], grid_normalization(lat, lon, expected))
    assert abs(stats["normalization"] - 1.0) < 0.1  # coarse 10-degree grid, kappa = 30 bump
    assert (tmp_path / "reports" / "maps" / "volcano" / "rsgm.png").stat().st_size > 1000
    with xr.open_dataset(tmp_path / "data" / "maps" / "volcano" / "rsgm.nc") as ds:
        np.testing.assert_array_equal(ds["log_density"].values, expected)
        assert ds.attrs["model"] == "rsgm" and ds.attrs["ode_nfe"] == 77
        assert ds.attrs["grid_normalization"] == stats["normalization"]
    assert no_network == []

    def bad_density(xyz: np.ndarray) -> tuple[np.ndarray, int]:
        out = _vmf_mixture_logp(xyz)
        out[3] = np.nan
        return out, 1

    with raises_naming(ValueError, "density_fn", "1 non-finite"):
        render_map(
            bad_density, sample_fn, test_xyz, cfg, tmp_path / "x.png", tmp_path / "x.nc", title="x"
        )


# --- display interpolation, seed spread, and what moved between versions ---


def test_display_upsampling_keeps_constants_and_linear_fields_and_wraps() -> None:
    from pipeline.maps.grid import upsample_for_display

    lat, lon, _ = latlon_grid(6, 12)
    const = np.full((6, 12), -2.5)
    f_lat, f_lon, fine = upsample_for_display(lat, lon, const, 4)
    assert fine.shape == (24, 48) and f_lat.shape == (24,) and f_lon.shape == (48,)
    np.testing.assert_allclose(fine, -2.5, rtol=0, atol=1e-12)
    # A field linear in latitude is reproduced exactly between the outer rows.
    linear = np.repeat(lat[:, None], 12, axis=1) / 10.0
    _, _, fine = upsample_for_display(lat, lon, linear, 4)
    inner = (f_lat > lat[0]) & (f_lat < lat[-1])
    np.testing.assert_allclose(fine[inner], np.repeat(f_lat[inner, None], 48, 1) / 10.0, atol=1e-12)
    # Longitude wraps: beyond the last centre the value moves towards the first column.
    step = np.zeros((6, 12))
    step[:, 0] = 1.0
    _, _, fine = upsample_for_display(lat, lon, step, 4)
    assert fine[:, -1].min() > 0.0 and fine[:, 0].min() > 0.0
    with raises_naming(ValueError, "upsample_for_display", "factor 0"):
        upsample_for_display(lat, lon, const, 0)
    assert upsample_for_display(lat, lon, const, 1)[2] is not None


def test_seed_spread_is_the_sample_sd_over_seeds() -> None:
    from pipeline.maps.render import seed_spread

    # Seed k's density is the vMF mixture shifted by k nats: the spread is sd(0..4) everywhere.
    lat, lon, sd = seed_spread(lambda k, xyz: _vmf_mixture_logp(xyz) + k, [0, 1, 2, 3, 4], 6, 12)
    assert sd.shape == (6, 12) and lat.shape == (6,) and lon.shape == (12,)
    np.testing.assert_allclose(sd, np.std([0, 1, 2, 3, 4], ddof=1), rtol=1e-12)
    with raises_naming(ValueError, "[0]"):
        seed_spread(lambda k, xyz: _vmf_mixture_logp(xyz), [0], 6, 12)


def _grid(tmp_path: Path, name: str, shift: float, sd: float | None) -> Path:
    lat, lon, xyz = latlon_grid(18, 36)
    logp = _vmf_mixture_logp(xyz).reshape(18, 36)
    logp[:9] += shift  # the southern half moves by `shift`
    spread = None
    if sd is not None:
        s_lat, s_lon, _ = latlon_grid(6, 12)
        spread = (s_lat, s_lon, np.full((6, 12), sd))
    return write_density_netcdf(tmp_path / f"{name}.nc", lat, lon, logp, {"model": "m"}, spread)


def test_density_grid_round_trips_with_its_spread(tmp_path: Path) -> None:
    from pipeline.maps.netcdf import read_density_netcdf

    grid = read_density_netcdf(_grid(tmp_path, "a", 0.0, 0.25))
    assert grid.log_density.shape == (18, 36) and grid.attrs["Conventions"] == "CF-1.8"
    assert grid.spread is not None and grid.spread[2].shape == (6, 12)
    np.testing.assert_array_equal(grid.spread[2], 0.25)
    assert read_density_netcdf(_grid(tmp_path, "b", 0.0, None)).spread is None
    (tmp_path / "junk.nc").write_bytes(b"not netcdf")
    with raises_naming(ValueError, "junk.nc"):
        read_density_netcdf(tmp_path / "junk.nc")
    with raises_naming(ValueError, "none.nc"):
        read_density_netcdf(tmp_path / "none.nc")


def test_change_is_exact_and_marked_only_beyond_twice_the_spread(tmp_path: Path) -> None:
    from pipeline.maps.change import density_change
    from pipeline.maps.netcdf import read_density_netcdf

    a = read_density_netcdf(_grid(tmp_path, "a", 0.0, 0.1))
    b = read_density_netcdf(_grid(tmp_path, "b", 0.5, 0.1))
    change = density_change(a, b)
    np.testing.assert_allclose(change.delta[:9], 0.5, atol=1e-12)
    np.testing.assert_allclose(change.delta[9:], 0.0, atol=1e-12)
    assert change.yardstick is not None and change.exceeds is not None
    np.testing.assert_allclose(change.yardstick, 2 * math.sqrt(2) * 0.1)  # 0.283 < 0.5
    assert change.exceeds[:9].all() and not change.exceeds[9:].any()
    assert change.fraction_exceeding == pytest.approx(0.5, abs=1e-12)  # half the area
    small = density_change(a, read_density_netcdf(_grid(tmp_path, "c", 0.2, 0.1)))
    assert small.exceeds is not None and not small.exceeds.any()
    no_spread = density_change(
        read_density_netcdf(_grid(tmp_path, "d", 0.0, None)),
        read_density_netcdf(_grid(tmp_path, "e", 0.5, None)),
    )
    assert no_spread.exceeds is None and no_spread.fraction_exceeding is None
    lat, lon, xyz = latlon_grid(9, 18)
    coarse = read_density_netcdf(
        write_density_netcdf(tmp_path / "f.nc", lat, lon, np.zeros((9, 18)))
    )
    with raises_naming(ValueError, "(18, 36)", "(9, 18)", "maps.n_lat/n_lon"):
        density_change(a, coarse)


def test_change_maps_between_git_revisions(
    tmp_path: Path, restore_cartopy_config: None, no_network: list[Any]
) -> None:
    import subprocess

    from pipeline.report.map_changes import change_blocks, change_maps

    repo = tmp_path / "repo"
    grids = repo / "data/maps/volcano"
    grids.mkdir(parents=True)
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "PATH": os.environ["PATH"],
    }

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env, capture_output=True)

    git("init", "-q")
    shutil.copy(_grid(tmp_path, "a", 0.0, 0.1), grids / "rsgm.nc")
    git("add", "-A")
    git("commit", "-qm", "a")
    shutil.copy(_grid(tmp_path, "b", 0.5, 0.1), grids / "rsgm.nc")
    pairs = [("volcano", "rsgm"), ("volcano", "ambient_rb")]
    out = change_maps(repo, "HEAD", "workspace", pairs, tmp_path / "change",
                      naturalearth_dir=NATURALEARTH, display_upsample=2)  # fmt: skip
    drawn, missing = out
    assert drawn.png is not None and drawn.png.stat().st_size > 1000
    assert drawn.max_abs_delta == pytest.approx(0.5)
    assert drawn.fraction_exceeding == pytest.approx(0.5)
    assert missing.png is None and "not in git at HEAD" in missing.note
    text = " ".join(getattr(b, "markdown", "") for b in change_blocks(out, "HEAD"))
    assert "volcano/rsgm: max |Δ| 0.50 nats, 50.0% of the sphere" in text
    assert "No change map for 1 map(s)" in text
    assert no_network == []


# --- the spread panel hides where the density is negligible ---


def test_mass_level_is_exact_on_a_two_level_grid() -> None:
    from pipeline.maps.grid import grid_cell_areas, mass_level

    # Two latitude rows: each hemisphere is 2π sr. The north holds 1/(1 + eps) of the mass.
    lat, lon, _ = latlon_grid(2, 4)
    np.testing.assert_allclose(grid_cell_areas(lat, lon).sum(axis=1), 2 * np.pi)
    for eps, level in ((0.005, 0.0), (0.02, math.log(0.02))):  # 0.995 >= 0.99; 0.980 < 0.99
        logp = np.array([[math.log(eps)] * 4, [0.0] * 4]) + 3.0
        assert mass_level(lat, lon, logp, 0.99) == pytest.approx(level + 3.0, abs=1e-12)
    logp = np.array([[math.log(0.02)] * 4, [0.0] * 4])
    assert mass_level(lat, lon, logp, 1.0) == pytest.approx(math.log(0.02))
    assert mass_level(lat, lon, logp, 0.5) == 0.0
    with raises_naming(ValueError, "mass", "0.0"):
        mass_level(lat, lon, logp, 0.0)


def test_mass_level_matches_a_brute_force_count() -> None:
    from pipeline.maps.grid import grid_cell_areas, mass_level

    lat, lon, xyz = latlon_grid(18, 36)
    logp = _vmf_mixture_logp(xyz).reshape(18, 36)
    areas = grid_cell_areas(lat, lon)
    level = mass_level(lat, lon, logp, 0.99)
    total = np.sum(np.exp(logp) * areas)
    inside = np.sum(np.exp(logp) * areas * (logp >= level)) / total
    # The smallest superlevel set with >= 99%: one cell fewer would fall below it.
    just_above = np.sum(np.exp(logp) * areas * (logp > level)) / total
    assert inside >= 0.99 > just_above
    assert 0 < np.mean(logp >= level) < 0.5  # two bumps: most of the globe is negligible


def test_seed_spread_and_mean_gives_the_log_of_the_mean_density() -> None:
    from pipeline.maps.render import seed_spread_and_mean

    # Seed k's density is the mixture times e^k: the mean density is p · mean(e^k).
    _, _, xyz = latlon_grid(6, 12)
    _, _, sd, mean = seed_spread_and_mean(
        lambda k, pts: _vmf_mixture_logp(pts) + k, [0, 1, 2], 6, 12
    )
    expected = _vmf_mixture_logp(xyz).reshape(6, 12) + math.log(np.mean(np.exp([0, 1, 2])))
    np.testing.assert_allclose(mean, expected, rtol=1e-12)
    np.testing.assert_allclose(sd, 1.0, rtol=1e-12)


def test_render_map_masks_the_spread_outside_the_99_percent_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.maps import render
    from pipeline.maps.grid import mass_level

    drawn: dict[str, Any] = {}
    monkeypatch.setattr(render, "draw_density_map", lambda *a, **kw: drawn.update(kw))
    cfg = render.MapConfig.from_params(_map_cfg(spread_seeds=[0, 1]))

    def sample_fn(n: int) -> np.ndarray:
        return np.tile([0.0, 0.0, 1.0], (n, 1))

    render.render_map(
        lambda xyz: (_vmf_mixture_logp(xyz), 1),
        sample_fn,
        np.zeros((0, 3)),
        cfg,
        tmp_path / "m.png",
        tmp_path / "m.nc",
        title="t",
        seed_density_fn=lambda k, xyz: _vmf_mixture_logp(xyz) + 0.1 * k,
    )
    lat, lon, xyz = latlon_grid(6, 12)
    mean = _vmf_mixture_logp(xyz).reshape(6, 12) + math.log(np.mean(np.exp([0.0, 0.1])))
    np.testing.assert_array_equal(drawn["spread_mask"], mean < mass_level(lat, lon, mean, 0.99))
    assert 0 < drawn["spread_mask"].sum() < drawn["spread_mask"].size
    assert "grey: outside the 99% mass region" in drawn["spread_label"]


def test_the_spread_panel_draws_hidden_cells_grey(
    tmp_path: Path, restore_cartopy_config: None, no_network: list[Any]
) -> None:
    from PIL import Image

    lat, lon, xyz = latlon_grid(18, 36)
    logp = _vmf_mixture_logp(xyz).reshape(18, 36)
    s_lat, s_lon, _ = latlon_grid(6, 12)
    sd = np.linspace(0.0, 1.0, 72).reshape(6, 12)
    hidden = np.zeros((6, 12), dtype=bool)
    hidden[:3] = True  # the southern hemisphere
    args = (lat, lon, logp, None, None, "t")
    kw: dict[str, Any] = dict(naturalearth_dir=NATURALEARTH, dpi=40, spread=(s_lat, s_lon, sd))
    out = draw_density_map(*args, tmp_path / "m.png", spread_mask=hidden, **kw)
    with Image.open(out) as img:
        pixels = np.asarray(img.convert("RGB"))
    grey = np.all(pixels == 204, axis=-1)  # "0.8" is (204, 204, 204)
    assert grey[pixels.shape[0] // 2 :].sum() > 500  # in the lower (spread) panel
    with raises_naming(ValueError, "spread_mask", "(2, 12)", "(6, 12)"):
        draw_density_map(*args, tmp_path / "x.png", spread_mask=hidden[:2], **kw)
