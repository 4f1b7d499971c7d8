"""A trained model's density at query points, with its spread over the trained seeds.

The models give a log-density w.r.t. the area of the unit sphere (nats per steradian) by the
probability-flow ODE (:func:`pipeline.evaluation.log_density`, the same solver and defaults
as the test NLL). On the Earth of radius R the same law has density p / R² per km²
(:data:`EARTH_RADIUS_KM` is the IUGG mean radius; the spherical Earth is the model's).

Each seed's model is evaluated; the table reports the mean and the sample standard deviation
(ddof = 1; 0 for one seed) of the log-density over seeds, and the density per km² of that
mean log-density (the seeds' geometric mean).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipeline.checkpoints import MODEL_CARD_FILE
from pipeline.evaluation import load_trained, log_density
from pipeline.geometry.coords import latlon_to_xyz
from pipeline.query.bundle import fitting_stage
from pipeline.variants import TrainedModel, variant_names

__all__ = [
    "EARTH_RADIUS_KM",
    "DensityTable",
    "ModelNotFoundError",
    "load_seed_models",
    "query_density",
    "seed_dirs",
]

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius R₁ (IUGG), km: 1 sr of the unit sphere is R² km² of the Earth."""

_SEED_DIR = re.compile(r"seed(\d+)$")


class ModelNotFoundError(FileNotFoundError):
    """A catalogue/model has no trained weights here; the message says how to get them."""


def seed_dirs(models_dir: str | Path, catalogue: str, model: str) -> dict[int, Path]:
    """The trained seed folders of one model, by seed number.

    Args:
        models_dir: ``data/models``.
        catalogue: Catalogue name.
        model: Model name (a key of :func:`pipeline.variants.variant_names`).

    Returns:
        ``{seed: folder}`` of the folders holding a model card, sorted by seed.

    Raises:
        ValueError: An unknown model name.
        ModelNotFoundError: No trained seed (with the ``dvc`` command that fetches or makes
            them).
    """
    if model not in variant_names():
        raise ValueError(f"unknown model {model!r} (models: {', '.join(variant_names())})")
    folder = Path(models_dir) / catalogue / model
    found: dict[int, Path] = {}
    if folder.is_dir():
        for child in folder.iterdir():
            match = _SEED_DIR.match(child.name)
            if match and (child / MODEL_CARD_FILE).is_file():
                found[int(match.group(1))] = child
    if not found:
        stage = fitting_stage(catalogue, model)
        raise ModelNotFoundError(
            f"{folder}: no fitted seeds; fit them with `.venv/bin/dvc repro {stage}` "
            "(`geosgm run --first` fits every catalogue's kde model in minutes)"
        )
    return dict(sorted(found.items()))


def load_seed_models(
    models_dir: str | Path,
    catalogue: str,
    model: str,
    seeds: Sequence[int] | None = None,
    device: str | None = None,
) -> dict[int, TrainedModel]:
    """Load the final EMA weights of every (or the chosen) trained seed of a model.

    Args:
        models_dir: ``data/models``.
        catalogue: Catalogue name.
        model: Model name.
        seeds: Seeds to load (default: all trained ones).
        device: ``"cpu"``, ``"cuda"`` or ``None``/``"auto"``.

    Returns:
        ``{seed: TrainedModel}``.

    Raises:
        ModelNotFoundError: No trained seed, or a chosen seed that is not trained.
    """
    available = seed_dirs(models_dir, catalogue, model)
    chosen = list(available) if seeds is None else list(dict.fromkeys(seeds))
    missing = [s for s in chosen if s not in available]
    if missing:
        raise ModelNotFoundError(
            f"{Path(models_dir) / catalogue / model}: seed(s) {missing} not trained "
            f"(trained: {list(available)})"
        )
    return {s: load_trained(available[s], device=device, kind=model) for s in chosen}


@dataclass(frozen=True)
class DensityTable:
    """Densities of a model at query points, over its seeds.

    Attributes:
        lat: Latitudes, degrees, shape (N,).
        lon: Longitudes, degrees in [-180, 180), shape (N,).
        seeds: The seeds evaluated, length K.
        seed_logp: Log-density of each seed's model, nats per steradian, shape (K, N).
        radius_km: Earth radius used for the per-km² density.
    """

    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    seeds: tuple[int, ...]
    seed_logp: NDArray[np.float64]
    radius_km: float = EARTH_RADIUS_KM

    @property
    def log_density(self) -> NDArray[np.float64]:
        """Mean log-density over seeds, nats per steradian, shape (N,)."""
        return np.asarray(self.seed_logp.mean(axis=0), dtype=np.float64)

    @property
    def log_density_sd(self) -> NDArray[np.float64]:
        """Standard deviation over seeds (ddof = 1; zeros for one seed), shape (N,)."""
        if self.seed_logp.shape[0] < 2:
            return np.zeros(self.seed_logp.shape[1])
        return np.asarray(self.seed_logp.std(axis=0, ddof=1), dtype=np.float64)

    @property
    def density_per_km2(self) -> NDArray[np.float64]:
        """exp(mean log-density) / R²: probability per km² of the Earth's surface, shape (N,)."""
        return np.asarray(np.exp(self.log_density) / self.radius_km**2, dtype=np.float64)

    def columns(self) -> dict[str, NDArray[np.float64]]:
        """The table's columns, in output order (per-seed log-densities last)."""
        cols = {
            "lat": self.lat,
            "lon": self.lon,
            "log_density": self.log_density,
            "log_density_sd": self.log_density_sd,
            "density_per_km2": self.density_per_km2,
        }
        for k, seed in enumerate(self.seeds):
            cols[f"log_density_seed{seed}"] = self.seed_logp[k]
        return cols


def query_density(
    models: dict[int, TrainedModel],
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    rtol: float = 1e-5,
    atol: float = 1e-5,
    batch_size: int = 4096,
) -> DensityTable:
    """Evaluate each seed's model at the points (exact-divergence PF-ODE, as the test NLL).

    Args:
        models: ``{seed: TrainedModel}`` (:func:`load_seed_models`).
        lat: Latitudes, degrees, shape (N,).
        lon: Longitudes, degrees, shape (N,).
        rtol: Relative tolerance of the ODE solver.
        atol: Absolute tolerance.
        batch_size: Points per ODE solve.

    Returns:
        The :class:`DensityTable`.
    """
    if not models:
        raise ValueError("no models to evaluate")
    xyz = latlon_to_xyz(np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64))
    rows = [
        log_density(m, xyz, rtol=rtol, atol=atol, batch_size=batch_size)[0] for m in models.values()
    ]
    return DensityTable(
        lat=np.asarray(lat, dtype=np.float64),
        lon=np.asarray(lon, dtype=np.float64),
        seeds=tuple(models),
        seed_logp=np.stack(rows).astype(np.float64),
    )
