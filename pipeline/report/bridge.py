"""The report's Schrödinger-bridge section: sample quality against reverse steps
(``benchmarks/bridge_steps.py``'s output, ``reports/benchmarks/bridge_steps.json``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.report.document import Block, HtmlCell, Image, Table, Text

__all__ = ["bridge_blocks", "draw_bridge_steps", "steps_table"]

_LABELS = {
    "rsgm_long": "rsgm, s(T) = 2.5",
    "rsgm_short": "rsgm, short horizon (= bridge, 1 iteration)",
}


def _label(model: str, short_s: float) -> str:
    if model in _LABELS:
        return _LABELS[model].replace("short horizon", f"s(T) = {short_s:g}")
    k = model.split("_")[1]
    return f"bridge, {k} iterations" + (" (mean matching)" if model.endswith("_mm") else "")


def _models(results: Sequence[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for r in results:
        if r["model"] not in out:
            out.append(str(r["model"]))
    return out


def steps_table(
    payload: Mapping[str, Any], catalogue: str, scale: str
) -> tuple[list[int], dict[str, list[float]], dict[str, tuple[float, float]]]:
    """Mean MMD² per model and step count, and the mean ± SE test NLL, for one catalogue.

    Returns:
        ``(steps, {model: [MMD² per step]}, {model: (nll mean, nll se)})``.
    """
    results = [r for r in payload["results"] if r["catalogue"] == catalogue]
    steps = [int(row["steps"]) for row in results[0]["rows"]]
    mmd: dict[str, list[float]] = {}
    nll: dict[str, tuple[float, float]] = {}
    for model in _models(results):
        rs = [r for r in results if r["model"] == model]
        mmd[model] = [
            float(np.mean([r["rows"][i]["mmd2"][scale] for r in rs])) for i in range(len(steps))
        ]
        vals = [float(r["test_nll"]) for r in rs]
        se = float(np.std(vals, ddof=1) / math.sqrt(len(vals))) if len(vals) > 1 else math.nan
        nll[model] = (float(np.mean(vals)), se)
    return steps, mmd, nll


def draw_bridge_steps(payload: Mapping[str, Any], out_png: Path) -> Path:
    """MMD² against reverse steps (log-log), one panel per catalogue, at the first scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline.atomic import atomic_write

    cats = sorted({str(r["catalogue"]) for r in payload["results"]})
    scale = str(payload["args"]["mmd_scales"][0])
    short_s = float(payload["args"]["short_s"])
    fig, axes = plt.subplots(1, len(cats), figsize=(5.5 * len(cats), 4.0), squeeze=False)
    try:
        for ax, cat in zip(axes[0], cats, strict=True):
            steps, mmd, _ = steps_table(payload, cat, scale)
            for model, values in mmd.items():
                ax.plot(steps, np.maximum(values, 1e-6), marker="o", label=_label(model, short_s))
            floor = np.mean(
                [r["floor_val_vs_test"][scale] for r in payload["results"] if r["catalogue"] == cat]
            )
            ax.axhline(max(floor, 1e-6), color="grey", ls=":", label="val vs test events")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("reverse steps N")
            ax.set_ylabel(f"MMD² to test events (heat kernel, s = {scale})")
            ax.set_title(cat)
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        atomic_write(out_png, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), ".png")
    finally:
        plt.close(fig)
    return out_png


def bridge_blocks(payload: Mapping[str, Any] | None, png: Path | None) -> list[Block]:
    """A table per catalogue (MMD² ×10³ per N, test NLL), the figure and how to read them."""
    if not payload:
        return []
    args = payload["args"]
    scale = str(args["mmd_scales"][0])
    short_s = float(args["short_s"])
    blocks: list[Block] = []
    for cat in sorted({str(r["catalogue"]) for r in payload["results"]}):
        steps, mmd, nll = steps_table(payload, cat, scale)
        rows = []
        for model, values in mmd.items():
            mean, se = nll[model]
            rows.append(
                [HtmlCell(f"{cat}: {_label(model, short_s)}")]
                + [HtmlCell(f"{1e3 * v:.2f}") for v in values]
                + [HtmlCell(f"{mean:+.3f} ± {se:.3f}" if math.isfinite(se) else f"{mean:+.3f}")]
            )
        header = ["model"] + [f"N = {n}" for n in steps] + ["test NLL ± SE"]
        blocks.append(Table(header, rows, set(range(1, len(header)))))
    if png is not None:
        blocks.append(
            Image(
                png,
                "MMD² against reverse steps",
                "MMD² of generated samples to the held-out test events against reverse steps",
            )
        )
    seeds = ", ".join(str(s) for s in args["seeds"])
    blocks.append(
        Text(
            f"Sample quality against the number N of reverse steps, MMD² ×10³ to the test events "
            f"(heat kernel at s = {scale}; lower is better; the dotted line is held-out "
            f"validation events against the test events), mean over split seeds {seeds}, every "
            f"model with {args['total_steps']} training steps in all (a bridge of k iterations "
            f"splits them over its 2k − 1 fields). Test NLL by each model's probability-flow "
            "ODE with the uniform base (for the bridge, the ODE of ½(F − B)). From "
            "benchmarks/bridge_steps.py (reports/benchmarks/bridge_steps.txt)."
        )
    )
    return blocks
