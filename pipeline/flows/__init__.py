"""Prefect flows and tasks of geosgm: orchestration only, no maths.

Submodules: ``settings`` (offline/quiet Prefect environment; call
:func:`pipeline.flows.settings.apply_prefect_defaults` before importing prefect),
``runners`` (task-runner factory: threads, processes or Dask), ``fanout`` (run one function
per seed as Prefect tasks), ``stage`` (a stage's work as one flow run, and its exit code),
``server`` (a local Prefect API server), ``dask_processes`` (a local Dask cluster of
separate processes), ``dvc_repro`` (``dvc repro`` in its own session, stopped as a group),
``run_progress`` (``geosgm run``'s per-stage progress) and ``deploy`` (the scheduled
``refresh`` deployment). The refresh transaction itself is :mod:`pipeline.refresh`.

This package module imports nothing, so importing ``pipeline.flows.settings`` does not
import prefect before its environment is set.
"""
