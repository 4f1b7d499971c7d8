"""Task-runner factory: threads (default), processes, or a Dask cluster (prefect-dask).

A stage's params section holds a ``runner`` mapping::

    runner: {kind: thread, max_workers: 2, address: null}

``kind`` is ``thread``, ``process`` or ``dask``. With ``dask`` and an ``address``
(``tcp://host:8786``) the seeds run on that existing Dask scheduler; with ``dask`` and no
address a ``distributed.LocalCluster`` of ``max_workers`` single-threaded workers is started
for the flow and closed afterwards. The environment variable ``GEOSGM_DASK_ADDRESS``
overrides params: when set (non-empty), every stage uses the Dask scheduler at that address.
Dask workers must be able to import ``pipeline`` (install the project in their environment).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

__all__ = ["DASK_ADDRESS_ENV", "RunnerKind", "RunnerSpec", "make_task_runner", "parse_runner_spec"]

DASK_ADDRESS_ENV = "GEOSGM_DASK_ADDRESS"
RunnerKind = Literal["thread", "process", "dask"]
_KINDS: tuple[str, ...] = ("thread", "process", "dask")
_KEYS = frozenset({"kind", "max_workers", "address", "processes"})


@dataclass(frozen=True)
class RunnerSpec:
    """A checked task-runner choice.

    Attributes:
        kind: ``"thread"``, ``"process"`` or ``"dask"``.
        max_workers: Worker threads/processes (local runners and the Dask LocalCluster).
        address: Dask scheduler address (``kind == "dask"`` only); ``None`` starts a
            LocalCluster.
        processes: LocalCluster only: workers are processes (``True``) or threads of this
            process (``False``).
    """

    kind: RunnerKind = "thread"
    max_workers: int = 2
    address: str | None = None
    processes: bool = True


def parse_runner_spec(
    spec: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> RunnerSpec:
    """Check a ``runner`` params mapping and apply the ``GEOSGM_DASK_ADDRESS`` override.

    Args:
        spec: Mapping with optional keys ``kind`` (default ``"thread"``), ``max_workers``
            (default 2), ``address`` (default ``None``) and ``processes`` (default ``True``).
            ``None`` means all defaults.
        environ: Environment to read ``GEOSGM_DASK_ADDRESS`` from; defaults to ``os.environ``.

    Returns:
        The checked spec; ``kind == "dask"`` with that address when the variable is set.

    Raises:
        ValueError: On unknown keys, an unknown kind, ``max_workers < 1``, or an address
            given with a non-Dask kind.
    """
    cfg: Mapping[str, Any] = {} if spec is None else spec
    if not isinstance(cfg, Mapping):
        raise ValueError(f"runner: expected a mapping, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - _KEYS)
    if unknown:
        raise ValueError(f"runner: unknown keys {unknown}; allowed {sorted(_KEYS)}")
    kind = cfg.get("kind", "thread")
    if kind not in _KINDS:
        raise ValueError(f"runner.kind: expected one of {list(_KINDS)}, got {kind!r}")
    max_workers = cfg.get("max_workers", 2)
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"runner.max_workers: expected an integer >= 1, got {max_workers!r}")
    address = cfg.get("address")
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise ValueError(f"runner.address: expected a scheduler address or null, got {address!r}")
    if address is not None and kind != "dask":
        raise ValueError(f"runner.address is only used with kind 'dask', got kind {kind!r}")
    processes = cfg.get("processes", True)
    if not isinstance(processes, bool):
        raise ValueError(f"runner.processes: expected true or false, got {processes!r}")
    env = os.environ if environ is None else environ
    override = env.get(DASK_ADDRESS_ENV, "").strip()
    if override:
        kind, address = "dask", override
    return RunnerSpec(
        kind=cast(RunnerKind, kind),
        max_workers=max_workers,
        address=address.strip() if address else None,
        processes=processes,
    )


def check_scheduler_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in one line, before any work, when no Dask scheduler listens at ``address``.

    distributed itself would retry for its 30 s connect timeout and then raise a traceback
    from inside the flow. Only TCP-like addresses (``tcp://``, ``tls://``, ``host:port``) are
    probed; others (``inproc://``, ``ucx://``) are left to distributed.

    Args:
        address: The scheduler address, e.g. ``"tcp://10.0.0.5:8786"``.
        timeout: Seconds to wait for the TCP connection.

    Raises:
        ValueError: If the address cannot be parsed or nothing accepts a connection there.
    """
    import socket

    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp", "tls"):
        return
    host, _, port = rest.rstrip("/").rpartition(":")
    host = host.strip("[]")  # an IPv6 literal
    if not host or not port.isdigit():
        raise ValueError(f"Dask scheduler address {address!r}: expected tcp://host:port")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(
            f"Dask scheduler at {address} is not reachable ({reason}); start it, or unset "
            f"{DASK_ADDRESS_ENV} / train.runner.address to run on this machine"
        ) from exc


def make_task_runner(
    spec: Mapping[str, Any] | RunnerSpec | None = None,
) -> TaskRunner[Any]:
    """Build the Prefect task runner a params ``runner`` mapping asks for.

    Args:
        spec: A ``runner`` mapping (see :func:`parse_runner_spec`) or a parsed
            :class:`RunnerSpec`; ``None`` gives the default thread pool of 2 workers.
            ``GEOSGM_DASK_ADDRESS`` overrides a mapping (not an already parsed spec).

    Returns:
        ``ThreadPoolTaskRunner``, ``ProcessPoolTaskRunner`` or
        ``prefect_dask.DaskTaskRunner`` (connected to ``address``, or owning a temporary
        ``distributed.LocalCluster``).

    Raises:
        ValueError: If the spec is invalid, or its scheduler address does not answer
            (:func:`check_scheduler_reachable`).
    """
    parsed = spec if isinstance(spec, RunnerSpec) else parse_runner_spec(spec)
    if parsed.kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=parsed.max_workers)
    if parsed.kind == "process":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=parsed.max_workers)
    from prefect_dask import DaskTaskRunner

    if parsed.address:
        check_scheduler_reachable(parsed.address)
        return DaskTaskRunner(address=parsed.address)
    cluster_kwargs: dict[str, Any] = {
        "n_workers": parsed.max_workers,
        "threads_per_worker": 1,
        "processes": parsed.processes,
        "dashboard_address": None,
    }
    if parsed.processes:  # TCP between processes: keep it on the loopback interface
        cluster_kwargs["host"] = "127.0.0.1"
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=cluster_kwargs)
