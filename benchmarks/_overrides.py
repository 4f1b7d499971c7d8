"""``KEY=VALUE`` overrides of a model config, shared by the benchmark scripts."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import yaml


def apply_overrides(config: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``config`` with dotted ``KEY=VALUE`` items set (values parsed as YAML).

    Args:
        config: A model config (``train.common`` <- ``train.<model>`` <- overrides).
        overrides: Items like ``optim.lr=3e-4`` or ``network.time_embedding=log``.

    Returns:
        The new config.

    Raises:
        ValueError: An item without ``=`` or an empty key.
    """
    out = copy.deepcopy(config)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r}: expected KEY=VALUE, e.g. optim.lr=3e-4")
        node = out
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME`` or ``NAME:KEY=VALUE,KEY=VALUE`` -> ``(name, [items])``."""
    name, _, rest = text.partition(":")
    items = [part for part in rest.split(",") if part.strip()]
    return name.strip(), items
