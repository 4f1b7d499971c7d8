"""The SO(3) benchmark's data files: one wrapped-normal mixture law and its draws per (M, seed).

For each number of components M and seed k, :func:`make_benchmark` draws the law
(:func:`pipeline.so3.wrapped.reference_mixture` with seed k) and then ``n_train + n_val +
n_test`` points from it (torch generator seeded with k), split in that order. A file holds
the three parts, the law (means, scales, weights) and the exact log-density of the val and
test points w.r.t. the Frobenius volume (the true density's row of every table).

Files are ``<root>/m<M>/seed<k>.npz`` (float64, read with ``allow_pickle=False``), written
atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.atomic import atomic_write
from pipeline.so3.wrapped import WrappedMixture, reference_mixture

__all__ = ["BenchmarkData", "benchmark_path", "load_benchmark", "make_benchmark", "write_benchmark"]

PARTS = ("train", "val", "test")
_KEYS = (*PARTS, "means", "sigmas", "weights", "val_logp", "test_logp")
_POINT_ATOL = 1e-6


def benchmark_path(root: str | Path, m: int, seed: int) -> Path:
    """``<root>/m<M>/seed<k>.npz``."""
    return Path(root) / f"m{int(m)}" / f"seed{int(seed)}.npz"


@dataclass(frozen=True)
class BenchmarkData:
    """One benchmark file.

    Attributes:
        train, val, test: Arrays, shape (N, 9), rotations (float64).
        law: The mixture the points were drawn from.
        val_logp, test_logp: Arrays, shape (N,), the exact log-density of val and test.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    law: WrappedMixture
    val_logp: np.ndarray
    test_logp: np.ndarray


def make_benchmark(
    m: int, seed: int, n_train: int, n_val: int, n_test: int, precision_shape: float = 100.0
) -> dict[str, np.ndarray]:
    """The arrays of one benchmark file (deterministic in its arguments).

    Args:
        m: Number of mixture components.
        seed: Seed of the law and of the draws.
        n_train, n_val, n_test: Points per part (each ≥ 1).
        precision_shape: Shape of the components' Gamma-distributed precisions.

    Returns:
        ``{"train", "val", "test", "means", "sigmas", "weights", "val_logp", "test_logp"}``.

    Raises:
        ValueError: On a part size below 1 or M below 1.
    """
    sizes = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
    if min(sizes.values()) < 1:
        raise ValueError(f"every part needs at least one point, got {sizes}")
    law = reference_mixture(m, seed=seed, precision_shape=precision_shape)
    x, _ = law.sample(sum(sizes.values()), torch.Generator().manual_seed(seed))
    out: dict[str, np.ndarray] = {}
    start = 0
    for part in PARTS:
        out[part] = x[start : start + sizes[part]].numpy()
        start += sizes[part]
    out["means"] = law.means.numpy()
    out["sigmas"] = law.sigmas.numpy()
    out["weights"] = law.weights.numpy()
    for part in ("val", "test"):
        out[f"{part}_logp"] = law.log_prob(torch.as_tensor(out[part])).numpy()
    return out


def write_benchmark(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write one file atomically (``np.savez``; a stopped write leaves no partial file)."""

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy stubs: allow_pickle

    return atomic_write(path, write)


def load_benchmark(path: str | Path) -> BenchmarkData:
    """Read and check one benchmark file.

    Raises:
        FileNotFoundError: If it does not exist (naming the stage that writes it).
        ValueError: If an array is missing, has the wrong shape or is not finite, or a point is
            not a rotation (naming the file, the array and the row).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: SO(3) benchmark file not found; run `dvc repro so3_data`")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in _KEYS if key not in npz.files]
            if missing:
                raise KeyError(missing[0])
            arrays = {key: np.asarray(npz[key], dtype=np.float64) for key in _KEYS}
    except KeyError as exc:
        raise ValueError(f"{path}: missing array {exc}; expected {list(_KEYS)}") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a benchmark file ({exc})") from None
    m = arrays["means"].shape[0]
    shapes = {
        **{part: (None, 9) for part in PARTS},
        "means": (m, 9),
        "sigmas": (m,),
        "weights": (m,),
        "val_logp": (arrays["val"].shape[0],),
        "test_logp": (arrays["test"].shape[0],),
    }
    for key, shape in shapes.items():
        got = arrays[key].shape
        if len(got) != len(shape) or any(
            w is not None and w != g for w, g in zip(shape, got, strict=False)
        ):
            raise ValueError(f"{path}: array {key!r} has shape {got}, expected {shape}")
        bad = np.flatnonzero(~np.isfinite(arrays[key]).reshape(got[0], -1).all(axis=1))
        if bad.size:
            raise ValueError(f"{path}: array {key!r} row {int(bad[0])} is not finite")
    for key in (*PARTS, "means"):
        mats = arrays[key].reshape(-1, 3, 3)
        err = np.abs(mats.transpose(0, 2, 1) @ mats - np.eye(3)).max(axis=(1, 2))
        err = np.maximum(err, np.abs(np.linalg.det(mats) - 1.0))
        bad = np.flatnonzero(err > _POINT_ATOL)
        if bad.size:
            raise ValueError(
                f"{path}: array {key!r} row {int(bad[0])} is not a rotation "
                f"(|RᵀR − I| or |det R − 1| = {float(err[bad[0]]):.2g})"
            )
    law = WrappedMixture(
        torch.as_tensor(arrays["means"]),
        torch.as_tensor(arrays["sigmas"]),
        torch.as_tensor(arrays["weights"]),
    )
    return BenchmarkData(
        arrays["train"],
        arrays["val"],
        arrays["test"],
        law,
        arrays["val_logp"],
        arrays["test_logp"],
    )
