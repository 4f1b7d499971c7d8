"""The refresh lock: one refresh at a time in a project."""

from __future__ import annotations

from pathlib import Path

from pipeline.refresh.errors import RefreshLockedError
from pipeline.refresh.lock import LOCK_NAME, refresh_lock
from tests.errors import raises_naming


def test_a_held_lock_fails_a_second_holder_at_once_and_is_free_after(tmp_path: Path) -> None:
    with refresh_lock(tmp_path) as path:
        assert path == tmp_path / LOCK_NAME and path.is_file()
        with raises_naming(RefreshLockedError, str(path)):
            with refresh_lock(tmp_path, timeout=0.2):
                pass
    with refresh_lock(tmp_path):  # released on exit
        pass
