"""The model-version registry of the refresh flow (``reports/versions.json``).

A version entry holds ``version_id``, ``timestamp`` (UTC ISO 8601), ``git_rev`` and
``git_dirty``, ``data_md5`` (raw file -> md5 from ``dvc.lock``), ``data_hash`` (SHA-256 of
those), ``appended``, ``stages_run`` and ``summary`` (the metrics summary, or ``None``).
:func:`write_version` writes ``reports/version_comparison.json`` first and
``reports/versions.json`` last: the versions file is the refresh transaction's commit marker
(:mod:`pipeline.refresh.journal`). This module imports no prefect.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from pipeline.data.io import atomic_write
from pipeline.gitio import git
from pipeline.refresh.errors import RefreshError
from pipeline.refresh.incoming_files import stamp

__all__ = ["COMPARISON_FILE", "VERSIONS_FILE", "raw_data_hashes", "write_version"]

VERSIONS_FILE = "reports/versions.json"
COMPARISON_FILE = "reports/version_comparison.json"


def _write_text_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def raw_data_hashes(repo_dir: Path, raw_dir: Path) -> dict[str, str]:
    """md5 of every raw file, as recorded in ``dvc.lock`` (computed when not recorded).

    Args:
        repo_dir: Project root.
        raw_dir: Raw-data folder.

    Returns:
        Path relative to the project (POSIX) -> md5 hex digest, sorted by path.
    """
    prefix = raw_dir.resolve().relative_to(repo_dir.resolve()).as_posix().rstrip("/") + "/"
    hashes: dict[str, str] = {}
    lock_path = repo_dir / "dvc.lock"
    if lock_path.is_file():
        lock = yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}
        for stage in (lock.get("stages") or {}).values():
            for dep in stage.get("deps") or []:
                dep_path = str(dep.get("path", ""))
                if dep_path.startswith(prefix) and "md5" in dep:
                    hashes[dep_path] = str(dep["md5"])
    for path in sorted(raw_dir.glob("*.csv")):
        rel = path.resolve().relative_to(repo_dir.resolve()).as_posix()
        if rel not in hashes:
            hashes[rel] = hashlib.md5(path.read_bytes()).hexdigest()
    return dict(sorted(hashes.items()))


def _git_revision(repo_dir: Path) -> tuple[str | None, bool | None]:
    """(HEAD commit, working tree dirty?) or (None, None) outside a git repository."""
    head = git(repo_dir, "rev-parse", "HEAD")
    status = git(repo_dir, "status", "--porcelain", "--untracked-files=no")
    if not (head.ok and status.ok):
        return None, None
    return head.text.strip(), bool(status.text.strip())


def _jsonable(obj: Any) -> Any:
    """Best-effort JSON form of a comparison result (dataclass, DataFrame, mapping ...)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "to_dict"):
        return _jsonable(obj.to_dict())
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return str(obj)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RefreshError(f"{path}: not valid JSON: {exc}") from exc


def _compare_summaries(
    previous: Mapping[str, Any], current: Mapping[str, Any], labels: Mapping[str, Any]
) -> dict[str, Any]:
    """Compare two metrics summaries with ``pipeline.report.versions`` when it is available."""
    raw = {"previous_summary": previous, "current_summary": current}
    try:
        from pipeline.report.versions import compare_versions, format_version_rows
    except ImportError:
        return {"note": "pipeline.report.versions.compare_versions is not available", **raw}
    try:
        rows = compare_versions(previous, current)
    except ValueError as exc:
        return {"note": f"summaries could not be compared: {exc}", **raw}
    table = format_version_rows(
        rows, str(labels.get("previous")), str(labels.get("current")), markdown=True
    )
    return {
        "method": "pipeline.report.versions.compare_versions",
        "comparison": _jsonable(rows),
        "table_markdown": table,
    }


def write_version(
    repo_dir: Path,
    raw_dir: Path,
    appended: Mapping[str, int],
    stages_run: list[str],
    summary_path: Path,
    now: datetime,
) -> tuple[dict[str, Any], Path]:
    """Append the current model version to ``reports/versions.json`` and compare it.

    ``reports/version_comparison.json`` compares it with the previous entry through
    ``pipeline.report.versions.compare_versions(previous_summary, current_summary)`` when that
    exists, else it holds both raw summaries and says so. It is written before the versions
    file, which is written last (the commit marker of a refresh).

    Args:
        repo_dir: Project root.
        raw_dir: Raw-data folder.
        appended: Catalogue -> rows appended by this refresh.
        stages_run: Stages ``dvc repro`` ran.
        summary_path: The metrics summary (``reports/summary.json``).
        now: Timestamp.

    Returns:
        (the new entry, path of the comparison file).

    Raises:
        RefreshError: If ``reports/versions.json`` exists but is not a JSON list.
    """
    versions_path = repo_dir / VERSIONS_FILE
    history: Any = _read_json(versions_path) if versions_path.is_file() else []
    if not isinstance(history, list):
        raise RefreshError(f"{versions_path}: expected a JSON list of versions")
    md5s = raw_data_hashes(repo_dir, raw_dir)
    data_hash = hashlib.sha256(
        "".join(f"{p}:{h}\n" for p, h in md5s.items()).encode("utf-8")
    ).hexdigest()
    git_rev, git_dirty = _git_revision(repo_dir)
    summary = _read_json(summary_path) if summary_path.is_file() else None
    entry: dict[str, Any] = {
        "version_id": f"{stamp(now)}-{data_hash[:8]}",
        "timestamp": now.isoformat(),
        "git_rev": git_rev,
        "git_dirty": git_dirty,
        "data_hash": data_hash,
        "data_md5": md5s,
        "appended": dict(appended),
        "stages_run": list(stages_run),
        "summary": summary,
    }
    previous = history[-1] if history else None
    comparison: dict[str, Any] = {
        "current": entry["version_id"],
        "previous": previous.get("version_id") if isinstance(previous, Mapping) else None,
    }
    prev_summary = previous.get("summary") if isinstance(previous, Mapping) else None
    if previous is None:
        comparison["note"] = "first recorded version: nothing to compare with"
    elif prev_summary is None or summary is None:
        comparison["note"] = "a metrics summary is missing; raw summaries recorded"
        comparison.update(previous_summary=prev_summary, current_summary=summary)
    else:
        comparison.update(_compare_summaries(prev_summary, summary, comparison))
    history.append(entry)
    comparison_path = repo_dir / COMPARISON_FILE
    _write_text_atomic(comparison_path, json.dumps(comparison, indent=2) + "\n")
    _write_text_atomic(versions_path, json.dumps(history, indent=2) + "\n")  # commit marker
    return entry, comparison_path
