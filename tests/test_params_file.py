"""The YAML reader outside the stages: a mapping, or one line naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config.yaml_file import ParamsFileError, read_yaml_mapping
from tests.errors import raises_naming


def test_a_mapping_is_read_and_an_empty_file_is_empty(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("train: {seeds: [0, 1]}\n")
    assert read_yaml_mapping(tmp_path / "p.yaml") == {"train": {"seeds": [0, 1]}}
    (tmp_path / "e.yaml").write_text("")
    assert read_yaml_mapping(tmp_path / "e.yaml") == {}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (None, ()),
        ("train: [1, 2\n", ("line 2",)),
        ("- a\n- b\n", ()),
        ("!!python/object/apply:os.system ['true']\n", ("line 1",)),  # never evaluated
    ],
)
def test_bad_files_are_one_line_naming_the_file(
    tmp_path: Path, text: str | None, names: tuple[str, ...]
) -> None:
    path = tmp_path / "params.yaml"
    if text is not None:
        path.write_text(text)
    with raises_naming(ParamsFileError, str(path), *names) as info:
        read_yaml_mapping(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
