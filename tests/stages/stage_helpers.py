"""Helpers shared by the stage tests (not tests themselves)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_tiny_catalogue(root: Path, n: int = 200, seed: int = 3) -> Path:
    """``root/data/raw/tiny.csv``: ``n`` events uniform in lat ±60°, lon ±170° (header
    ``lat,lon``, 4 decimals), the same file for the same ``seed``."""
    rng = np.random.default_rng(seed)
    lat, lon = rng.uniform(-60.0, 60.0, n), rng.uniform(-170.0, 170.0, n)
    raw = root / "data/raw/tiny.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text(
        "lat,lon\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in zip(lat, lon, strict=True))
    )
    return raw
