"""Shared fixtures of the pipeline.report tests: a summary, PNGs, an HTML collector, git."""

from __future__ import annotations

import math
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np

T_975_4 = 2.7764451051977987  # Student t quantile 0.975 with 4 degrees of freedom

# per-seed test NLLs of the fixture (catalogue -> model -> 5 values)
_TEST_NLL = {
    "volcano": {
        "rsgm": [-8.1, -8.4, -7.9, -8.3, -8.0],
        "ambient_rb": [-3.0, -3.2, -2.9, -3.1, -3.3],
    },
    "earthquake": {
        "rsgm": [0.10, 0.05, 0.12, 0.08, 0.11],
        "ambient_rb": [0.2, 0.25, 0.22, 0.3, 0.18],
    },
}


def _entry(values: list[float], n_test: int = 83, steps: int = 10_000) -> dict[str, Any]:
    arr = np.asarray(values)
    std = float(arr.std(ddof=1))
    return {
        "mean": float(arr.mean()),
        "std": std,
        "ci95": T_975_4 * std / math.sqrt(5),
        "n_test": n_test,
        "per_seed": [
            {
                "seed": s,
                "test_nll": float(v),
                "val_nll": float(v) + 0.01,
                "nfe": 98 + s,
                "train_steps": steps,
                "train_seconds": 120.0 + s,
                "normalization": 1.0 - 0.001 * s,
            }
            for s, v in enumerate(values)
        ],
    }


def _summary(shift: float = 0.0, steps: int = 10_000) -> dict[str, Any]:
    return {
        "protocol": "published splits, seeds 0-4",
        "seeds": [0, 1, 2, 3, 4],
        "units": "nats per point",
        "results": {
            cat: {m: _entry([v + shift for v in vals], steps=steps) for m, vals in models.items()}
            for cat, models in _TEST_NLL.items()
        },
    }


class _Collector(HTMLParser):
    """Collect tags with attributes, and the text of every <td>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.cells: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self._td: dict[str, str | None] | None = None
        self._text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "td":
            self._td, self._text = dict(attrs), []
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._td is not None:
            self.cells.append((self._td, "".join(self._text)))
            self._td = None
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._td is not None:
            self._text.append(data)
        if self._in_style:
            self.styles.append(data)


def _png(path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=20)
    plt.close(fig)
    return path


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.invalid",
            "-C",
            str(repo),
            *args,
        ],
        check=True,
        capture_output=True,
    )
