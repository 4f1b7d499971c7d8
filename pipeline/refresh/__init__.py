"""``geosgm refresh``: merge new catalogue files, rerun what changed, record the version.

The refresh transaction, all or nothing. Submodules:

- ``flow``: the ``refresh`` Prefect flow and :func:`~pipeline.refresh.flow.refresh` (the only
  submodule that imports prefect);
- ``command``: ``geosgm refresh`` from the lock to the exit code (the lock before Prefect);
- ``lock``: the refresh lock ``data/.refresh.lock``;
- ``settings``: what a refresh reads from params.yaml; can the split protocol take new rows;
- ``batch_plan``: the whole batch planned, reading only (with ``incoming_files``: one
  incoming file read, then merged or quarantined; ``event_identity``: which rows are known
  events; ``raw_append``: the append-only write of a raw file);
- ``journal``: the transaction's backups and journal, and recovery after a ``kill -9``;
- ``versions``: the model-version registry ``reports/versions.json``;
- ``result``, ``errors``: the outcome of one refresh, and its errors.

The flow runs ``dvc repro`` through :mod:`pipeline.flows.dvc_repro` and ``geosgm refresh``
starts a local server through :mod:`pipeline.flows.server`: orchestration, a lower layer.
The scheduled deployment of the flow is :mod:`pipeline.refresh.deploy`.

This package module imports nothing (import the submodules), so ``geosgm refresh`` can take
the lock before prefect is imported.
"""

__all__: list[str] = []
