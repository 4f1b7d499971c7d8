"""Tests for pipeline.report.revisions: summaries read from git (and DVC) revisions."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
from report_helpers import _git, _summary

from pipeline.report.revisions import compare_revisions, read_summary_at_revision
from pipeline.report.versions import compare_versions
from tests.errors import raises_naming

pytestmark = pytest.mark.process  # git and dvc at revisions


def test_compare_revisions_reads_two_commits(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    path = repo / "reports" / "metrics" / "summary.json"
    path.parent.mkdir(parents=True)
    _git(repo, "init", "-q")
    path.write_text(json.dumps(_summary()))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "v1")
    path.write_text(json.dumps(_summary(shift=-0.25, steps=12_000)))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "v2")
    path.write_text(json.dumps(_summary(shift=-0.5)))  # uncommitted workspace version

    old = read_summary_at_revision(repo, "HEAD~1")
    assert (
        old["results"]["volcano"]["rsgm"]["mean"]
        == _summary()["results"]["volcano"]["rsgm"]["mean"]
    )
    rows = compare_versions(old, read_summary_at_revision(repo, "HEAD"))
    nll = [r for r in rows if r.metric == "test_nll_mean"]
    assert len(nll) == 4
    assert all(math.isclose(r.diff or 0.0, -0.25, abs_tol=1e-12) and r.better == "B" for r in nll)

    text = compare_revisions(repo, "HEAD~1", "HEAD")
    assert "A = HEAD~1, B = HEAD" in text
    nll_lines = [ln for ln in text.splitlines() if " test_nll_mean " in ln]
    assert len(nll_lines) == 4 and all("-0.2500" in ln and "HEAD " in ln for ln in nll_lines)
    assert "+2000" in text
    assert "HEAD is better on 4 of 4" in text
    ws = compare_revisions(repo, "HEAD", "workspace")
    assert sum("-0.2500" in ln for ln in ws.splitlines() if " test_nll_mean " in ln) == 4
    with raises_naming(FileNotFoundError, "reports/summary.json", "'HEAD~5'"):
        read_summary_at_revision(repo, "HEAD~5")


def test_missing_summary_at_a_dvc_revision_is_a_clear_error(tmp_path: Path) -> None:
    """A revision before the first metrics commit: FileNotFoundError, and exit code 1."""
    import sys

    from pipeline.cli import main as cli_main

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("stages: {}\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "no metrics yet")
    path = repo / "reports" / "metrics" / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_summary()))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "v1")
    with raises_naming(FileNotFoundError, "reports/summary.json", "'HEAD~1'"):
        read_summary_at_revision(repo, "HEAD~1")
    assert cli_main(["--repo", str(repo), "compare", "HEAD~1", "HEAD"]) == 1


def _commit(repo: Path, summary: dict, message: str, path: str = "reports/summary.json") -> None:
    file = repo / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(summary))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


def test_auto_compares_with_the_latest_different_results_never_itself(tmp_path: Path) -> None:
    from pipeline.report.revisions import previous_distinct_revision, previous_version

    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    # v1 at the legacy path, v2 moved to the current one, then a commit of other files.
    _commit(repo, _summary(), "v1", path="reports/metrics/summary.json")
    _git(repo, "rm", "-q", "reports/metrics/summary.json")
    _commit(repo, _summary(shift=-0.25), "v2")
    (repo / "README").write_text("x")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "docs")
    head_v2 = subprocess.run(
        ["git", "-C", str(repo), "log", "-1", "--format=%H", "--", "reports/summary.json"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    v1 = subprocess.run(
        ["git", "-C", str(repo), "rev-list", "--max-parents=0", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip

    # An uncommitted new run: the previous version is HEAD's results (v2).
    assert previous_distinct_revision(repo, _summary(shift=-0.5)) == head_v2
    # The run committed (or rerun without change): v2 is this run, so v1 is the previous one,
    # found at the legacy path; wall-clock fields do not make a new version.
    rerun = _summary(shift=-0.25)
    for entry in rerun["results"]["volcano"].values():
        for seed in entry["per_seed"]:
            seed["nll_seconds_per_1000"] = 99.0
    assert previous_distinct_revision(repo, rerun) == v1
    previous = previous_version(repo, "auto", rerun)
    assert previous.summary is not None and previous.label.endswith("v1)")
    assert previous.summary["results"] == _summary()["results"]
    # The first version ever committed has nothing to compare with: a note says so.
    only = tmp_path / "only"
    only.mkdir()
    _git(only, "init", "-q")
    _commit(only, _summary(), "v1")
    first = previous_version(only, "auto", _summary())
    assert first.summary is None and "different from this run's" in first.note
    assert first.same_as == 1  # ...and it has this run's results: nothing moved
    from pipeline.report.version_section import version_blocks

    text = version_blocks(_summary(), first)[0].markdown  # type: ignore[union-attr]
    assert text.startswith("Every model's per-seed test NLLs equal those of all 1 committed")
    # An explicit revision is read as given.
    assert previous_version(repo, "HEAD", _summary()).label.startswith("HEAD (")


def test_auto_outside_git_has_no_previous_version(tmp_path: Path) -> None:
    from pipeline.report.revisions import previous_version

    outside = previous_version(tmp_path, "auto", _summary())
    assert outside.summary is None and outside.same_as == 0
