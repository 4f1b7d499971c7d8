"""The report's Schrödinger-bridge section from a benchmarks/bridge_steps.py payload."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.report.bridge import bridge_blocks, draw_bridge_steps, steps_table
from pipeline.report.document import Image, Table, Text


def _payload() -> dict:
    results = []
    for seed in (0, 1):
        for model, base in (("rsgm_long", 0.010), ("rsgm_short", 0.020), ("bridge_2", 0.012)):
            results.append(
                {
                    "catalogue": "earthquake",
                    "seed": seed,
                    "model": model,
                    "test_nll": base * 10 + 0.1 * seed,
                    "rows": [
                        {
                            "steps": n,
                            "mmd2": {"0.01": base / n + 1e-4 * seed, "0.1": base},
                            "p_value": 0.5,
                        }
                        for n in (5, 50)
                    ],
                    "floor_val_vs_test": {"0.01": 1e-4, "0.1": 1e-5},
                }
            )
    args = {"mmd_scales": [0.01, 0.1], "short_s": 0.3, "seeds": [0, 1], "total_steps": 100}
    return {"args": args, "results": results}


def test_steps_table_means_over_seeds() -> None:
    steps, mmd, nll = steps_table(_payload(), "earthquake", "0.01")
    assert steps == [5, 50]
    assert mmd["rsgm_short"] == pytest.approx([0.020 / 5 + 5e-5, 0.020 / 50 + 5e-5])
    mean, se = nll["bridge_2"]
    assert mean == pytest.approx(0.12 + 0.05)
    assert se == pytest.approx(0.1 / math.sqrt(2) / math.sqrt(2))


def test_blocks_and_figure(tmp_path: Path) -> None:
    assert bridge_blocks(None, None) == []
    png = draw_bridge_steps(_payload(), tmp_path / "bridge" / "steps.png")
    assert png.is_file() and png.stat().st_size > 1000
    blocks = bridge_blocks(_payload(), png)
    table = blocks[0]
    assert isinstance(table, Table)
    assert table.header == ["model", "N = 5", "N = 50", "test NLL ± SE"]
    labels = [row[0].text for row in table.rows]
    assert labels == [
        "earthquake: rsgm, s(T) = 2.5",
        "earthquake: rsgm, s(T) = 0.3 (= bridge, 1 iteration)",
        "earthquake: bridge, 2 iterations",
    ]
    assert table.rows[0][1].text == f"{1e3 * (0.010 / 5 + 5e-5):.2f}"
    assert isinstance(blocks[1], Image) and isinstance(blocks[2], Text)
