"""A summary read at a git revision (or through DVC), and two revisions compared.

``rev`` ``"workspace"`` means the file on disk; this is what ``geosgm compare`` and the
report's versions section read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipeline.gitio import git, git_show
from pipeline.report.summary import DEFAULT_SUMMARY_PATH, validate_summary
from pipeline.report.versions import PreviousVersion, compare_versions, format_version_rows

__all__ = [
    "AUTO_REV",
    "LEGACY_SUMMARY_PATH",
    "compare_revisions",
    "previous_distinct_revision",
    "previous_version",
    "read_summary_at_revision",
    "results_fingerprint",
]

#: ``report.compare_rev`` value: the latest commit whose results differ from this run's.
AUTO_REV = "auto"

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
        shown = git_show(repo, rev, summary_path)
        if not shown.ok and summary_path == DEFAULT_SUMMARY_PATH:
            shown = git_show(repo, rev, LEGACY_SUMMARY_PATH)
        if shown.ok:
            text = shown.text
        else:
            text = _read_with_dvc(repo, rev, summary_path, shown.stderr)
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


def results_fingerprint(summary: dict[str, Any]) -> dict[tuple[str, str], tuple[Any, ...]]:
    """What makes two summaries the same version: every model's per-seed test NLLs.

    Wall-clock fields (training seconds, ODE seconds) are left out: a rerun that reproduces
    the models bit for bit is the same version, whatever the machine's speed.
    """
    out: dict[tuple[str, str], tuple[Any, ...]] = {}
    for cat, models in summary.get("results", {}).items():
        for model, entry in models.items():
            seeds = entry.get("per_seed") or []
            out[(cat, model)] = (entry.get("mean"), *(s.get("test_nll") for s in seeds))
    return out


def _git_lines(repo: Path, *args: str) -> list[str] | None:
    result = git(repo, *args)
    return result.text.split() if result.ok else None


def previous_distinct_revision(
    repo_dir: str | os.PathLike[str],
    current: dict[str, Any],
    summary_path: str = DEFAULT_SUMMARY_PATH,
    max_revisions: int = 200,
) -> str | None:
    """The latest commit (from HEAD back) whose summary's results differ from ``current``.

    Commits that did not touch the summary are skipped by ``git log -- PATH``; commits whose
    summary equals this run's (:func:`results_fingerprint`: the run was committed, or
    rerun without a change) are skipped too, so a committed report compares with the version
    before it instead of with itself.

    Args:
        repo_dir: Root of the git repository.
        current: This run's summary.
        summary_path: Path of ``summary.json`` relative to ``repo_dir``.
        max_revisions: How many summary-changing commits to look at.

    Returns:
        A commit hash, or ``None`` (not a git repository, or no earlier different version).
    """
    return _scan_history(Path(repo_dir), current, summary_path, max_revisions)[0]


def _scan_history(
    repo: Path, current: dict[str, Any], summary_path: str, max_revisions: int = 200
) -> tuple[str | None, list[str]]:
    """(the latest commit with different results, the newer commits with the same ones)."""
    paths = [summary_path] + ([LEGACY_SUMMARY_PATH] if summary_path == DEFAULT_SUMMARY_PATH else [])
    commits = _git_lines(
        repo, "log", f"--max-count={max_revisions}", "--format=%H", "HEAD", "--", *paths
    )
    mine = results_fingerprint(current)
    same: list[str] = []
    for commit in commits or []:
        try:
            theirs = read_summary_at_revision(repo, commit, summary_path)
        except (FileNotFoundError, ValueError):
            continue  # the commit deleted or broke the file: not a version to compare with
        if results_fingerprint(theirs) != mine:
            return commit, same
        same.append(commit)
    return None, same


def _revision_label(repo: Path, rev: str) -> str:
    """``REV (shorthash)`` when git can resolve ``rev``, else ``REV``."""
    short = _git_lines(repo, "rev-parse", "--short", f"{rev}^{{commit}}")
    return f"{rev} ({short[0]})" if short else rev


def previous_version(
    repo_dir: str | os.PathLike[str],
    rev: str,
    current: dict[str, Any],
    summary_path: str = DEFAULT_SUMMARY_PATH,
) -> PreviousVersion:
    """The version a report compares with, or a note saying why there is none.

    Args:
        repo_dir: Repository root.
        rev: A git revision, or :data:`AUTO_REV` (``"auto"``): the latest commit whose results
            differ from ``current`` (:func:`previous_distinct_revision`).
        current: This run's summary.
        summary_path: Path of ``summary.json`` relative to ``repo_dir``.

    Returns:
        The previous version; its ``summary`` is ``None`` when there is none (first run, not a
        git repository, unknown revision, no earlier different results).

    Raises:
        ValueError: If the summary at ``rev`` exists but is malformed.
    """
    repo = Path(repo_dir)
    if rev == AUTO_REV:
        found, same = _scan_history(repo, current, summary_path)
        if found is None:
            oldest = (
                (_git_lines(repo, "rev-parse", "--short", same[-1]) or ["?"])[0] if same else ""
            )
            return PreviousVersion(
                "git history",
                None,
                f"no commit has a {summary_path} with results different from this run's",
                rev=None,
                same_as=len(same),
                oldest_same=oldest,
            )
        short = (_git_lines(repo, "rev-parse", "--short", found) or [found[:7]])[0]
        subject = git(repo, "log", "-1", "--format=%cs %s", found).text.strip()
        label = f"{short} ({subject[:60]})" if subject else short
        return PreviousVersion(
            label, read_summary_at_revision(repo, found, summary_path), rev=short
        )
    label = _revision_label(repo, rev)
    try:
        return PreviousVersion(label, read_summary_at_revision(repo, rev, summary_path), rev=rev)
    except FileNotFoundError as exc:
        note = f"no {summary_path} there: {exc}".splitlines()[0]
        return PreviousVersion(label, None, note, rev=rev)
