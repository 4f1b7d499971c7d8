"""The one reader of the project's YAML files (params.yaml, profiles, prefect.yaml) outside the
stages: ``yaml.safe_load`` (nothing is evaluated as code), a mapping at the top level, and a
one-line error naming the file when it is missing, unreadable or not such a mapping.

(The stages read params.yaml through ``stages.common``, which DVC tracks as their dep.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["ParamsFileError", "read_yaml_mapping"]


class ParamsFileError(ValueError):
    """A YAML file that cannot be read as a mapping; the message names the file."""


def read_yaml_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The file's top-level mapping (``{}`` for an empty file).

    Raises:
        ParamsFileError: If the file is missing or unreadable, is not valid YAML, or its top
            level is not a mapping (one line).
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamsFileError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ParamsFileError(f"{path}: not valid YAML{line}") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParamsFileError(f"{path}: expected a mapping at the top level")
    return value
