"""The ``refresh`` flow: merge new catalogue files, rerun what changed, record the version.

Operators drop new catalogue files into ``data/incoming/<catalogue>/*.csv`` (same layout as
that catalogue's raw file: same header or none, same columns). A refresh is transactional:
the append to ``data/raw/``, the ``dvc repro`` and the version record all happen, or
``data/raw/`` is restored byte for byte and the incoming files are put back. In order:

1. take the lock ``data/.refresh.lock`` (a second refresh at the same time fails at once
   with :class:`RefreshLockedError`, or waits up to ``lock_timeout`` seconds), and finish
   or undo a refresh that was killed (:func:`recover_interrupted`, see step 6);
2. plan the whole batch, reading only (:func:`pipeline.flows.raw_merge.plan_batch`): every
   incoming file is read and validated with the ingest stage's own reader and rules
   (:func:`~pipeline.data.readers.read_raw`, :func:`~pipeline.data.validation.validate_table`,
   :func:`~pipeline.data.validation.check_rejects` with ``ingest.max_reject_fraction``),
   its duplicates are found and the raw files' new bytes computed. A raw file that cannot
   be read fails the refresh here, with nothing changed;
3. check that the split protocol can take the new rows (:func:`check_split_protocol`):
   ``split.protocol: rsgm`` (published labels only) cannot, so a batch that would append
   rows fails with one line (:class:`SplitProtocolError`) saying to set ``rsgm+hash``;
   nothing is changed and the incoming files stay in ``data/incoming/``;
4. quarantine the files that cannot be read, for any reason (an ``OSError``, bytes that are
   not UTF-8, NUL bytes, a CSV error such as a field over csv's 128 KB limit, a reader or
   validation error, the reject budget): each moves to ``quarantine/`` beside a
   ``<name>.reasons.txt`` holding all its reasons, and the rest of the batch goes on.
   Quarantine is not undone by a later rollback: such a file was never going to merge;
5. open the transaction (:class:`~pipeline.flows.refresh_journal.RefreshTransaction`):
   copy every raw file that will change (and ``reports/version_comparison.json``) to
   ``data/.refresh-backup/``, then write the journal ``data/.refresh.journal.json``;
6. apply: replace each changed raw file in one :func:`os.replace` (append-only: the old
   bytes stay a byte-for-byte prefix, its line ending and final-newline convention are
   kept; rejected rows are not appended), then move each merged file to ``processed/``
   beside a JSON record (and its rejects in the ingest rejects format); run ``dvc repro``
   (DVC reruns only the stages whose dependencies changed); write
   ``reports/version_comparison.json`` and last ``reports/versions.json`` (the commit
   point); delete the journal and the backups. On any exception, KeyboardInterrupt
   included, before the commit point the transaction is rolled back: the raw files get
   their pre-refresh bytes back (atomically), the records are removed, the incoming files
   move back from ``processed/``, and a :class:`RefreshError` says what failed and that
   ``data/raw`` was restored (a KeyboardInterrupt is re-raised as is). Outputs of stages
   that ran before a failure are rebuilt by the next ``dvc repro``. Without ``dvc repro``
   (``run_repro=False``) deleting the journal is the commit point.

**Crash safety** (``kill -9`` at any point): before the journal exists nothing in
``data/raw/`` or ``data/incoming/<catalogue>/`` has changed (except quarantines). Once it
exists, the next refresh rolls the interrupted one back (each raw file is either wholly old
or wholly new, thanks to :func:`os.replace`, and is put back from its backup), unless its
version was recorded, in which case its changes are kept; then it merges the incoming files,
now back in place, once. Full-row identity (below) is a second guard: rows already in the
raw file are duplicates, so merging a file again appends nothing. Until that next refresh
``data/raw/`` may hold the interrupted append, so run ``geosgm refresh`` (``--no-repro`` is
enough) before a plain ``dvc repro``. A power loss is not covered (no ``fsync``).

**Event identity** (:func:`~pipeline.flows.raw_merge.event_identity`): an incoming row is
laid out in the raw file's columns (fields matched by header name; missing ones empty,
extra ones dropped) and is the same event as another row when all those fields are equal
after stripping whitespace and collapsing inner runs of it, latitude and longitude compared
as numbers (longitude normalised to [-180, 180)), other fields as case-sensitive text. A row
identical to a raw row, or to a row appended earlier in the same refresh, is a duplicate:
dropped and counted. A new eruption at a known volcano with a different date is a new event
when the raw layout has a date column; a raw layout of latitude and longitude only makes
the identity the location.

Progress is logged to the Prefect run logger and to the ``pipeline.flows.refresh`` logger.
"""

from __future__ import annotations

import contextlib
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

from pipeline.data.registry import CatalogueSpec, parse_catalogues
from pipeline.data.splits import PROTOCOLS
from pipeline.flows.raw_merge import (
    BatchPlan,
    IncomingOutcome,
    event_identity,
    finish_merged_file,
    plan_batch,
    plan_catalogue,
    plan_move,
    quarantine_file,
    replace_raw_file,
)
from pipeline.flows.refresh_errors import RefreshError, RefreshLockedError, SplitProtocolError
from pipeline.flows.refresh_journal import (
    BACKUP_DIR,
    JOURNAL_NAME,
    Step,
    apply_in_transaction,
    recover_interrupted,
)
from pipeline.flows.versions import COMPARISON_FILE, VERSIONS_FILE, raw_data_hashes, write_version

__all__ = [
    "APPEND_PROTOCOLS",
    "BACKUP_DIR",
    "JOURNAL_NAME",
    "LOCK_NAME",
    "IncomingOutcome",
    "RefreshError",
    "RefreshLockedError",
    "RefreshResult",
    "SplitProtocolError",
    "check_split_protocol",
    "event_identity",
    "merge_incoming_file",
    "raw_data_hashes",
    "record_version",
    "recover_interrupted",
    "refresh",
    "refresh_flow",
    "refresh_lock",
    "run_dvc_repro",
    "scan_incoming",
    "validate_incoming",
]

LOCK_NAME = "data/.refresh.lock"
INCOMING_DIR = "data/incoming"
SUMMARY_FILE = "reports/summary.json"
DEFAULT_RAW_DIR = "data/raw"
#: Split protocols that give appended rows a part (``rsgm`` has published labels only;
#: ``auto`` counts once :data:`pipeline.data.splits.PROTOCOLS` has it).
APPEND_PROTOCOLS = frozenset({"hash", "rsgm+hash", "auto"})

_log = logging.getLogger(__name__)
_STAGE_RAN = re.compile(r"^Running stage '([^']+)'")


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


def _say(message: str) -> None:
    """Log progress to the Prefect run logger (when in a run) and the module logger."""
    _log.info(message)
    with contextlib.suppress(MissingContextError):
        get_run_logger().info(message)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class _IngestSettings:
    specs: dict[str, CatalogueSpec]
    max_reject_fraction: float
    raw_dir: Path
    split_protocol: str | None = None


def _load_ingest_settings(repo_dir: Path) -> _IngestSettings:
    """Read the catalogue registry, reject budget and split protocol from params.yaml."""
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
    split = params.get("split")
    protocol = split.get("protocol") if isinstance(split, Mapping) else None
    return _IngestSettings(
        parse_catalogues(ingest["catalogues"]),
        float(fraction),
        raw_dir,
        None if protocol is None else str(protocol),
    )


def check_split_protocol(plan: BatchPlan, protocol: str | None) -> None:
    """Fail, before anything changes, when the split protocol cannot take the new rows.

    Args:
        plan: The batch plan.
        protocol: ``split.protocol`` from params.yaml; ``None`` (no ``split`` section, so
            no split stage) allows any append.

    Raises:
        SplitProtocolError: If a catalogue would get new rows and ``protocol`` is not one
            of :data:`APPEND_PROTOCOLS` known to :mod:`pipeline.data.splits` (``rsgm``, or
            an unknown protocol). The message is one line.
    """
    growing = [(cp.spec.name, cp.n_appended) for cp in plan.catalogues if cp.n_appended]
    if not growing or protocol is None or (protocol in APPEND_PROTOCOLS & set(PROTOCOLS)):
        return
    what = ", ".join(f"{n} new row(s) for {name}" for name, n in growing)
    fix = "'rsgm+hash' (or 'auto')" if "auto" in PROTOCOLS else "'rsgm+hash'"
    kind = " (published labels only)" if protocol == "rsgm" else ""
    raise SplitProtocolError(
        f"refresh not started: {what}, but split.protocol {protocol!r}{kind} cannot take "
        f"appended rows; set split.protocol to {fix} in params.yaml and refresh again "
        "(nothing was changed; the incoming files are still in data/incoming/)"
    )


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


@task(name="validate-incoming", cache_policy=NO_CACHE)
def validate_incoming(
    items: list[tuple[str, Path]],
    specs: Mapping[str, CatalogueSpec],
    raw_dir: Path,
    max_reject_fraction: float,
) -> BatchPlan:
    """Read, validate and de-duplicate the whole batch; change nothing.

    Args:
        items: (catalogue, file) pairs from :func:`scan_incoming`.
        specs: Catalogue name -> reading spec.
        raw_dir: Raw-data folder.
        max_reject_fraction: The ingest reject budget.

    Returns:
        The batch plan (:func:`pipeline.flows.raw_merge.plan_batch`).

    Raises:
        RefreshError: If the raw file of a catalogue with incoming files cannot be read.
    """
    plan = plan_batch(items, specs, raw_dir, max_reject_fraction)
    for cp in plan.catalogues:
        _say(
            f"{cp.spec.name}: {len(cp.files)} file(s) to merge ({cp.n_appended} new rows), "
            f"{len(cp.quarantined)} to quarantine"
        )
    return plan


@task(name="merge-incoming-file", cache_policy=NO_CACHE)
def merge_incoming_file(
    path: Path,
    spec: CatalogueSpec,
    raw_path: Path,
    max_reject_fraction: float,
    now: datetime | None = None,
) -> IncomingOutcome:
    """Validate one incoming file and append its new events to the raw catalogue.

    A stand-alone merge of one file (no journal, no split-protocol check): the refresh flow
    plans and applies the whole batch in one transaction instead.

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
    plan = plan_catalogue(spec, raw_path, [path], max_reject_fraction)
    if plan.quarantined:
        return quarantine_file(plan.quarantined[0], now)
    (file_plan,) = plan.files
    if plan.changed:
        replace_raw_file(raw_path, plan.old, plan.new)
    return finish_merged_file(file_plan, raw_path, plan_move(path, now), now)


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
def _stop_process_group(proc: subprocess.Popen[str], grace: float = 20.0) -> None:
    """SIGINT to ``proc``'s session (its stages checkpoint and exit), SIGKILL after ``grace``."""
    import signal

    import psutil

    def group_alive() -> bool:  # zombies do not count: whoever adopted them reaps them later
        for p in psutil.process_iter(["status"]):
            try:
                if os.getpgid(p.pid) == proc.pid and p.info["status"] != psutil.STATUS_ZOMBIE:
                    return True
            except (ProcessLookupError, psutil.Error):
                continue
        return False

    for sig, wait in ((signal.SIGINT, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()  # reap dvc itself, so only live members keep the group
            if not group_alive():
                return
            time.sleep(0.1)


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
    # Its own session, and on any exception (Prefect turns SIGTERM into one while the flow
    # runs) the whole tree is asked to stop and waited for before the caller rolls back:
    # subprocess.run would SIGKILL dvc alone and leave its stage writing outputs.
    proc = subprocess.Popen(
        cmd,
        cwd=repo_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_subprocess_env(),
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate()
    except BaseException:
        _stop_process_group(proc)
        raise
    if proc.returncode != 0:
        tail = "\n".join((stdout + stderr).splitlines()[-30:])
        raise RefreshError(f"`dvc repro` failed in {repo_dir} (exit {proc.returncode}):\n{tail}")
    stages = [m.group(1) for line in stdout.splitlines() if (m := _STAGE_RAN.match(line))]
    _say(f"dvc repro: {len(stages)} stage(s) ran: {stages}")
    return stages


@task(name="record-version", cache_policy=NO_CACHE)
def record_version(
    repo_dir: Path,
    raw_dir: Path,
    appended: Mapping[str, int],
    stages_run: list[str],
    now: datetime | None = None,
) -> tuple[dict[str, Any], Path]:
    """Append the current model version to ``reports/versions.json`` and compare it.

    See :func:`pipeline.flows.versions.write_version` for the entry's fields; the summary
    is ``reports/summary.json`` (or ``None``). ``git_dirty`` is true after a refresh
    changed raw files, until the operator commits.

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
    entry, comparison_path = write_version(
        repo_dir, raw_dir, appended, stages_run, repo_dir / SUMMARY_FILE, now or _utc_now()
    )
    _say(
        f"recorded version {entry['version_id']} (git {entry['git_rev']}, "
        f"data {entry['data_hash'][:12]})"
    )
    return entry, comparison_path


def _repro_and_record(
    root: Path, settings: _IngestSettings, result: RefreshResult, step: Step
) -> None:
    """Run ``dvc repro`` and record a version when something changed or none exists."""
    step.name = "`dvc repro`"
    result.stages_run = run_dvc_repro(root)
    result.repro_ran = True
    has_history = (root / VERSIONS_FILE).is_file()
    if result.stages_run or any(result.appended.values()) or not has_history:
        step.name = "recording the version"
        result.version, result.comparison_path = record_version(
            root, settings.raw_dir, result.appended, result.stages_run
        )


def _merge_batch(
    root: Path,
    settings: _IngestSettings,
    plan: BatchPlan,
    run_repro: bool,
    result: RefreshResult,
    now: datetime,
) -> list[IncomingOutcome]:
    """Merge the batch, ``dvc repro`` and record the version in one transaction.

    Returns:
        The merged files' outcomes.

    Raises:
        RefreshError: If a step failed; everything was rolled back (see the module
            docstring), or the message says why the rollback could not finish.
    """

    def finish(outcomes: list[IncomingOutcome], step: Step) -> None:
        for o in outcomes:
            result.appended[o.catalogue] = result.appended.get(o.catalogue, 0) + o.n_appended
            result.duplicates[o.catalogue] = result.duplicates.get(o.catalogue, 0) + o.n_duplicates
        if run_repro:
            _repro_and_record(root, settings, result, step)

    return apply_in_transaction(
        root,
        plan,
        now,
        finish,
        marker=root / VERSIONS_FILE if run_repro else None,
        also_guard=[root / COMPARISON_FILE] if run_repro else [],
        say=_say,
    )


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
        SplitProtocolError: If new rows would be appended under a split protocol that
            cannot take them (nothing changed).
        RefreshError: On a bad configuration or an unreadable raw catalogue (nothing
            changed), or a failed step (rolled back).
    """
    start = time.perf_counter()
    root = Path(repo_dir).resolve()
    result = RefreshResult(repo_dir=root)
    with refresh_lock(root, lock_timeout):
        result.recovered = recover_interrupted(root)
        if result.recovered:
            _say(result.recovered)
        settings = _load_ingest_settings(root)
        items = scan_incoming(root, list(settings.specs))
        plan = validate_incoming(
            items, settings.specs, settings.raw_dir, settings.max_reject_fraction
        )
        check_split_protocol(plan, settings.split_protocol)
        now = _utc_now()
        outcomes: dict[Path, IncomingOutcome] = {}
        for fp in plan.quarantined:
            outcomes[fp.source] = quarantine_file(fp, now)
            _say(f"{fp.catalogue}: quarantined {fp.source.name}: {fp.reasons.splitlines()[0]}")
        if plan.merging:
            for o in _merge_batch(root, settings, plan, run_repro, result, now):
                outcomes[o.source] = o
        elif run_repro:
            _repro_and_record(root, settings, result, Step("`dvc repro`"))
        result.outcomes = [outcomes[fp.source] for fp in plan.order]
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
        SplitProtocolError: If the split protocol cannot take the new rows (nothing changed).
        RefreshError: On a bad configuration or a failed step (rolled back).
    """
    return refresh_flow(str(Path(repo_dir).resolve()), run_repro, lock_timeout)
