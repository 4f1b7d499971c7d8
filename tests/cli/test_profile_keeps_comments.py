"""``geosgm profile`` edits params.yaml in place: comments and layout survive (issue 34)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipeline import cli
from pipeline.config import deep_merge
from pipeline.config.edit import ParamsEditError, apply_profile_text

ROOT = Path(__file__).resolve().parents[2]
PROFILES = sorted(p.stem for p in (ROOT / "profiles").glob("*.yaml"))


def _copy_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "profiles").mkdir(parents=True)
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, repo / name)
    for profile in (ROOT / "profiles").glob("*.yaml"):
        shutil.copy(profile, repo / "profiles" / profile.name)
    return repo


def _value(line: str) -> object:
    """The value a ``key: value  # comment`` line sets."""
    return next(iter((yaml.safe_load(line.strip()) or {None: None}).values()))


@pytest.mark.parametrize("name", PROFILES)
def test_each_bundled_profile_changes_only_the_lines_it_sets(tmp_path: Path, name: str) -> None:
    repo = _copy_repo(tmp_path)
    before = (repo / "params.yaml").read_text()
    assert cli.main(["--repo", str(repo), "profile", name]) == 0
    after = (repo / "params.yaml").read_text()
    old_lines, new_lines = before.split("\n"), after.split("\n")
    assert len(new_lines) == len(old_lines)  # every bundled key exists: nothing inserted
    changed = 0
    for old, new in zip(old_lines, new_lines, strict=True):
        if old == new:
            continue
        changed += 1
        # Same key at the same indentation, a different value, the same trailing comment.
        assert old.split(":")[0] == new.split(":")[0]
        assert _value(old) != _value(new)
        assert old.partition("  #")[2] == new.partition("  #")[2]
    assert changed > 0
    comments = [line for line in old_lines if line.strip().startswith("#")]
    assert [line for line in new_lines if line.strip().startswith("#")] == comments
    profile = yaml.safe_load((repo / "profiles" / f"{name}.yaml").read_text())
    assert yaml.safe_load(after) == deep_merge(yaml.safe_load(before), profile)
    # Applying it again changes nothing.
    assert cli.main(["--repo", str(repo), "profile", name]) == 0
    assert (repo / "params.yaml").read_text() == after


def test_a_missing_key_is_inserted_as_a_block_at_the_end_of_its_mapping() -> None:
    text = "a:\n  x: 1  # keep\n  # about b\n  b:\n    y: 2\n\n# the end\nc: 3\n"
    new = apply_profile_text(text, {"a": {"b": {"z": [1, 2]}, "w": {"v": 1.0e-4}}, "d": 4})
    assert new == (
        "a:\n  x: 1  # keep\n  # about b\n  b:\n    y: 2\n    z: [1, 2]\n  w:\n    v: 1.0e-4\n"
        "\n# the end\nc: 3\nd: 4\n"
    )


def test_a_multi_line_value_is_replaced_as_a_block() -> None:
    text = "a:\n  s: |\n    two\n    lines\n  t: 1\n"
    new = apply_profile_text(text, {"a": {"s": {"k": "v"}}})
    assert new == "a:\n  s:\n    k: v\n  t: 1\n"
    assert yaml.safe_load(new) == {"a": {"s": {"k": "v"}, "t": 1}}


def test_a_flow_mapping_is_merged_on_its_line_keeping_the_comment() -> None:
    text = "runner: {kind: thread, max_workers: 5}   # note: 5 # seeds\n"
    new = apply_profile_text(text, {"runner": {"max_workers": 1}})
    assert new == "runner: {kind: thread, max_workers: 1}   # note: 5 # seeds\n"


def test_text_the_editor_cannot_follow_is_refused_and_params_yaml_is_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "base: &b {x: 1}\nother: *b\n"  # an alias: editing one line changes two values
    with pytest.raises(ParamsEditError):
        apply_profile_text(text, {"base": {"x": 2}})
    repo = tmp_path / "p"
    (repo / "profiles").mkdir(parents=True)
    (repo / "dvc.yaml").write_text("stages: {}\n")
    (repo / "params.yaml").write_text(text)
    (repo / "profiles" / "q.yaml").write_text("base: {x: 2}\n")
    assert cli.main(["--repo", str(repo), "profile", "q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("geosgm profile: cannot apply q.yaml") and err.count("\n") == 1
    assert (repo / "params.yaml").read_text() == text
