"""The bundled run: a DVC remote inside the project that a fresh clone's queries fetch from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.query.bundle import BUNDLE_DIR, BUNDLE_REMOTE, fetch_from_bundle, fitting_stage

DVC = str(Path(sys.executable).with_name("dvc"))


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=300)


def test_fitting_stage_names_the_stage_that_writes_the_folder() -> None:
    assert fitting_stage("volcano", "kde") == "train@volcano-kde"
    assert fitting_stage("fire", "ambient_rb_corrected") == "derive@fire"
    assert fitting_stage("flood", "kde_rsgm") == "ensemble@flood-kde_rsgm"
    with pytest.raises(ValueError, match="nosuch"):
        fitting_stage("flood", "nosuch")


def test_fetch_from_bundle_restores_the_pushed_outputs(tmp_path: Path) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    _run(["git", "init", "-q"], repo)
    _run([DVC, "init", "-q"], repo)
    (repo / "dvc.yaml").write_text(
        "stages:\n  fit:\n    cmd: mkdir -p data/models/a/kde/seed0 && "
        "echo weights > data/models/a/kde/seed0/w.txt\n    outs:\n      - data/models/a/kde\n"
    )
    _run([DVC, "repro", "-q"], repo)
    _run([DVC, "remote", "add", BUNDLE_REMOTE, BUNDLE_DIR], repo)
    _run([DVC, "push", "-q", "-r", BUNDLE_REMOTE, "fit"], repo)
    weights = repo / "data/models/a/kde/seed0/w.txt"
    # A fresh clone has neither the folder nor a cache.
    subprocess.run(["rm", "-rf", str(repo / "data/models"), str(repo / ".dvc/cache")], check=True)
    assert fetch_from_bundle(repo, "fit")
    assert weights.read_text() == "weights\n"
    # No bundle folder: nothing to fetch, and no error.
    subprocess.run(["rm", "-rf", str(repo / "data/models"), str(repo / BUNDLE_DIR)], check=True)
    assert not fetch_from_bundle(repo, "fit")
    assert not weights.exists()
