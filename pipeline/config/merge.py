"""Plain-dict configuration helpers (no evaluation of params as code)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """Recursively merge ``override`` onto a copy of ``base``: mappings merge, other values replace.

    Args:
        base: The mapping to start from (not modified).
        override: Values that win; ``None`` means no change.

    Returns:
        A new dict.
    """
    out = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
