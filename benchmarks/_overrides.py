"""``KEY=VALUE`` overrides of a model config, shared by the benchmark scripts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from pipeline.config import deep_merge


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
    out = dict(config)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r}: expected KEY=VALUE, e.g. optim.lr=3e-4")
        node: Any = yaml.safe_load(value)
        for part in reversed(key.strip().split(".")):
            node = {part: node}
        out = deep_merge(out, node)  # the one merge (a copy: config is not changed)
    return out


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME`` or ``NAME:KEY=VALUE,KEY=VALUE`` -> ``(name, [items])``."""
    name, _, rest = text.partition(":")
    items = [part for part in rest.split(",") if part.strip()]
    return name.strip(), items
