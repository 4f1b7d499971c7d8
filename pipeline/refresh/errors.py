"""Errors of the ``refresh`` flow (importable without prefect)."""

from __future__ import annotations

__all__ = ["RefreshError", "RefreshLockedError", "SplitProtocolError"]


class RefreshError(RuntimeError):
    """A refresh could not complete (bad configuration, or ``dvc repro`` failed).

    Raised before anything changed (configuration, unreadable raw catalogue, split protocol),
    or after a rollback; the message then says what failed and that ``data/raw`` was restored.
    """


class RefreshLockedError(RefreshError):
    """Another refresh holds the lock ``data/.refresh.lock``."""


class SplitProtocolError(RefreshError):
    """New rows would be appended to a catalogue whose split protocol cannot take them.

    Raised before anything changed; the message is one line naming the setting to change.
    """
