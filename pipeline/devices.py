"""Where tensors live: the trainer's device, and the checks that are free only on a CPU.

A value check such as ``bool((s <= 0).any())`` reads a tensor back to the host. On a CPU that
costs nothing; on a GPU it is a synchronisation, and inside a training step one per step. The
engine's per-step checks (heat times, noise levels, table ranges, the loss window) therefore
run where :func:`checks_are_free`; on other devices the callers guarantee the ranges by
construction (see :mod:`pipeline.transition`), and ``tests/test_losses.py`` runs every default
loss on PyTorch's ``meta`` device, where any read-back raises.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["checks_are_free", "require_positive", "resolve_device"]


def resolve_device(device: str) -> torch.device:
    """Map ``"auto"`` to CUDA when available, else CPU.

    Args:
        device: ``"auto"`` or a torch device string.

    Returns:
        The device.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def checks_are_free(device: torch.device) -> bool:
    """Whether reading a tensor on ``device`` back to the host costs no synchronisation (a CPU).

    Args:
        device: The tensor's device.

    Returns:
        True on a CPU.
    """
    return device.type == "cpu"


def require_positive(values: Tensor, message: str) -> None:
    """Raise ``ValueError(message)`` if any value is <= 0, where the check is free (a CPU).

    Args:
        values: Tensor, any shape.
        message: The error's text (say which values and why they must be positive).

    Raises:
        ValueError: On a CPU, if any value is <= 0 (NaN passes, as ``NaN <= 0`` is false).
    """
    if checks_are_free(values.device) and bool((values <= 0).any()):
        raise ValueError(message)
