"""Helpers shared by the stage entry points: params loading and per-catalogue config merging.

Nothing in params is evaluated as code: YAML is read with ``yaml.safe_load`` and values are
plain numbers, strings, lists and mappings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.atomic import atomic_write
from pipeline.config import deep_merge

__all__ = ["deep_merge", "load_params", "section", "worker_sees", "write_json_atomic"]

PARAMS_FILE = Path("params.yaml")


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Read the whole params file (:func:`pipeline.config.read_yaml_mapping`, the one reader).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not valid YAML or not a mapping (one line naming the file).
    """
    from pipeline.config import read_yaml_mapping

    if not path.is_file():
        raise FileNotFoundError(f"{path}: params file not found (run from the project root)")
    return read_yaml_mapping(path)


def section(params: Mapping[str, Any], name: str, where: Path = PARAMS_FILE) -> dict[str, Any]:
    """One top-level section of the params, as a dict, checked against its schema
    (:mod:`pipeline.config.params_schema`: unknown keys, types and ranges, by key path).

    Raises:
        KeyError: If the section is missing or not a mapping.
        pipeline.config.schema.ParamsError: If a value breaks the section's schema.
    """
    from pipeline.config.params_schema import check_section

    value = params.get(name)
    if not isinstance(value, Mapping):
        raise KeyError(f"{where}: no '{name}:' section")
    check_section(name, value, str(where))
    return dict(value)


def write_json_atomic(obj: Any, path: Path) -> None:
    """Write JSON to ``path`` atomically (temporary file in the same folder, then rename)."""
    text = json.dumps(obj, indent=2) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def worker_sees(path: str) -> None:
    """Fail in one line when the process running a seed cannot see the project's files: a
    Dask worker on a machine without the project's (shared) filesystem.

    Raises:
        FileNotFoundError: Naming the host and the path.
    """
    if not Path(path).is_file():
        import socket

        raise FileNotFoundError(
            f"{path}: not found on {socket.gethostname()}; run `dvc repro` for the stages "
            "that write it, and on a Dask cluster start the workers where the project's "
            "filesystem is shared (as on an HPC cluster)"
        )
