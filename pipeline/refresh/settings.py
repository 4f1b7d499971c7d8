"""What a refresh reads from params.yaml, and whether its split protocol takes new rows.

The refresh reads the catalogue registry, the reject budget and the raw folder (section
``ingest``) and the split protocol (``split.protocol``) from the project's params.yaml
(:func:`load_refresh_settings`), and before it changes anything checks that the protocol
can give the rows it would append a part (:func:`check_split_protocol`). No prefect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config.yaml_file import ParamsFileError, read_yaml_mapping
from pipeline.data.registry import CatalogueSpec, parse_catalogues
from pipeline.data.splits import PROTOCOLS
from pipeline.refresh.batch_plan import BatchPlan
from pipeline.refresh.errors import RefreshError, SplitProtocolError

__all__ = [
    "APPEND_PROTOCOLS",
    "DEFAULT_RAW_DIR",
    "RefreshSettings",
    "check_split_protocol",
    "load_refresh_settings",
]

#: ``ingest.raw_dir`` when params.yaml does not set it, relative to the project root.
DEFAULT_RAW_DIR = "data/raw"
#: Split protocols that give appended rows a part (``rsgm`` has published labels only).
APPEND_PROTOCOLS = frozenset({"hash", "rsgm+hash", "auto"})


@dataclass(frozen=True)
class RefreshSettings:
    """The params a refresh uses.

    Attributes:
        specs: Catalogue name -> reading spec (``ingest.catalogues``).
        max_reject_fraction: The ingest reject budget (``ingest.max_reject_fraction``).
        raw_dir: Raw-data folder (``ingest.raw_dir`` under the project root).
        split_protocol: ``split.protocol``, or ``None`` without a ``split`` section.
        split_overrides: ``split.overrides``: catalogue name -> its own protocol.
    """

    specs: dict[str, CatalogueSpec]
    max_reject_fraction: float
    raw_dir: Path
    split_protocol: str | None = None
    split_overrides: dict[str, str] = field(default_factory=dict)


def load_refresh_settings(repo_dir: Path) -> RefreshSettings:
    """Read the catalogue registry, reject budget and split protocol from params.yaml.

    Args:
        repo_dir: Project root (holding ``params.yaml``).

    Returns:
        The settings.

    Raises:
        RefreshError: If params.yaml cannot be read, has no ``ingest.catalogues``, or its
            ``ingest.max_reject_fraction`` is not a number.
    """
    params_path = repo_dir / "params.yaml"
    try:
        params = read_yaml_mapping(params_path)
    except ParamsFileError as exc:
        raise RefreshError(f"cannot read the project's params: {exc}") from exc
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
    overrides = (split.get("overrides") if isinstance(split, Mapping) else None) or {}
    if not isinstance(overrides, Mapping):
        raise RefreshError(f"{params_path}: 'split.overrides' must be a mapping of protocols")
    return RefreshSettings(
        parse_catalogues(ingest["catalogues"]),
        float(fraction),
        raw_dir,
        None if protocol is None else str(protocol),
        {str(k): str(v) for k, v in overrides.items()},
    )


def check_split_protocol(
    plan: BatchPlan, protocol: str | None, overrides: Mapping[str, str] | None = None
) -> None:
    """Fail, before anything changes, when a split protocol cannot take the new rows.

    Args:
        plan: The batch plan.
        protocol: ``split.protocol`` from params.yaml; ``None`` (no ``split`` section, so
            no split stage) allows any append.
        overrides: ``split.overrides``: a catalogue's own protocol, winning over ``protocol``.

    Raises:
        SplitProtocolError: If a catalogue would get new rows and ``protocol`` is not one
            of :data:`APPEND_PROTOCOLS` known to :mod:`pipeline.data.splits` (``rsgm``, or
            an unknown protocol). The message is one line.
    """
    if protocol is None:
        return
    own = dict(overrides or {})
    takes_rows = APPEND_PROTOCOLS & set(PROTOCOLS)
    growing = [(cp.spec.name, cp.n_appended) for cp in plan.catalogues if cp.n_appended]
    blocked = [(name, n) for name, n in growing if own.get(name, protocol) not in takes_rows]
    if not blocked:
        return
    name, n = blocked[0]
    bad = own.get(name, protocol)
    key = f"split.overrides.{name}" if name in own else "split.protocol"
    kind = " (published labels only)" if bad == "rsgm" else ""
    raise SplitProtocolError(
        f"refresh not started: {n} new row(s) for {name}, but {key} {bad!r}{kind} cannot take "
        f"appended rows; set {key} to 'auto' or 'rsgm+hash' in params.yaml and refresh again "
        "(nothing was changed; the incoming files are still in data/incoming/)"
    )
