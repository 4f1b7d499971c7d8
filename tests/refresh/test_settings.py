"""What a refresh reads from params.yaml."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.refresh.errors import RefreshError, SplitProtocolError
from pipeline.refresh.settings import (
    DEFAULT_RAW_DIR,
    check_split_protocol,
    load_refresh_settings,
)
from tests.errors import raises_naming

INGEST = """\
ingest:
  max_reject_fraction: 0.25
  catalogues:
    volcano: {file: volerup.csv, lat_col: Latitude, lon_col: Longitude, has_header: true}
"""


def test_settings_are_read_with_their_defaults(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(INGEST)
    settings = load_refresh_settings(tmp_path)
    assert list(settings.specs) == ["volcano"]
    assert settings.max_reject_fraction == 0.25
    assert settings.raw_dir == tmp_path / DEFAULT_RAW_DIR
    assert settings.split_protocol is None


def test_raw_dir_and_split_protocol_come_from_params(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(
        INGEST + "  raw_dir: raw\nsplit:\n  protocol: rsgm+hash\n"
    )
    settings = load_refresh_settings(tmp_path)
    assert settings.raw_dir == tmp_path / "raw" and settings.split_protocol == "rsgm+hash"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (None, ("params.yaml",)),
        ("split: {protocol: rsgm}\n", ("params.yaml", "ingest.catalogues")),
        (INGEST.replace("0.25", "true"), ("params.yaml", "ingest.max_reject_fraction", "True")),
    ],
)
def test_bad_params_fail_with_one_line(
    tmp_path: Path, text: str | None, names: tuple[str, ...]
) -> None:
    if text is not None:
        (tmp_path / "params.yaml").write_text(text)
    with raises_naming(RefreshError, str(tmp_path / "params.yaml"), *names, one_line=True):
        load_refresh_settings(tmp_path)


def test_split_overrides_are_read_per_catalogue(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(
        INGEST + "split:\n  protocol: auto\n  overrides: {volcano: rsgm}\n"
    )
    settings = load_refresh_settings(tmp_path)
    assert settings.split_protocol == "auto" and settings.split_overrides == {"volcano": "rsgm"}


def _plan(**appended: int) -> SimpleNamespace:
    return SimpleNamespace(
        catalogues=[
            SimpleNamespace(spec=SimpleNamespace(name=name), n_appended=n)
            for name, n in appended.items()
        ]
    )


def test_a_catalogue_override_decides_whether_its_rows_can_be_appended() -> None:
    # auto takes appended rows; a per-catalogue 'rsgm' does not, and the message names its key.
    check_split_protocol(_plan(volcano=2, fire=0), "auto")
    check_split_protocol(_plan(volcano=0, fire=3), "auto", {"volcano": "rsgm"})
    with raises_naming(SplitProtocolError, "split.overrides.volcano", "'rsgm'") as info:
        check_split_protocol(_plan(volcano=2, fire=3), "auto", {"volcano": "rsgm"})
    assert "2 new row(s) for volcano" in str(info.value) and "\n" not in str(info.value)
    check_split_protocol(_plan(volcano=2), "rsgm", {"volcano": "rsgm+hash"})
