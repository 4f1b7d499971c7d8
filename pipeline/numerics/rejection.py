"""The rejection loop shared by the exact samplers of Brownian angles (S², SO(3)).

A sampler supplies one proposal round (its proposal law and the log acceptance ratio
log[target / (bound · proposal)] ≤ 0); the loop redraws only the rejected entries, so each
entry gets its own heat time and the result is exact up to float64 round-off.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["ProposalRound", "rejection_sample"]

ProposalRound = Callable[[Tensor, "torch.Generator | None"], tuple[Tensor, Tensor]]
"""``propose(s (K,), generator) -> (proposal (K,), log_ratio (K,))``; log_ratio = −inf rejects."""


def rejection_sample(
    s: Tensor,
    propose: ProposalRound,
    generator: torch.Generator | None = None,
    max_rounds: int = 200,
) -> Tensor:
    """One accepted draw per entry of ``s`` by repeated proposal rounds.

    Args:
        s: Tensor, shape (N,), float64 parameters (heat times), one draw each.
        propose: One round for the still-rejected entries (see :data:`ProposalRound`); it
            must draw its uniforms from ``generator`` and return the log acceptance ratio.
        generator: Random generator on s's device (the acceptance uniforms come from it too,
            after the proposal's draws of each round).
        max_rounds: Rounds before giving up.

    Returns:
        Tensor, shape (N,), float64 draws.

    Raises:
        RuntimeError: If some entry is still rejected after ``max_rounds`` rounds.
    """
    out = torch.empty_like(s)
    todo = torch.arange(s.numel(), device=s.device)
    for _ in range(max_rounds):
        if todo.numel() == 0:
            return out
        st = s[todo]
        prop, log_ratio = propose(st, generator)
        u = torch.rand(st.shape, dtype=torch.float64, device=s.device, generator=generator)
        accept = (torch.log(u) <= log_ratio) & (log_ratio > -math.inf)
        out[todo[accept]] = prop[accept]
        todo = todo[~accept]
    raise RuntimeError(f"rejection sampler did not finish in {max_rounds} rounds")
