r"""The IPF folder: one checkpoint folder per field, the manifest, and what is finished.

Layout and rules are :mod:`pipeline.variants.dsb.ipf`'s (which fits into it): ``ipf.json`` (the RSGM
config, the IPF config and the training data's SHA-256), ``iter01/backward`` (the
``fit_network`` folder) and ``iterNN/{forward,backward}`` for n >= 2. This module reads and
checks it: whether a field's checkpoint is finished for a config, a field loaded frozen with
its EMA weights (safetensors), the manifest that deletes the folders of another config, and
:func:`load_bridge`, the finished iterations as a :class:`~pipeline.variants.dsb.model.BridgeModel`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from pipeline.atomic import atomic_write
from pipeline.checkpoints import (
    EMA_FILE,
    CheckpointError,
    load_checkpoint_weights,
    read_checkpoint_meta,
)
from pipeline.config.train import TrainConfig
from pipeline.devices import resolve_device
from pipeline.geometry.manifold import Manifold
from pipeline.losses import Weighting
from pipeline.variants.base import build_manifold, build_schedule, same_config
from pipeline.variants.dsb.config import RSGM_PART, IPFConfig
from pipeline.variants.dsb.model import BridgeModel

__all__ = [
    "MANIFEST_FILE",
    "Direction",
    "FieldFit",
    "IPFRun",
    "data_sha256",
    "field_dir",
    "field_finished",
    "field_seed",
    "load_bridge",
    "load_field",
    "loaded_fit",
    "make_manifest",
    "write_manifest",
]

Direction = Literal["forward", "backward"]
MANIFEST_FILE = "ipf.json"


@dataclass(frozen=True)
class FieldFit:
    """What one :func:`run_ipf` call did for one field.

    Attributes:
        iteration: The IPF iteration (from 1).
        direction: ``"forward"`` (f_n) or ``"backward"`` (b_n; iteration 1: the rsgm model).
        folder: The field's checkpoint folder.
        steps: The trainer steps its finished checkpoint holds.
        resumed_from: Steps it held when this call reached it (``steps`` when it was loaded
            finished, 0 for a fresh fit).
        seconds: Seconds this call spent fitting it (walk simulation and trainer; 0 when
            loaded).
        loss_history: ``(step, mean loss over the log window)`` pairs, in the field's steps.
    """

    iteration: int
    direction: Direction
    folder: Path
    steps: int
    resumed_from: int
    seconds: float
    loss_history: list[tuple[int, float]]


def loaded_fit(iteration: int, direction: Direction, folder: Path) -> FieldFit:
    """The record of a field found finished: its checkpoint's steps and loss history."""
    meta = read_checkpoint_meta(folder) or {"step": 0, "loss_history": []}
    steps = int(meta["step"])
    history = [(int(a), float(b)) for a, b in meta.get("loss_history", [])]
    return FieldFit(iteration, direction, folder, steps, steps, 0.0, history)


def field_dir(out_dir: Path, iteration: int, direction: Direction) -> Path:
    """The checkpoint folder of one field: ``out_dir/iterNN/{forward,backward}``."""
    return Path(out_dir) / f"iter{int(iteration):02d}" / direction


def data_sha256(x: Tensor) -> str:
    arr = x.detach().to("cpu").contiguous()
    digest = hashlib.sha256(f"{tuple(arr.shape)} {arr.dtype}\n".encode())
    digest.update(arr.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def field_seed(seed: int, iteration: int, direction: Direction) -> int:
    """Seed of the init, trainer and walks of one field of iteration >= 2."""
    return int(seed) + 1000 * (2 * (iteration - 1) + (direction == "backward"))


def field_finished(folder: Path, kind: str, config: dict[str, Any], cfg: TrainConfig) -> bool:
    """Whether ``folder`` holds a finished checkpoint of this kind, config and trainer config."""
    if not same_config(folder, kind, config) or not (folder / EMA_FILE).is_file():
        return False
    try:
        meta = read_checkpoint_meta(folder)
    except CheckpointError:
        return False
    if meta is None or meta.get("config") != json.loads(json.dumps(asdict(cfg))):
        return False
    if int(meta["step"]) >= cfg.steps:
        return True
    spent = float(meta.get("elapsed_seconds", 0.0))
    return cfg.max_seconds is not None and spent >= cfg.max_seconds


def load_field(
    config: dict[str, Any], manifold: Manifold, folder: Path, device: torch.device
) -> nn.Module:
    """The rsgm-type network of a folder with its EMA weights (safetensors), frozen."""
    with torch.random.fork_rng(devices=[]):  # the throwaway init leaves torch's RNG alone
        net = RSGM_PART.network(config, manifold)
    net.load_state_dict(load_checkpoint_weights(folder, "ema"))
    net.to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@dataclass(frozen=True)
class IPFRun:
    """What every half-step of one :func:`run_ipf` call shares."""

    config: dict[str, Any]
    ipf: IPFConfig
    data_sha256: str
    out_dir: Path
    manifold: Manifold
    device: torch.device
    eps: float
    weighting: Weighting
    progress: bool

    def card(self, iteration: int) -> dict[str, Any]:
        ipf = {k: v for k, v in self.ipf.to_dict().items() if k != "n_iterations"}
        return {
            "rsgm_config": self.config,
            "ipf": ipf,
            "data_sha256": self.data_sha256,
            "iteration": iteration,
        }

    def train_config(self, iteration: int, direction: Direction) -> TrainConfig:
        seed = field_seed(self.ipf.seed, iteration, direction)
        return TrainConfig.from_dict(
            {**self.config.get("optim", {}), **self.ipf.train, "seed": seed}
        )


def make_manifest(config: dict[str, Any], ipf: IPFConfig, sha: str) -> dict[str, Any]:
    return {"rsgm_config": config, "ipf": ipf.to_dict(), "data_sha256": sha}


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    """Delete the iteration folders of another RSGM config, seed or training set; record ours."""
    path = out_dir / MANIFEST_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            old = {}
        same = (
            isinstance(old, dict)
            and old.get("rsgm_config") == json.loads(json.dumps(manifest["rsgm_config"]))
            and (old.get("ipf") or {}).get("seed") == manifest["ipf"]["seed"]
            and old.get("data_sha256") == manifest["data_sha256"]
        )
        if not same:
            for folder in sorted(out_dir.glob("iter[0-9][0-9]")):
                shutil.rmtree(folder)
    text = json.dumps(manifest, indent=2) + "\n"
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def load_bridge(out_dir: Path, device: str | torch.device | None = None) -> BridgeModel:
    """Load the finished iterations of a :func:`run_ipf` folder (safetensors, no pickle).

    Iterations are read in order while both their fields hold a finished checkpoint of the
    folder's recorded configs (``ipf.json``).

    Args:
        out_dir: The bridge's folder.
        device: Device (None/``"auto"``: CUDA when available).

    Returns:
        The :class:`~pipeline.variants.dsb.model.BridgeModel` (at least iteration 1).

    Raises:
        FileNotFoundError: If there is no manifest or no finished iteration 1.
    """
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no IPF manifest (run run_ipf first)")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    config = dict(manifest["rsgm_config"])
    ipf = IPFConfig.from_dict(manifest["ipf"])
    manifold = build_manifold(config.get("manifold"))
    schedule = build_schedule(config["schedule"])
    dev = resolve_device("auto" if device is None else str(device))
    run = IPFRun(
        config=config,
        ipf=ipf,
        data_sha256=str(manifest["data_sha256"]),
        out_dir=out_dir,
        manifold=manifold,
        device=dev,
        eps=float(dict(config.get("loss", {})).get("eps", 1e-3)),
        weighting=dict(config.get("loss", {})).get("weighting", "variance"),
        progress=False,
    )
    first = field_dir(out_dir, 1, "backward")
    rsgm_cfg = TrainConfig.from_dict({**config.get("optim", {}), "seed": ipf.seed})
    if not field_finished(first, "rsgm", config, rsgm_cfg):
        raise FileNotFoundError(f"{first}: no finished iteration-1 checkpoint")
    forwards: list[nn.Module | None] = [None]
    backwards: list[nn.Module] = [load_field(config, manifold, first, dev)]
    n = 2
    while all(
        field_finished(field_dir(out_dir, n, d), f"bridge_{d}", run.card(n), run.train_config(n, d))
        for d in ("forward", "backward")
    ):
        forwards.append(load_field(config, manifold, field_dir(out_dir, n, "forward"), dev))
        backwards.append(load_field(config, manifold, field_dir(out_dir, n, "backward"), dev))
        n += 1
    return BridgeModel(manifold, schedule, forwards, backwards, run.eps, dev)
