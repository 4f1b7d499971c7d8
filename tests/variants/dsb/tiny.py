"""The tiny rsgm config and data the bridge tests fit (2-layer net, 20 steps, 200 points)."""

from __future__ import annotations

from typing import Any

import torch

from pipeline.variants import build_manifold


def tiny_rsgm_config(beta_1: float) -> dict[str, Any]:
    """A 20-step rsgm config on S²; ``beta_1`` sets the horizon s(T) = (0.001 + beta_1) / 2."""
    return {
        "manifold": {"name": "sphere", "dim": 2},
        "schedule": {"kind": "linear", "beta_0": 0.001, "beta_1": beta_1, "T": 1.0},
        "score_scaling": "inv_std",
        "network": {"hidden": 16, "depth": 2, "time_embedding": "log"},
        "loss": {"kind": "dsm", "target": "exact", "t_sampler": "log_uniform", "eps": 0.001},
        "optim": {
            "steps": 20,
            "batch_size": 32,
            "warmup_steps": 5,
            "checkpoint_every": 10,
            "log_every": 5,
            "device": "cpu",
        },
    }


def tiny_data(n: int = 200) -> torch.Tensor:
    """Tensor (n, 3): a wrapped normal of scale 0.3 around one point (seeded)."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.0, 0.6, 0.8]])
    manifold = build_manifold({"name": "sphere", "dim": 2})
    return manifold.expmap(
        mu.expand(n, 3), 0.3 * manifold.random_normal_tangent(mu.expand(n, 3), gen)
    )
