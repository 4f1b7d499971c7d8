"""The shared rejection loop: exact draws of a known law, errors, and rejected entries."""

import math

import torch
from scipy import stats
from torch import Tensor

from pipeline.numerics import rejection_sample
from tests.errors import raises_naming


def _beta22_round(s: Tensor, gen: torch.Generator | None) -> tuple[Tensor, Tensor]:
    # Beta(2, 2) on [0, 1] from a uniform proposal on [0, 1.25]: density 6x(1-x) <= 1.5.
    prop = 1.25 * torch.rand(s.shape, dtype=torch.float64, generator=gen)
    dens = (6 * prop * (1 - prop)).clamp_min(0.0)
    log_ratio = torch.log(dens / 1.5)
    return prop, torch.where(prop <= 1.0, log_ratio, -math.inf)


def test_draws_follow_the_target_law() -> None:
    gen = torch.Generator().manual_seed(0)
    x = rejection_sample(torch.ones(20_000, dtype=torch.float64), _beta22_round, gen)
    assert x.shape == (20_000,)
    assert float(x.max()) <= 1.0
    assert stats.kstest(x.numpy(), stats.beta(2, 2).cdf).pvalue > 1e-3


def test_same_generator_state_gives_same_draws() -> None:
    s = torch.ones(500, dtype=torch.float64)
    a = rejection_sample(s, _beta22_round, torch.Generator().manual_seed(3))
    b = rejection_sample(s, _beta22_round, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_never_accepting_raises() -> None:
    def never(s: torch.Tensor, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        return s, torch.full_like(s, -math.inf)

    with raises_naming(RuntimeError, "5 rounds"):
        rejection_sample(torch.ones(3, dtype=torch.float64), never, max_rounds=5)
