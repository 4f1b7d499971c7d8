"""The outcome of one refresh: files merged or quarantined, rows, stages run, version."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.refresh.incoming_files import IncomingOutcome

__all__ = ["RefreshResult"]


@dataclass
class RefreshResult:
    """The outcome of one refresh.

    Attributes:
        repo_dir: Project root.
        outcomes: One entry per incoming file, in processing order.
        appended: Catalogue -> rows appended to its raw file.
        duplicates: Catalogue -> duplicate rows dropped.
        repro_ran: Whether ``dvc repro`` was run.
        stages_run: Stages ``dvc repro`` ran (those whose dependencies changed).
        version: The entry appended to ``reports/versions.json``, or ``None`` when nothing
            changed and a version was already recorded.
        comparison_path: ``reports/version_comparison.json`` when written.
        recovered: What was done about a refresh that had been killed, or ``None``.
        wall_s: Wall time of the refresh in seconds.
    """

    repo_dir: Path
    outcomes: list[IncomingOutcome] = field(default_factory=list)
    appended: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    repro_ran: bool = False
    stages_run: list[str] = field(default_factory=list)
    version: dict[str, Any] | None = None
    comparison_path: Path | None = None
    recovered: str | None = None
    wall_s: float = 0.0

    @property
    def merged(self) -> list[IncomingOutcome]:
        """Outcomes of the files merged into a raw catalogue."""
        return [o for o in self.outcomes if o.status == "merged"]

    @property
    def quarantined(self) -> list[IncomingOutcome]:
        """Outcomes of the files moved to quarantine."""
        return [o for o in self.outcomes if o.status == "quarantined"]

    @property
    def ok(self) -> bool:
        """True when no incoming file was quarantined (a script's success signal)."""
        return not self.quarantined

    def summary(self) -> str:
        """A few human-readable lines: files merged/quarantined, stages run, version."""
        lines = [f"refresh of {self.repo_dir} in {self.wall_s:.1f} s"]
        if self.recovered:
            lines.append(f"  {self.recovered}")
        for o in self.outcomes:
            if o.status == "merged":
                lines.append(
                    f"  merged {o.catalogue}/{o.source.name}: {o.n_appended} appended, "
                    f"{o.n_duplicates} duplicates dropped, {o.n_rejected} rejected"
                )
            else:
                first = o.reasons.splitlines()[0] if o.reasons else ""
                lines.append(
                    f"  QUARANTINED {o.catalogue}/{o.source.name} -> {o.moved_to}: {first}"
                )
        if not self.outcomes:
            lines.append("  no incoming files")
        if self.repro_ran:
            lines.append(f"  dvc repro ran {len(self.stages_run)} stage(s): {self.stages_run}")
        if self.version is not None:
            lines.append(f"  recorded version {self.version['version_id']}")
        return "\n".join(lines)
