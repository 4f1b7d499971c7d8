"""The tabulated S² heat-kernel score against the closed form (float64)."""

from __future__ import annotations

import math

import torch

from pipeline.geometry import Sphere
from pipeline.sde.exact_sampler import exact_bm_sample
from pipeline.sde.heat_kernel import heat_kernel_score
from pipeline.sde.heat_kernel_table import HeatKernelScoreTable
from tests.errors import raises_naming

SPHERE = Sphere(2)
S_MIN, S_MAX = 1e-5, 2.5
TABLE = HeatKernelScoreTable(S_MIN, S_MAX)


def _draws(n: int, s_lo: float, s_hi: float, seed: int) -> tuple[torch.Tensor, ...]:
    """x0 uniform, s log-uniform on [s_lo, s_hi], x_s exact: the DSM training draws."""
    gen = torch.Generator().manual_seed(seed)
    x0 = SPHERE.random_uniform(n, dtype=torch.float64, generator=gen)
    u = torch.rand(n, generator=gen, dtype=torch.float64)
    s = s_lo * (s_hi / s_lo) ** u
    return exact_bm_sample(x0, s, generator=gen), x0, s


def test_matches_the_closed_form_on_training_draws() -> None:
    x, x0, s = _draws(20_000, S_MIN, S_MAX, seed=0)
    exact = heat_kernel_score(x, x0, s)
    rel = (TABLE(x, x0, s) - exact).norm(dim=-1) / exact.norm(dim=-1).clamp_min(1e-12)
    assert float(rel.median()) < 1e-6
    assert float(rel.max()) < 2e-3


def test_is_tangent_and_keeps_the_dtype() -> None:
    x, x0, s = _draws(1000, 1e-3, 1.0, seed=1)
    out = TABLE(x, x0, s)
    assert out.shape == (1000, 3) and out.dtype == torch.float64
    assert float((out * x).sum(-1).abs().max()) < 1e-12
    out32 = TABLE(x.float(), x0.float(), s.float())
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32, out.float(), rtol=1e-3, atol=1e-3)


def test_varadhan_limit_and_antipode() -> None:
    # h -> 1 as s -> 0 near x0 (the score is log_x(x0)/s); h -> 0 at the antipode.
    theta = torch.tensor([1e-3, 0.01, 0.02], dtype=torch.float64)
    h = TABLE.h(theta, torch.full_like(theta, S_MIN))
    torch.testing.assert_close(h, torch.ones_like(h), rtol=0, atol=1e-3)
    h_pi = TABLE.h(torch.tensor([math.pi]), torch.tensor([1.0]))
    assert abs(float(h_pi)) < 1e-6


def test_rows_off_the_table_use_the_closed_form() -> None:
    x, x0, _ = _draws(6, 1e-3, 1.0, seed=2)
    s = torch.tensor([1e-7, 1e-3, 5.0, 0.5, 1e-6, 30.0], dtype=torch.float64)
    out, exact = TABLE(x, x0, s), heat_kernel_score(x, x0, s)
    outside = (s < S_MIN) | (s > S_MAX)
    torch.testing.assert_close(out[outside], exact[outside], rtol=1e-14, atol=0)
    torch.testing.assert_close(out[~outside], exact[~outside], rtol=2e-3, atol=1e-9)


def test_errors() -> None:
    with raises_naming(ValueError, "s_min=1.0", "s_max=0.5"):
        HeatKernelScoreTable(1.0, 0.5)
    with raises_naming(ValueError, "n_theta=1"):
        HeatKernelScoreTable(1e-3, 1.0, n_theta=1)
    x, x0, s = _draws(4, 1e-3, 1.0, seed=3)
    with raises_naming(ValueError, "x0", "(3, 3)"):
        TABLE(x, x0[:3], s)
    with raises_naming(ValueError, "heat time s"):
        TABLE(x, x0, torch.zeros(4, dtype=torch.float64))


def test_off_the_cpu_a_call_never_reads_the_device() -> None:
    # Meta tensors hold no data: any host read (bool(), item(), float()) raises, so this
    # proves the training path's target has no per-step host synchronisation on a GPU.
    table = HeatKernelScoreTable(S_MIN, S_MAX, n_log_s=9, n_theta=17, device="meta")
    x = torch.empty(8, 3, device="meta")
    out = table(x, torch.empty(8, 3, device="meta"), torch.empty(8, device="meta"))
    assert out.shape == (8, 3) and out.device.type == "meta"
