"""Diffusion Schrödinger bridge on a manifold (IPF on the RSGM engine): losses, model, fitting.

:mod:`pipeline.bridge.losses` (implicit divergence-form loss, mean-matching baseline),
:mod:`pipeline.bridge.model` (the fields of every iteration, walks, sampler, PF-ODE
likelihood), :mod:`pipeline.bridge.ipf` (:func:`run_ipf`, resumable, and :func:`load_bridge`).
"""

from pipeline.bridge.ipf import FieldFit, IPFConfig, field_dir, load_bridge, run_ipf
from pipeline.bridge.losses import (
    implicit_loss,
    make_implicit_loss,
    make_mean_matching_loss,
    mean_matching_loss,
    mean_matching_target,
    transport,
)
from pipeline.bridge.model import BridgeModel, SimulatedPaths, simulate

__all__ = [
    "BridgeModel",
    "FieldFit",
    "IPFConfig",
    "SimulatedPaths",
    "field_dir",
    "implicit_loss",
    "load_bridge",
    "make_implicit_loss",
    "make_mean_matching_loss",
    "mean_matching_loss",
    "mean_matching_target",
    "run_ipf",
    "simulate",
    "transport",
]
