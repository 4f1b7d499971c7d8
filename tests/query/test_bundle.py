"""The bundled run: a DVC remote inside the project that a fresh clone's queries fetch from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.query.bundle import (
    BUNDLE_DIR,
    BUNDLE_REMOTE,
    INDEX_FILE,
    QUERY_FILES,
    bundle_index,
    fetch_from_bundle,
    fitting_stage,
)
from tests.errors import raises_naming
from tools.bundle import bundle_targets, copy_to_bundle, lock_stages, stage_objects

pytestmark = pytest.mark.process  # dvc fetches from the bundle

DVC = str(Path(sys.executable).with_name("dvc"))


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=300)


def test_fitting_stage_names_the_stage_that_writes_the_folder() -> None:
    assert fitting_stage("volcano", "kde") == "train@volcano-kde"
    assert fitting_stage("fire", "ambient_rb_corrected") == "derive@fire"
    assert fitting_stage("flood", "kde_rsgm") == "ensemble@flood-kde_rsgm"
    with raises_naming(ValueError, "'nosuch'"):
        fitting_stage("flood", "nosuch")


def _project(tmp_path: Path) -> Path:
    """A git + DVC project whose stages write a kde folder and a score-network folder."""
    repo = tmp_path / "project"
    repo.mkdir()
    _run(["git", "init", "-q"], repo)
    _run([DVC, "init", "-q"], repo)
    net = " && ".join(
        f"mkdir -p data/models/a/rsgm/seed{s} && "
        + " && ".join(f"echo {f}{s} > data/models/a/rsgm/seed{s}/{f}" for f in files)
        for s in (0, 1)
        for files in [(*QUERY_FILES, "state.safetensors", "model.safetensors")]
    )
    (repo / "dvc.yaml").write_text(
        "stages:\n  fit:\n    cmd: mkdir -p data/models/a/kde/seed0 && "
        "echo weights > data/models/a/kde/seed0/w.txt\n    outs:\n      - data/models/a/kde\n"
        f"  net:\n    cmd: {net}\n    outs:\n      - data/models/a/rsgm\n"
    )
    _run([DVC, "repro", "-q"], repo)
    _run([DVC, "remote", "add", BUNDLE_REMOTE, BUNDLE_DIR], repo)
    return repo


def _push(repo: Path, index: dict[str, list[str]]) -> None:
    lock = lock_stages(repo)
    for stage, paths in index.items():
        assert copy_to_bundle(repo, lock, stage, paths, repo / ".dvc/cache") > 0
        assert copy_to_bundle(repo, lock, stage, paths, repo / ".dvc/cache") == 0  # all there
    (repo / BUNDLE_DIR / INDEX_FILE).write_text(json.dumps(index))


def _fresh_clone_state(repo: Path) -> None:
    """A fresh clone has neither the model folders nor a cache."""
    subprocess.run(["rm", "-rf", str(repo / "data/models"), str(repo / ".dvc/cache")], check=True)


def test_fetch_from_bundle_restores_the_pushed_outputs(tmp_path: Path) -> None:
    repo = _project(tmp_path)
    # No EMA file: the whole folder.
    assert bundle_targets(repo, "a", "kde") == ("train@a-kde", ["data/models/a/kde"])
    _push(repo, {"fit": ["data/models/a/kde"]})
    weights = repo / "data/models/a/kde/seed0/w.txt"
    _fresh_clone_state(repo)
    assert bundle_index(repo) == {"fit": ["data/models/a/kde"]}
    assert fetch_from_bundle(repo, "fit")
    assert weights.read_text() == "weights\n"
    assert not fetch_from_bundle(repo, "net")  # not in the index: nothing fetched
    assert not (repo / "data/models/a/rsgm").exists()
    # No bundle folder: nothing to fetch, and no error.
    subprocess.run(["rm", "-rf", str(repo / "data/models"), str(repo / BUNDLE_DIR)], check=True)
    assert bundle_index(repo) == {}
    assert not fetch_from_bundle(repo, "fit")
    assert not weights.exists()


def test_a_score_network_is_bundled_as_its_query_files_only(tmp_path: Path) -> None:
    """EMA weights, meta and config of every seed; not the raw weights or optimizer state."""
    repo = _project(tmp_path)
    stage, paths = bundle_targets(repo, "a", "rsgm")
    assert stage == "train@a-rsgm" and paths is not None
    assert paths == [f"data/models/a/rsgm/seed{s}/{f}" for s in (0, 1) for f in QUERY_FILES]
    _push(repo, {"net": paths})
    _fresh_clone_state(repo)
    assert fetch_from_bundle(repo, "net")
    for s in (0, 1):
        folder = repo / f"data/models/a/rsgm/seed{s}"
        assert sorted(p.name for p in folder.iterdir()) == sorted(QUERY_FILES)
        assert (folder / "ema.safetensors").read_text() == f"ema.safetensors{s}\n"


def test_a_damaged_index_is_one_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / BUNDLE_DIR).mkdir()
    (tmp_path / BUNDLE_DIR / INDEX_FILE).write_text('{"fit": 3}')
    with raises_naming(ValueError, f"{BUNDLE_DIR}/{INDEX_FILE}", one_line=True):
        bundle_index(tmp_path)
    (tmp_path / BUNDLE_DIR / INDEX_FILE).write_text("{not json")
    with raises_naming(ValueError, f"{BUNDLE_DIR}/{INDEX_FILE}", one_line=True):
        bundle_index(tmp_path)


def test_the_committed_bundle_lists_kde_and_rsgm_of_every_catalogue() -> None:
    """What a fresh clone of this repository can answer at once."""
    root = Path(__file__).resolve().parents[2]
    index = bundle_index(root)
    for catalogue in ("volcano", "earthquake", "flood", "fire"):
        assert index[f"train@{catalogue}-kde"] == [f"data/models/{catalogue}/kde"]
        files = index[f"train@{catalogue}-rsgm"]
        assert len(files) == 5 * len(QUERY_FILES)
    # Every object the index asks for is in the bundle, as dvc.lock names it (a rerun that
    # was not bundled again fails here, not in a newcomer's first query). The bundle has the
    # cache's layout, so it stands in for the cache.
    bundle, lock = root / BUNDLE_DIR, lock_stages(root)
    for stage, paths in index.items():
        for md5 in stage_objects(lock, stage, paths, bundle):
            assert (bundle / "files/md5" / md5[:2] / md5[2:]).is_file(), f"{stage}: {md5}"
