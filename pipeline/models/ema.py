"""Exponential moving average of model parameters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class EMA:
    r"""Exponential moving average :math:`\bar\theta \leftarrow d\,\bar\theta + (1-d)\,\theta`.

    Floating-point parameters are averaged; buffers are copied as they are. The shadow copy lives
    on the model's device and dtype.

    Args:
        model: The model whose parameters are tracked.
        decay: Decay d in [0, 1).

    Raises:
        ValueError: If decay is outside [0, 1).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.model = model
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow: dict[str, Tensor] = {
            k: v.detach().clone() for k, v in model.state_dict().items()
        }
        self._param_names = [n for n, p in model.named_parameters() if p.dtype.is_floating_point]

    @torch.no_grad()
    def update(self) -> None:
        """Move the shadow parameters one step towards the model's current parameters."""
        params = dict(self.model.named_parameters())
        shadow = [self.shadow[n] for n in self._param_names]
        current = [params[n].detach() for n in self._param_names]
        torch._foreach_lerp_(shadow, current, 1.0 - self.decay)
        for name, buf in self.model.named_buffers():
            self.shadow[name].copy_(buf)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Tensor]:
        """Return the EMA weights as a model state dict (shares storage with the shadow).

        Returns:
            Mapping from parameter/buffer name to tensor, loadable by ``model.load_state_dict``.
        """
        return dict(self.shadow)

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Overwrite the shadow weights.

        Args:
            state: Mapping with exactly the model's state-dict keys.

        Raises:
            KeyError: If keys differ from the model's.
        """
        if set(state) != set(self.shadow):
            missing = sorted(set(self.shadow) - set(state))
            extra = sorted(set(state) - set(self.shadow))
            raise KeyError(f"EMA state keys differ: missing={missing}, unexpected={extra}")
        for k, v in state.items():
            self.shadow[k].copy_(v)

    @torch.no_grad()
    def copy_to(self, model: nn.Module | None = None) -> None:
        """Load the EMA weights into ``model`` (default: the tracked model).

        Args:
            model: Target module with the same architecture.
        """
        (model if model is not None else self.model).load_state_dict(self.shadow)

    @contextmanager
    def average_parameters(self) -> Iterator[nn.Module]:
        """Temporarily swap the EMA weights into the tracked model.

        Yields:
            The tracked model holding the EMA weights; the raw weights are restored on exit.
        """
        backup = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.copy_to()
        try:
            yield self.model
        finally:
            self.model.load_state_dict(backup)
