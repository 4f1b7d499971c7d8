"""The ``refresh`` flow: merge new catalogue files, rerun what changed, record the version.

Operators drop new catalogue files into ``data/incoming/<catalogue>/*.csv`` (laid out like
that catalogue's raw file). A refresh is all or nothing: the append to ``data/raw/``, the
``dvc repro`` and the version record all happen, or ``data/raw/`` is restored byte for byte
and the incoming files are put back. Under the lock (:mod:`~pipeline.refresh.lock`;
a second refresh fails at once with :class:`RefreshLockedError` or waits ``lock_timeout``
seconds) the flow

1. finishes or undoes a refresh that was killed (:mod:`~pipeline.refresh.journal`);
2. reads its settings and plans the whole batch without changing anything
   (:mod:`~pipeline.refresh.settings`, :mod:`~pipeline.refresh.batch_plan`: the ingest
   reader, validation and reject budget (:mod:`~pipeline.refresh.incoming_files`), duplicates
   by event identity (:mod:`~pipeline.refresh.event_identity`));
3. fails with one line (:class:`SplitProtocolError`, nothing changed) when the split
   protocol cannot take the new rows (``rsgm``: published labels only);
4. quarantines the files that cannot be read, with all their reasons (never rolled back);
5. in one transaction appends to the raw files (append-only, one :func:`os.replace` each),
   moves the merged files to ``processed/``, runs ``dvc repro``
   (:mod:`~pipeline.flows.dvc_repro`) and writes ``reports/versions.json`` last, the commit
   point (without ``dvc repro``, deleting the journal is). Any exception before it,
   KeyboardInterrupt included, rolls everything back; a :class:`RefreshError` says what
   failed and that ``data/raw`` was restored (a KeyboardInterrupt is re-raised as is).

After a ``kill -9`` the next refresh rolls back (or keeps, when its version was recorded)
the interrupted one and merges the incoming files once, so run ``geosgm refresh``
(``--no-repro`` is enough) before a plain ``dvc repro``. No ``fsync``: a power loss is not
covered. Progress goes to the Prefect run logger and the ``pipeline.refresh.flow`` logger.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from pipeline.data.registry import CatalogueSpec
from pipeline.flows.dvc_repro import run_dvc_repro
from pipeline.refresh.batch_plan import BatchPlan, plan_batch, plan_catalogue
from pipeline.refresh.errors import RefreshError, RefreshLockedError, SplitProtocolError
from pipeline.refresh.incoming_files import (
    IncomingOutcome,
    finish_merged_file,
    plan_move,
    quarantine_file,
)
from pipeline.refresh.journal import Step, apply_in_transaction, recover_interrupted
from pipeline.refresh.lock import refresh_lock
from pipeline.refresh.raw_append import replace_raw_file
from pipeline.refresh.result import RefreshResult
from pipeline.refresh.settings import (
    RefreshSettings,
    check_split_protocol,
    load_refresh_settings,
)
from pipeline.refresh.versions import COMPARISON_FILE, VERSIONS_FILE, write_version

__all__ = [
    # The errors a refresh raises and its result, re-exported for `geosgm refresh`.
    "RefreshError",
    "RefreshLockedError",
    "RefreshResult",
    "SplitProtocolError",
    "merge_incoming_file",
    "record_version",
    "refresh",
    "refresh_flow",
    "scan_incoming",
    "validate_incoming",
]

INCOMING_DIR = "data/incoming"
SUMMARY_FILE = "reports/summary.json"

_log = logging.getLogger(__name__)


def _say(message: str) -> None:
    """Log progress to the Prefect run logger (when in a run) and the module logger."""
    _log.info(message)
    with contextlib.suppress(MissingContextError):
        get_run_logger().info(message)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


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
        The batch plan (:func:`pipeline.refresh.batch_plan.plan_batch`).

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


@task(name="record-version", cache_policy=NO_CACHE)
def record_version(
    repo_dir: Path,
    raw_dir: Path,
    appended: Mapping[str, int],
    stages_run: list[str],
    now: datetime | None = None,
) -> tuple[dict[str, Any], Path]:
    """Append the current model version to ``reports/versions.json`` and compare it.

    See :func:`pipeline.refresh.versions.write_version` for the entry's fields; the summary
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
    root: Path, settings: RefreshSettings, result: RefreshResult, step: Step
) -> None:
    """Run ``dvc repro`` and record a version when something changed or none exists."""
    step.name = "`dvc repro`"
    result.stages_run = run_dvc_repro(root)
    result.repro_ran = True
    _say(f"dvc repro: {len(result.stages_run)} stage(s) ran: {result.stages_run}")
    has_history = (root / VERSIONS_FILE).is_file()
    if result.stages_run or any(result.appended.values()) or not has_history:
        step.name = "recording the version"
        result.version, result.comparison_path = record_version(
            root, settings.raw_dir, result.appended, result.stages_run
        )


def _merge_batch(
    root: Path,
    settings: RefreshSettings,
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
        settings = load_refresh_settings(root)
        items = scan_incoming(root, list(settings.specs))
        plan = validate_incoming(
            items, settings.specs, settings.raw_dir, settings.max_reject_fraction
        )
        check_split_protocol(plan, settings.split_protocol, settings.split_overrides)
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
