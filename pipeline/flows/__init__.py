"""Prefect flows and tasks of geosgm: orchestration only, no maths.

Submodules: ``settings`` (offline/quiet Prefect environment; call
:func:`pipeline.flows.settings.apply_prefect_defaults` before importing prefect),
``runners`` (task-runner factory: threads, processes or Dask), ``fanout`` (run one function
per seed as Prefect tasks), ``refresh`` (merge new catalogue data, ``dvc repro``, record the
model version) and ``deploy`` (the scheduled ``refresh`` deployment).

This package module imports nothing, so importing ``pipeline.flows.settings`` does not
import prefect before its environment is set.
"""
