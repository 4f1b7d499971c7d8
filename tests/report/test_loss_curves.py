"""Tests for pipeline.report.loss_curves."""

from __future__ import annotations

import math
from pathlib import Path

from pipeline.report.loss_curves import draw_loss_curves
from tests.errors import raises_naming


def test_draw_loss_curves_writes_png(tmp_path: Path) -> None:
    hist = {
        m: {
            str(s): [[k * 10, 2.0 * math.exp(-k / 30) + 0.01 * s] for k in range(100)]
            for s in range(5)
        }
        for m in ("rsgm", "ambient_rb")
    }
    out = draw_loss_curves(hist, "volcano", tmp_path / "loss" / "volcano.png", smooth_window=5)
    assert out.read_bytes()[:4] == b"\x89PNG"
    with raises_naming(ValueError, "'m'", "seed '0'", "(2,)"):
        draw_loss_curves({"m": {"0": [1.0, 2.0]}}, "x", tmp_path / "bad.png")
