"""Offline and quiet Prefect environment defaults.

Prefect reads its settings from the environment when it is first imported, so a stage calls
:func:`apply_prefect_defaults` before anything imports ``prefect``. Only variables that are
unset are filled in: whatever the user or the Makefile exported wins.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import MutableMapping
from pathlib import Path

__all__ = ["PREFECT_ENV_DEFAULTS", "apply_prefect_defaults"]

PREFECT_ENV_DEFAULTS: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "DASK_LOGGING__DISTRIBUTED": "warning",
}
"""Environment defaults (besides ``PREFECT_HOME``): no analytics, a 60 s start-up timeout for
the ephemeral API server on a busy machine, and warnings-only logging (Prefect and Dask)."""


def apply_prefect_defaults(
    project_dir: Path | str | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> dict[str, str]:
    """Fill in the offline/quiet Prefect environment variables that are unset.

    ``PREFECT_HOME`` defaults to ``<project_dir>/.prefect`` (git-ignored), so Prefect's
    database and profiles stay inside the project and nothing is written to ``~/.prefect``.

    Args:
        project_dir: Project root; defaults to the current directory (DVC runs stages from
            the project root).
        environ: Environment mapping to update; defaults to ``os.environ``.

    Returns:
        The variables that were set by this call (name -> value); empty when all were set.

    Warns:
        RuntimeWarning: When ``prefect`` is already imported and a variable had to be set:
            Prefect may have read its settings already, so the value may be ignored.
    """
    env = os.environ if environ is None else environ
    root = Path.cwd() if project_dir is None else Path(project_dir)
    wanted = {"PREFECT_HOME": str(root.resolve() / ".prefect"), **PREFECT_ENV_DEFAULTS}
    applied = {key: value for key, value in wanted.items() if not env.get(key)}
    env.update(applied)
    if applied and environ is None and "prefect" in sys.modules:
        warnings.warn(
            "pipeline.flows.settings.apply_prefect_defaults() ran after prefect was imported; "
            f"prefect may ignore {sorted(applied)}. Call it before importing prefect.",
            RuntimeWarning,
            stacklevel=2,
        )
    return applied
