r"""K seeds of one network evaluated as one vectorised network (``torch.func.vmap``).

A small MLP on a GPU is launch-bound: a step of one seed costs about as many kernel launches
as a step of five. :class:`SeedEnsemble` stacks K same-architecture models' parameters and
buffers along a leading seed axis (:func:`torch.func.stack_module_state`) and evaluates all K
with :func:`torch.func.vmap` over :func:`torch.func.functional_call` of the model's own
``forward``, so each matrix product of the network becomes one batched product and the code
that defines the model (time embedding, tangent projection, output scaling) is not repeated.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

__all__ = ["EnsembleField", "SeedEnsemble"]

EnsembleField = Callable[[Tensor, Tensor], Tensor]
"""``field(x (K, B, D), t (K, B)) -> (K, B, D)``: K score fields, seed k's on ``x[k]``."""


def _layout(model: nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype, str]]:
    """(name, shape, dtype, device type) of each state-dict entry, in state-dict order."""
    return [(k, tuple(v.shape), v.dtype, v.device.type) for k, v in model.state_dict().items()]


class SeedEnsemble:
    r"""K models of one architecture, parameters stacked along a leading seed axis.

    Seed k's slice of every stacked tensor starts as an exact copy of ``models[k]``'s
    parameter or buffer (so K models built with their own seeds, e.g.
    ``zoo.build_network(kind, cfg, manifold, seed=k)``, give an ensemble whose seed k starts
    from the weights the single-seed trainer's seed k starts from). The stacked parameters are
    new autograd leaves (shape (K, ...)), independent of the models': an optimiser over them
    trains all K seeds; :meth:`seed_state_dict` and :meth:`seed_module` give one seed back in
    the layout of ``models[k].state_dict()``.

    Args:
        models: K >= 1 modules of one class with one state-dict layout (names, shapes, dtypes,
            device), each mapping ``(x (B, D), t (B,))`` to ``(B, D)`` with the points of a
            batch treated independently (the score models of :mod:`pipeline.models`).

    Raises:
        ValueError: If ``models`` is empty, or a model's class or state-dict layout differs
            from the first one's.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        models = list(models)
        if len(models) < 1:
            raise ValueError("a seed ensemble needs K >= 1 models, got 0")
        first = models[0]
        layout = _layout(first)
        for k, model in enumerate(models[1:], start=1):
            if type(model) is not type(first):
                raise ValueError(
                    f"model {k} is a {type(model).__name__}, model 0 a {type(first).__name__}: "
                    "an ensemble stacks one architecture"
                )
            other = _layout(model)
            if other != layout:
                diff = sorted(set(other) ^ set(layout))[:4]
                raise ValueError(
                    f"model {k} has another state-dict layout than model 0 (name, shape, dtype, "
                    f"device differ at {diff}): an ensemble stacks one architecture"
                )
            if model.training != first.training:
                raise ValueError(f"model {k} and model 0 are in different train/eval modes")
        self.params: dict[str, Tensor]
        self.buffers: dict[str, Tensor]
        self.params, self.buffers = stack_module_state(models)
        self._names = [name for name, *_ in layout]
        # The architecture without weights: functional_call swaps the stacked slices in.
        self._base = copy.deepcopy(first).to("meta")

    @property
    def n_seeds(self) -> int:
        """The number K of seeds."""
        return int(next(iter(self._stacked().values())).shape[0])

    @property
    def device(self) -> torch.device:
        """Device of the stacked tensors."""
        return next(iter(self._stacked().values())).device

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the first stacked parameter (the models' dtype)."""
        return next(iter(self.params.values())).dtype

    def _stacked(self) -> dict[str, Tensor]:
        return {**self.params, **self.buffers}

    def parameters(self) -> list[Tensor]:
        """The stacked parameters, in the models' ``named_parameters`` order.

        Returns:
            List of leaf tensors, each shape (K, ...).
        """
        return list(self.params.values())

    def requires_grad_(self, requires_grad: bool = True) -> SeedEnsemble:
        """Set ``requires_grad`` of the stacked parameters (off for evaluation).

        Returns:
            This ensemble.
        """
        for p in self.params.values():
            p.requires_grad_(requires_grad)
        return self

    def _one(
        self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor, t: Tensor
    ) -> Tensor:
        out: Tensor = functional_call(self._base, (params, buffers), (x, t))
        return out

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        """Evaluate the K models, seed k on its own batch.

        Args:
            x: Tensor, shape (K, B, D), seed k's points in ``x[k]``.
            t: Tensor, shape (K, B), their times.

        Returns:
            Tensor, shape (K, B, D): ``out[k] = models[k](x[k], t[k])`` with seed k's current
            stacked weights.

        Raises:
            ValueError: On shapes other than (K, B, D) and (K, B).
        """
        k = self.n_seeds
        if x.dim() != 3 or x.shape[0] != k:
            raise ValueError(f"x must have shape (K={k}, B, D), got {tuple(x.shape)}")
        if tuple(t.shape) != tuple(x.shape[:2]):
            raise ValueError(
                f"t must have shape (K, B) = {tuple(x.shape[:2])}, got {tuple(t.shape)}"
            )
        out: Tensor = vmap(self._one)(self.params, self.buffers, x, t)
        return out

    def seed_state_dict(self, k: int) -> dict[str, Tensor]:
        """Seed k's weights as its model's state dict (copies, detached).

        Args:
            k: Seed index in [0, K).

        Returns:
            Mapping with the keys and order of ``models[k].state_dict()``.

        Raises:
            IndexError: If k is out of range.
        """
        if not 0 <= k < self.n_seeds:
            raise IndexError(f"seed index {k} out of range for K={self.n_seeds}")
        stacked = self._stacked()
        return {name: stacked[name][k].detach().clone() for name in self._names}

    def seed_module(self, k: int) -> nn.Module:
        """A standalone module holding seed k's current weights (on the ensemble's device).

        Args:
            k: Seed index in [0, K).

        Returns:
            A new module of the models' class.
        """
        module = copy.deepcopy(self._base).to_empty(device=self.device)
        module.load_state_dict(self.seed_state_dict(k))
        with torch.no_grad():  # non-persistent buffers are not in the state dict
            for name, stacked in self.buffers.items():
                module.get_buffer(name).copy_(stacked[k])
        return module

    @torch.no_grad()
    def load_seed_state_dicts(self, states: Sequence[Mapping[str, Tensor]]) -> None:
        """Overwrite every seed's weights in place (the stacked tensors keep their identity).

        Args:
            states: K state dicts with the models' keys, seed k's in ``states[k]``.

        Raises:
            ValueError: On a count other than K or other keys.
        """
        if len(states) != self.n_seeds:
            raise ValueError(f"need {self.n_seeds} state dicts (one per seed), got {len(states)}")
        for k, state in enumerate(states):
            if set(state) != set(self._names):
                missing = sorted(set(self._names) - set(state))
                extra = sorted(set(state) - set(self._names))
                raise ValueError(f"seed {k}'s state dict: missing {missing}, unexpected {extra}")
        for name, stacked in self._stacked().items():
            stacked.copy_(torch.stack([torch.as_tensor(s[name]) for s in states]))
