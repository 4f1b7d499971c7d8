"""The ``refresh`` flow: merge new catalogue files, rerun what changed, record the version.

Operators drop new catalogue files into ``data/incoming/<catalogue>/*.csv`` (same layout as
that catalogue's raw file: same header or none, same columns). One refresh:

1. takes the lock ``data/.refresh.lock`` (a second refresh at the same time fails at once
   with :class:`RefreshLockedError`, or waits up to ``lock_timeout`` seconds);
2. validates every incoming file with the ingest stage's own reader and rules
   (:func:`pipeline.data.readers.read_raw`, :func:`pipeline.data.validation.validate_table`,
   :func:`pipeline.data.validation.check_rejects` with ``ingest.max_reject_fraction``);
   a file that fails is moved to ``quarantine/`` beside a ``<name>.reasons.txt`` and
   changes nothing else;
3. appends its valid rows to the raw catalogue ``data/raw/<file>``, append-only: the old
   bytes stay a byte-for-byte prefix, the raw file's line ending (LF or CRLF) and its
   final-newline convention are kept, the new file is written beside it and moved into
   place with :func:`os.replace`. A row whose (latitude, longitude) equals an event already
   in the raw file, or one appended earlier in the same refresh, is a duplicate: dropped and
   counted. Rejected rows are not appended; they are written in the ingest rejects format
   next to the processed file. The file then moves to ``processed/`` with a JSON record;
4. runs ``dvc repro`` (DVC reruns only the stages whose dependencies changed) and parses
   which stages ran;
5. appends the model version (git revision, the raw files' md5s from ``dvc.lock`` and
   their combined hash, a UTC timestamp, the metrics summary) to ``reports/versions.json``
   and writes ``reports/version_comparison.json`` against the previous version, with
   ``pipeline.reporting.compare_versions`` when that function exists.

Progress is logged to the Prefect run logger and to the ``pipeline.flows.refresh`` logger.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock, Timeout
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from pipeline.data.errors import CatalogueError
from pipeline.data.io import atomic_write, write_rejects
from pipeline.data.readers import RawLine, RawTable, read_raw
from pipeline.data.registry import CatalogueSpec, parse_catalogues
from pipeline.data.validation import check_rejects, validate_table

__all__ = [
    "LOCK_NAME",
    "IncomingOutcome",
    "RefreshError",
    "RefreshLockedError",
    "RefreshResult",
    "merge_incoming_file",
    "raw_data_hashes",
    "record_version",
    "refresh",
    "refresh_flow",
    "refresh_lock",
    "run_dvc_repro",
    "scan_incoming",
]

LOCK_NAME = "data/.refresh.lock"
INCOMING_DIR = "data/incoming"
VERSIONS_FILE = "reports/versions.json"
COMPARISON_FILE = "reports/version_comparison.json"
SUMMARY_FILE = "reports/metrics/summary.json"
DEFAULT_RAW_DIR = "data/raw"

_log = logging.getLogger(__name__)
_STAGE_RAN = re.compile(r"^Running stage '([^']+)'")


class RefreshError(RuntimeError):
    """A refresh could not complete (bad configuration, or ``dvc repro`` failed)."""


class RefreshLockedError(RefreshError):
    """Another refresh holds the lock ``data/.refresh.lock``."""


@dataclass(frozen=True)
class IncomingOutcome:
    """What happened to one incoming file.

    Attributes:
        catalogue: Catalogue name (the incoming sub-folder).
        source: The incoming file as found.
        status: ``"merged"`` or ``"quarantined"``.
        moved_to: Where the file is now (under ``processed/`` or ``quarantine/``).
        n_rows_read: Data lines examined (0 when the file could not be read).
        n_appended: Rows appended to the raw file.
        n_duplicates: Valid rows dropped as exact duplicates of existing events.
        n_rejected: Rows rejected by validation (not appended).
        reasons: Why the file was quarantined (empty when merged).
    """

    catalogue: str
    source: Path
    status: str
    moved_to: Path
    n_rows_read: int = 0
    n_appended: int = 0
    n_duplicates: int = 0
    n_rejected: int = 0
    reasons: str = ""


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


def _say(message: str) -> None:
    """Log progress to the Prefect run logger (when in a run) and the module logger."""
    _log.info(message)
    with contextlib.suppress(MissingContextError):
        get_run_logger().info(message)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S%fZ")


@dataclass(frozen=True)
class _IngestSettings:
    specs: dict[str, CatalogueSpec]
    max_reject_fraction: float
    raw_dir: Path


def _load_ingest_settings(repo_dir: Path) -> _IngestSettings:
    """Read the catalogue registry and reject budget from the project's params.yaml."""
    params_path = repo_dir / "params.yaml"
    try:
        params = yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise RefreshError(f"{params_path}: cannot read the project's params: {exc}") from exc
    ingest = params.get("ingest") if isinstance(params, Mapping) else None
    if not isinstance(ingest, Mapping) or "catalogues" not in ingest:
        raise RefreshError(f"{params_path}: no 'ingest.catalogues' section")
    fraction = ingest.get("max_reject_fraction")
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise RefreshError(
            f"{params_path}: 'ingest.max_reject_fraction' must be a number, got {fraction!r}"
        )
    raw_dir = repo_dir / str(ingest.get("raw_dir", DEFAULT_RAW_DIR))
    return _IngestSettings(parse_catalogues(ingest["catalogues"]), float(fraction), raw_dir)


@contextlib.contextmanager
def refresh_lock(repo_dir: Path, timeout: float = 0.0) -> Iterator[Path]:
    """Hold the project's refresh lock ``data/.refresh.lock``.

    Args:
        repo_dir: Project root.
        timeout: Seconds to wait for the lock; 0 fails at once, a negative value waits
            forever.

    Yields:
        The lock file path.

    Raises:
        RefreshLockedError: If another refresh holds the lock after ``timeout`` seconds.
    """
    path = repo_dir / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=timeout)
    try:
        lock.acquire()
    except Timeout as exc:
        raise RefreshLockedError(
            f"another refresh is running in {repo_dir} (lock {path} is held; waited "
            f"{max(timeout, 0.0):g} s). Try again when it has finished."
        ) from exc
    try:
        yield path
    finally:
        lock.release()


@task(name="scan-incoming", cache_policy=NO_CACHE)
def scan_incoming(repo_dir: Path, catalogues: list[str]) -> list[tuple[str, Path]]:
    """List the incoming files to process: ``data/incoming/<catalogue>/*.csv``, sorted.

    Sub-folders (``processed/``, ``quarantine/``) are not scanned. Folders named after no
    known catalogue are logged and left alone.

    Args:
        repo_dir: Project root.
        catalogues: Known catalogue names.

    Returns:
        (catalogue, file) pairs in catalogue order, then file-name order.
    """
    root = repo_dir / INCOMING_DIR
    if not root.is_dir():
        return []
    unknown = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in catalogues)
    if unknown:
        _say(f"ignoring incoming folders of unknown catalogues: {unknown} (known: {catalogues})")
    return [
        (name, path)
        for name in catalogues
        if (root / name).is_dir()
        for path in sorted((root / name).glob("*.csv"))
        if path.is_file()
    ]


def _line_ending(data: bytes) -> bytes:
    """The raw file's line ending: CRLF if it has one, else CR-only, else LF."""
    if b"\r\n" in data:
        return b"\r\n"
    if b"\r" in data:
        return b"\r"
    return b"\n"


def _event_key(lat: float, lon: float) -> tuple[float, float]:
    return (float(lat) + 0.0, float(lon) + 0.0)


def _relayout(row: RawLine, incoming: RawTable, raw: RawTable) -> str:
    """Text of an incoming row laid out in the raw file's columns.

    Verbatim when both files have the same columns; otherwise the raw file's fields are
    filled from the incoming fields of the same header name (latitude and longitude by
    their resolved columns), others left empty.
    """
    same_header = (incoming.header is None and raw.header is None) or (
        incoming.header is not None
        and raw.header is not None
        and [h.lower() for h in incoming.header] == [h.lower() for h in raw.header]
    )
    if same_header and incoming.n_fields == raw.n_fields:
        return row.text
    out = [""] * raw.n_fields
    if raw.header is not None and incoming.header is not None:
        by_name = {h.lower(): i for i, h in enumerate(incoming.header)}
        for j, name in enumerate(raw.header):
            i = by_name.get(name.lower())
            if i is not None and i < len(row.fields):
                out[j] = row.fields[i]
    out[raw.lat_index] = row.fields[incoming.lat_index]
    out[raw.lon_index] = row.fields[incoming.lon_index]
    return ",".join(f'"{v}"' if "," in v else v for v in out)


def _move_unique(src: Path, dest_dir: Path, now: datetime) -> Path:
    """Move ``src`` into ``dest_dir``, adding a timestamp when the name is taken."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    if dest.exists():
        dest = dest_dir / f"{src.stem}.{_stamp(now)}{src.suffix}"
    os.replace(src, dest)
    return dest


def _write_text_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _quarantine(catalogue: str, path: Path, reasons: str, now: datetime) -> IncomingOutcome:
    dest = _move_unique(path, path.parent / "quarantine", now)
    _write_text_atomic(
        dest.with_name(dest.name + ".reasons.txt"),
        f"file: {path.name}\ncatalogue: {catalogue}\nquarantined: {now.isoformat()}\n"
        f"reasons:\n{reasons}\n",
    )
    _say(f"{catalogue}: quarantined {path.name}: {reasons.splitlines()[0]}")
    return IncomingOutcome(catalogue, path, "quarantined", dest, reasons=reasons)


@task(name="merge-incoming-file", cache_policy=NO_CACHE)
def merge_incoming_file(
    path: Path,
    spec: CatalogueSpec,
    raw_path: Path,
    max_reject_fraction: float,
    now: datetime | None = None,
) -> IncomingOutcome:
    """Validate one incoming file and append its new events to the raw catalogue.

    Args:
        path: Incoming CSV file (``data/incoming/<catalogue>/<name>.csv``), laid out like
            the raw file.
        spec: The catalogue's reading spec (from ``ingest.catalogues``).
        raw_path: The raw catalogue file to append to.
        max_reject_fraction: The ingest reject budget.
        now: Timestamp for records; defaults to the current UTC time.

    Returns:
        The outcome. A file that fails validation is quarantined and nothing else changes.

    Raises:
        RefreshError: If the raw catalogue itself cannot be read (nothing is changed then).
    """
    now = now or _utc_now()
    try:
        raw = read_raw(raw_path, spec)
    except CatalogueError as exc:
        raise RefreshError(f"cannot merge {path}: raw catalogue unreadable: {exc}") from exc
    try:
        table = read_raw(path, spec)
        cat = validate_table(table, spec.name)
        check_rejects(cat, max_reject_fraction)
    except CatalogueError as exc:
        return _quarantine(spec.name, path, str(exc), now)
    raw_cat = validate_table(raw, spec.name)
    seen = {_event_key(a, b) for a, b in zip(raw_cat.lat, raw_cat.lon, strict=True)}
    by_line = {row.line_number: row for row in table.rows}
    new_lines: list[str] = []
    n_dup = 0
    for lat, lon, line in zip(cat.lat, cat.lon, cat.source_line, strict=True):
        key = _event_key(lat, lon)
        if key in seen:
            n_dup += 1
            continue
        seen.add(key)
        new_lines.append(_relayout(by_line[int(line)], table, raw))

    old = raw_path.read_bytes()
    if new_lines:
        eol = _line_ending(old)
        ends_with_eol = old.endswith((b"\n", b"\r"))
        body = eol.join(line.encode("utf-8") for line in new_lines)
        new = (
            old
            + (b"" if ends_with_eol or not old else eol)
            + body
            + (eol if ends_with_eol else b"")
        )
        if not new.startswith(old):  # pragma: no cover - guards the append-only contract
            raise RefreshError(f"{raw_path}: refusing a write that is not an append")
        atomic_write(raw_path, lambda tmp: tmp.write_bytes(new))
    dest = _move_unique(path, path.parent / "processed", now)
    record = {
        "file": path.name,
        "catalogue": spec.name,
        "processed": now.isoformat(),
        "sha256": table.sha256,
        "raw_file": raw_path.name,
        "raw_sha256_before": hashlib.sha256(old).hexdigest(),
        "raw_sha256_after": hashlib.sha256(raw_path.read_bytes()).hexdigest(),
        "n_rows_read": cat.n_rows_read,
        "n_valid": cat.n_valid,
        "n_appended": len(new_lines),
        "n_duplicates": n_dup,
        "n_rejected": cat.n_rejected,
    }
    _write_text_atomic(dest.with_name(dest.name + ".json"), json.dumps(record, indent=2) + "\n")
    if cat.n_rejected:
        write_rejects(cat.rejects, dest.with_name(dest.stem + ".rejects.csv"))
    _say(
        f"{spec.name}: merged {path.name}: {len(new_lines)} rows appended to {raw_path.name}, "
        f"{n_dup} duplicates dropped, {cat.n_rejected} rejected"
    )
    return IncomingOutcome(
        spec.name,
        path,
        "merged",
        dest,
        n_rows_read=cat.n_rows_read,
        n_appended=len(new_lines),
        n_duplicates=n_dup,
        n_rejected=cat.n_rejected,
    )


def _subprocess_env() -> dict[str, str]:
    """Environment for ``dvc repro``.

    The interpreter's ``bin`` folder goes first on ``PATH`` so that stage commands calling
    ``python`` get this virtual environment; stage flows report to the same Prefect API as
    the refresh flow when one is configured.
    """
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(
        [bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p)]
    )
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    if api and not env.get("PREFECT_API_URL"):
        env["PREFECT_API_URL"] = str(api)
    return env


@task(name="dvc-repro", cache_policy=NO_CACHE)
def run_dvc_repro(repo_dir: Path) -> list[str]:
    """Run ``dvc repro`` in the project and return the stages it ran.

    Args:
        repo_dir: Project root.

    Returns:
        Names of the stages DVC ran (``Running stage '<name>'`` lines), in order.

    Raises:
        RefreshError: If ``dvc repro`` fails; the message holds the end of its output.
    """
    cmd = [sys.executable, "-m", "dvc", "repro"]
    proc = subprocess.run(
        cmd, cwd=repo_dir, capture_output=True, text=True, env=_subprocess_env(), check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise RefreshError(f"`dvc repro` failed in {repo_dir} (exit {proc.returncode}):\n{tail}")
    stages = [m.group(1) for line in proc.stdout.splitlines() if (m := _STAGE_RAN.match(line))]
    _say(f"dvc repro: {len(stages)} stage(s) ran: {stages}")
    return stages


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
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo_dir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return head, bool(dirty)


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
    """Compare two metrics summaries with ``pipeline.reporting`` when it is available."""
    raw = {"previous_summary": previous, "current_summary": current}
    try:
        from pipeline.reporting import compare_versions, format_version_rows
    except ImportError:
        return {"note": "pipeline.reporting.compare_versions is not available", **raw}
    try:
        rows = compare_versions(previous, current)
    except ValueError as exc:
        return {"note": f"summaries could not be compared: {exc}", **raw}
    table = format_version_rows(
        rows, str(labels.get("previous")), str(labels.get("current")), markdown=True
    )
    return {
        "method": "pipeline.reporting.compare_versions",
        "comparison": _jsonable(rows),
        "table_markdown": table,
    }


@task(name="record-version", cache_policy=NO_CACHE)
def record_version(
    repo_dir: Path,
    raw_dir: Path,
    appended: Mapping[str, int],
    stages_run: list[str],
    now: datetime | None = None,
) -> tuple[dict[str, Any], Path]:
    """Append the current model version to ``reports/versions.json`` and compare it.

    The entry holds ``version_id``, ``timestamp`` (UTC ISO 8601), ``git_rev`` and
    ``git_dirty`` (the raw files changed by a refresh are uncommitted until the operator
    commits), ``data_md5`` (raw file -> md5 from ``dvc.lock``), ``data_hash`` (SHA-256 of
    those), ``appended``, ``stages_run`` and ``summary`` (``reports/metrics/summary.json``,
    or ``None``). ``reports/version_comparison.json`` compares it with the previous entry
    through ``pipeline.reporting.compare_versions(previous_summary, current_summary)`` when
    that exists, else it holds both raw summaries and says so.

    Args:
        repo_dir: Project root.
        raw_dir: Raw-data folder.
        appended: Catalogue -> rows appended by this refresh.
        stages_run: Stages ``dvc repro`` ran.
        now: Timestamp; defaults to the current UTC time.

    Returns:
        (the new entry, path of the comparison file).

    Raises:
        RefreshError: If ``reports/versions.json`` exists but is not a JSON list.
    """
    now = now or _utc_now()
    versions_path = repo_dir / VERSIONS_FILE
    history: Any = _read_json(versions_path) if versions_path.is_file() else []
    if not isinstance(history, list):
        raise RefreshError(f"{versions_path}: expected a JSON list of versions")
    md5s = raw_data_hashes(repo_dir, raw_dir)
    data_hash = hashlib.sha256(
        "".join(f"{p}:{h}\n" for p, h in md5s.items()).encode("utf-8")
    ).hexdigest()
    git_rev, git_dirty = _git_revision(repo_dir)
    summary_path = repo_dir / SUMMARY_FILE
    summary = _read_json(summary_path) if summary_path.is_file() else None
    entry: dict[str, Any] = {
        "version_id": f"{_stamp(now)}-{data_hash[:8]}",
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
    _write_text_atomic(versions_path, json.dumps(history, indent=2) + "\n")
    comparison_path = repo_dir / COMPARISON_FILE
    _write_text_atomic(comparison_path, json.dumps(comparison, indent=2) + "\n")
    _say(f"recorded version {entry['version_id']} (git {git_rev}, data {data_hash[:12]})")
    return entry, comparison_path


@flow(name="refresh", validate_parameters=False)
def refresh_flow(
    repo_dir: str = ".", run_repro: bool = True, lock_timeout: float = 0.0
) -> RefreshResult:
    """Merge incoming catalogue files, ``dvc repro`` what changed, record the version.

    Args:
        repo_dir: Project root.
        run_repro: Run ``dvc repro`` (and record a version) after merging.
        lock_timeout: Seconds to wait for another refresh to finish (0: fail at once).

    Returns:
        The :class:`RefreshResult`.

    Raises:
        RefreshLockedError: If another refresh is running.
        RefreshError: On a bad configuration or a failed ``dvc repro``.
    """
    start = time.perf_counter()
    root = Path(repo_dir).resolve()
    result = RefreshResult(repo_dir=root)
    with refresh_lock(root, lock_timeout):
        settings = _load_ingest_settings(root)
        for name, path in scan_incoming(root, list(settings.specs)):
            spec = settings.specs[name]
            outcome = merge_incoming_file(
                path, spec, settings.raw_dir / spec.file, settings.max_reject_fraction
            )
            result.outcomes.append(outcome)
            if outcome.status == "merged":
                result.appended[name] = result.appended.get(name, 0) + outcome.n_appended
                result.duplicates[name] = result.duplicates.get(name, 0) + outcome.n_duplicates
        if run_repro:
            result.stages_run = run_dvc_repro(root)
            result.repro_ran = True
            has_history = (root / VERSIONS_FILE).is_file()
            if result.stages_run or any(result.appended.values()) or not has_history:
                result.version, result.comparison_path = record_version(
                    root, settings.raw_dir, result.appended, result.stages_run
                )
    result.wall_s = time.perf_counter() - start
    return result


def refresh(repo_dir: Path, run_repro: bool = True, lock_timeout: float = 0.0) -> RefreshResult:
    """Run the refresh flow once (the ``geosgm refresh`` command).

    Args:
        repo_dir: Project root (holding ``dvc.yaml``, ``params.yaml`` and ``data/``).
        run_repro: Run ``dvc repro`` and record the version after merging.
        lock_timeout: Seconds to wait for a running refresh (0: fail at once).

    Returns:
        The :class:`RefreshResult`.

    Raises:
        RefreshLockedError: If another refresh is running.
        RefreshError: On a bad configuration or a failed ``dvc repro``.
    """
    return refresh_flow(str(Path(repo_dir).resolve()), run_repro, lock_timeout)
