"""The registry of model variants: one package per variant, found by name.

Every sub-package ``pipeline/variants/<name>/`` defines ``VARIANT``, a
:class:`pipeline.variants.base.Variant`; adding a variant is adding such a package (and its
params section ``train.<name>``). Variants are imported by name, on first use, so a stage's
import closure (its DVC code deps, :mod:`tools.dvc_deps`) holds the engine but no variant:
``dvc.yaml`` adds the one variant folder a stage runs (``pipeline/variants/${item.model}``),
and an edit to one variant reruns only that variant's stages.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

from pipeline.variants.base import TrainedModel, Variant, build_manifold, build_schedule

__all__ = [
    "TrainedModel",
    "Variant",
    "build_manifold",
    "build_schedule",
    "check_kind",
    "get_variant",
    "variant_names",
]

_HERE = Path(__file__).resolve().parent


@cache
def variant_names() -> tuple[str, ...]:
    """Every variant's name (the packages under ``pipeline/variants/``), sorted."""
    return tuple(
        sorted(p.parent.name for p in _HERE.glob("*/__init__.py") if p.parent.name.isidentifier())
    )


def check_kind(kind: str) -> str:
    """Return ``kind`` if it names a variant.

    Raises:
        ValueError: If it does not (the message lists the known ones).
    """
    if kind not in variant_names():
        raise ValueError(f"unknown model {kind!r}; known: {', '.join(variant_names())}")
    return kind


@cache
def get_variant(kind: str) -> Variant:
    """The variant named ``kind`` (its package imported on first use).

    Raises:
        ValueError: On an unknown name, or a package whose ``VARIANT`` is not named after it.
    """
    module = importlib.import_module(f"pipeline.variants.{check_kind(kind)}")
    variant = getattr(module, "VARIANT", None)
    if not isinstance(variant, Variant) or variant.name != kind:
        raise ValueError(f"pipeline/variants/{kind}: VARIANT must be a Variant named {kind!r}")
    return variant
