"""What a refresh reads from params.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.flows.refresh_errors import RefreshError
from pipeline.flows.refresh_settings import DEFAULT_RAW_DIR, load_refresh_settings

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
    ("text", "message"),
    [
        (None, "cannot read the project's params"),
        ("split: {protocol: rsgm}\n", "no 'ingest.catalogues' section"),
        (INGEST.replace("0.25", "true"), "'ingest.max_reject_fraction' must be a number"),
    ],
)
def test_bad_params_fail_with_one_line(tmp_path: Path, text: str | None, message: str) -> None:
    if text is not None:
        (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(RefreshError, match=message):
        load_refresh_settings(tmp_path)
