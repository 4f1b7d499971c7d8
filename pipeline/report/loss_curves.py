"""Training-loss curves: one PNG per catalogue, one panel per model, one line per seed."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import atomic_write
from pipeline.report.summary import read_report_json

__all__ = ["draw_loss_curves", "loss_figures"]


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean with a shrinking window at the ends (same length as ``y``)."""
    if window <= 1 or y.size < 3:
        return y
    window = min(window, y.size)
    kernel = np.ones(window)
    num = np.convolve(y, kernel, mode="same")
    den = np.convolve(np.ones_like(y), kernel, mode="same")
    return num / den


def draw_loss_curves(
    loss_histories: Mapping[str, Mapping[str, Sequence[Sequence[float]]]],
    title: str,
    out_png: str | os.PathLike[str],
    *,
    smooth_window: int = 25,
    dpi: int = 110,
) -> Path:
    """Draw training-loss curves: one panel per model (in the given order), one line per seed.

    Args:
        loss_histories: ``model -> seed -> [[step, loss], ...]`` (the ``loss_history`` of the
            per-model metrics files); the key is used as the panel title.
        title: Figure title (e.g. the catalogue).
        out_png: Output PNG path (written atomically; parents created).
        smooth_window: Width of the running mean drawn over the raw (faint) curve.
        dpi: Resolution.

    Returns:
        The written path.

    Raises:
        ValueError: If there is no model, or a history is not a list of ``[step, loss]`` pairs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(loss_histories)
    if not models:
        raise ValueError(f"draw_loss_curves({title!r}): no loss history given")
    n = len(models)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False, layout="constrained"
    )
    try:
        for k, model in enumerate(models):
            ax = axes[k // ncols][k % ncols]
            tails: list[np.ndarray] = []
            for i, seed in enumerate(sorted(loss_histories[model], key=_seed_key)):
                arr = np.asarray(loss_histories[model][seed], dtype=np.float64)
                if arr.ndim != 2 or arr.shape[1] != 2:
                    raise ValueError(
                        f"loss history of {model!r} seed {seed!r} must be [[step, loss], ...], "
                        f"got shape {arr.shape}"
                    )
                if arr.shape[0] == 0:
                    continue
                colour = f"C{i % 10}"
                ax.plot(arr[:, 0], arr[:, 1], color=colour, alpha=0.25, linewidth=0.6)
                ax.plot(
                    arr[:, 0],
                    _smooth(arr[:, 1], smooth_window),
                    color=colour,
                    linewidth=1.3,
                    label=f"seed {seed}",
                )
                finite = arr[np.isfinite(arr[:, 1]), 1]
                if finite.size:
                    tails.append(finite[finite.size // 10 :])
            if tails:
                tail = np.concatenate(tails)
                lo, hi = float(np.min(tail)), float(np.percentile(tail, 99.0))
                pad = 0.08 * max(hi - lo, 1e-12)
                ax.set_ylim(lo - pad, hi + pad)
            ax.set_title(model, fontsize=10)
            ax.set_xlabel("training step")
            ax.set_ylabel("loss")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        for k in range(n, nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        fig.suptitle(title)
        out = Path(out_png)
        _atomic_savefig(fig, out, dpi)
    finally:
        plt.close(fig)
    return out


def _seed_key(seed: str) -> tuple[int, str]:
    """Sort seeds numerically when they are integers."""
    return (int(seed), "") if str(seed).lstrip("-").isdigit() else (1 << 30, str(seed))


def _atomic_savefig(fig: Any, out: Path, dpi: int) -> None:
    """Save a matplotlib figure as PNG atomically."""
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"), ".png")


def loss_figures(
    summary: Mapping[str, Any], metrics_dir: Path, figures_dir: Path
) -> dict[str, Path]:
    """Draw one loss-curve figure per catalogue from the per-model metrics files.

    Args:
        summary: Validated summary (gives the catalogues and models).
        metrics_dir: Folder of ``<catalogue>/<model>.json``.
        figures_dir: Output folder (``<catalogue>.png``).

    Returns:
        ``catalogue -> PNG`` for catalogues with at least one loss history.

    Raises:
        FileNotFoundError: If a per-model metrics file is missing.
        ValueError: If one is malformed.
    """
    out: dict[str, Path] = {}
    for cat, models in summary["results"].items():
        histories: dict[str, Mapping[str, Any]] = {}
        for model in models:
            path = metrics_dir / cat / f"{model}.json"
            if not path.is_file():
                raise FileNotFoundError(
                    f"per-model metrics {path} (written by evaluate) is missing"
                )
            data = read_report_json(path)
            history = data.get("loss_history") if isinstance(data, Mapping) else None
            if history is None:
                continue
            if not isinstance(history, Mapping):
                raise ValueError(f"{path}: loss_history must map seed -> [[step, loss], ...]")
            if not any(len(h) for h in history.values()):
                continue
            # a model evaluated from another's weights (ambient_rb_corrected) has its history
            same = [name for name, h in histories.items() if h == history]
            if same:
                histories = {
                    (f"{name} = {model}" if name == same[0] else name): h
                    for name, h in histories.items()
                }
            else:
                histories[model] = history
        if histories:
            out[cat] = draw_loss_curves(
                histories, f"{cat}: training loss", figures_dir / f"{cat}.png"
            )
    return out
