"""A summary read at a git revision (or through DVC), and two revisions compared.

``rev`` ``"workspace"`` means the file on disk; this is what ``geosgm compare`` and the
report's versions section read.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from pipeline.report.summary import DEFAULT_SUMMARY_PATH, validate_summary
from pipeline.report.versions import compare_versions, format_version_rows

__all__ = ["LEGACY_SUMMARY_PATH", "compare_revisions", "read_summary_at_revision"]

#: Where revisions before the summarize stage declared its inputs kept it (read as a fallback).
LEGACY_SUMMARY_PATH = "reports/metrics/summary.json"


def read_summary_at_revision(
    repo_dir: str | os.PathLike[str], rev: str, summary_path: str = DEFAULT_SUMMARY_PATH
) -> dict[str, Any]:
    """Read the summary metrics of a git revision (or of the working tree).

    Tries ``git show REV:PATH`` first (metrics committed to git, as DVC does for
    ``cache: false`` metrics), then ``dvc.api.read`` (metrics tracked in the DVC cache).
    ``rev`` ``"workspace"`` reads the file on disk.

    Args:
        repo_dir: Root of the git repository.
        rev: Any git revision (``HEAD``, ``HEAD~1``, a tag, a hash) or ``"workspace"``.
        summary_path: Path of ``summary.json`` relative to ``repo_dir``.

    Returns:
        The validated summary dict.

    Raises:
        FileNotFoundError: If neither git nor DVC has the file at that revision.
        ValueError: If the file is not valid JSON or does not follow the schema.
    """
    repo = Path(repo_dir)
    where = f"{summary_path} at {rev}"
    if rev == "workspace":
        file = repo / summary_path
        if not file.exists() and summary_path == DEFAULT_SUMMARY_PATH:
            file = repo / LEGACY_SUMMARY_PATH if (repo / LEGACY_SUMMARY_PATH).exists() else file
        if not file.exists():
            raise FileNotFoundError(f"{file} does not exist in the workspace")
        text = file.read_text(encoding="utf-8")
    else:
        proc = subprocess.run(
            ["git", "-C", str(repo), "show", f"{rev}:{summary_path}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 and summary_path == DEFAULT_SUMMARY_PATH:
            proc = subprocess.run(
                ["git", "-C", str(repo), "show", f"{rev}:{LEGACY_SUMMARY_PATH}"],
                capture_output=True,
                text=True,
                check=False,
            )
        if proc.returncode == 0:
            text = proc.stdout
        else:
            text = _read_with_dvc(repo, rev, summary_path, proc.stderr.strip())
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not valid JSON: {exc}") from exc
    validate_summary(summary, where)
    return summary


def _read_with_dvc(repo: Path, rev: str, summary_path: str, git_error: str) -> str:
    """Read a DVC-tracked file at a revision; raise FileNotFoundError with both errors."""
    if not (repo / ".dvc").is_dir():
        raise FileNotFoundError(f"git cannot show {summary_path} at {rev!r}: {git_error}")
    try:
        import dvc.api
        from dvc.exceptions import DvcException
    except ImportError as exc:  # pragma: no cover - dvc is a dependency
        raise FileNotFoundError(f"git cannot show {summary_path} at {rev!r}: {git_error}") from exc
    try:
        return str(dvc.api.read(summary_path, repo=str(repo), rev=rev, mode="r"))
    except (DvcException, FileNotFoundError, OSError, KeyError) as exc:
        # KeyError: dvc's index lookup when the path is in neither git nor DVC at rev.
        raise FileNotFoundError(
            f"no {summary_path} at revision {rev!r}: git said {git_error!r}; dvc said {exc!r}"
        ) from exc


def compare_revisions(
    repo_dir: str | os.PathLike[str],
    rev_a: str,
    rev_b: str,
    summary_path: str = DEFAULT_SUMMARY_PATH,
) -> str:
    """Compare the summary metrics of two revisions; the text ``geosgm compare`` prints.

    Args:
        repo_dir: Root of the git repository.
        rev_a: Revision A (e.g. ``HEAD~1``); ``"workspace"`` for the files on disk.
        rev_b: Revision B (e.g. ``HEAD`` or ``"workspace"``).
        summary_path: Path of ``summary.json`` relative to ``repo_dir``.

    Returns:
        A terminal table of per-metric differences (B − A) with the better version, then a
        verdict line.

    Raises:
        FileNotFoundError: If a revision has no summary.
        ValueError: If a summary is malformed.
    """
    summary_a = read_summary_at_revision(repo_dir, rev_a, summary_path)
    summary_b = read_summary_at_revision(repo_dir, rev_b, summary_path)
    rows = compare_versions(summary_a, summary_b)
    head = f"{summary_path}: A = {rev_a}, B = {rev_b} (lower NLL is better)\n\n"
    return head + format_version_rows(rows, rev_a, rev_b)
