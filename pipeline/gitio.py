"""The one git subprocess wrapper: run a git command in a repository, bytes or ``None``.

Callers decide what a failure means (no repository, unknown revision, file not at that
revision); git's stderr comes back with it for messages.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

__all__ = ["GitResult", "git", "git_show"]


@dataclass(frozen=True)
class GitResult:
    """What a git command gave.

    Attributes:
        ok: Exit status 0.
        stdout: Its output, as bytes.
        stderr: Its error output, decoded and stripped.
    """

    ok: bool
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        """``stdout`` decoded as UTF-8."""
        return self.stdout.decode("utf-8", errors="replace")


def git(repo_dir: str | os.PathLike[str], *args: str) -> GitResult:
    """Run ``git -C repo_dir ARGS…`` (never raises for a failing command or missing git)."""
    try:
        proc = subprocess.run(
            ["git", "-C", os.fspath(repo_dir), *args], capture_output=True, check=False
        )
    except OSError as exc:  # git is not installed
        return GitResult(False, b"", str(exc))
    return GitResult(
        proc.returncode == 0, proc.stdout, proc.stderr.decode("utf-8", errors="replace").strip()
    )


def git_show(repo_dir: str | os.PathLike[str], rev: str, path: str) -> GitResult:
    """``git show REV:PATH``: a file's bytes as committed at a revision."""
    # --end-of-options: a revision such as "--output=FILE" cannot be read as an option.
    return git(repo_dir, "show", "--end-of-options", f"{rev}:{path}")
