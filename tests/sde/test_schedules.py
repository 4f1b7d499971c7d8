"""β schedules: closed-form heat time against numerical integration, inverse, config."""

from __future__ import annotations

import pytest
import torch
from scipy.integrate import quad

from pipeline.sde.schedules import ConstantBeta, LinearBeta, make_schedule
from tests.errors import raises_naming


@pytest.mark.parametrize(
    "sched", [LinearBeta(0.001, 4.0), LinearBeta(0.1, 20.0, T=2.0), ConstantBeta(1.7, T=3.0)]
)
def test_heat_time_matches_quadrature(sched) -> None:
    for t in [0.0, 0.1, 0.5, sched.T]:
        expected, _ = quad(lambda u: sched.beta(u), 0.0, t)
        assert sched.heat_time(t) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    tt = torch.linspace(0, sched.T, 7, dtype=torch.float64)
    out = sched.heat_time(tt)
    assert out.shape == (7,) and out.dtype == torch.float64
    torch.testing.assert_close(sched.time_from_heat_time(out), tt, rtol=1e-12, atol=1e-14)


def test_reference_schedule_heat_time() -> None:
    assert LinearBeta(0.001, 4.0).heat_time(1.0) == pytest.approx(2.0005, rel=1e-14)


def test_make_schedule() -> None:
    s = make_schedule({"kind": "linear", "beta_0": 0.001, "beta_1": 4.0})
    assert isinstance(s, LinearBeta) and s.T == 1.0
    c = make_schedule({"kind": "constant", "beta": 2, "T": 0.5})
    assert isinstance(c, ConstantBeta) and c.heat_time(0.5) == 1.0
    with raises_naming(ValueError, "kind", "'cosine'"):
        make_schedule({"kind": "cosine"})
    with raises_naming(ValueError, "['beta']", "'linear'"):
        make_schedule({"kind": "linear", "beta_0": 0.1, "beta_1": 1.0, "beta": 3})
    with raises_naming(ValueError, "'linear'", "'beta_1'"):
        make_schedule({"kind": "linear", "beta_0": 0.1})
    with raises_naming(ValueError, "LinearBeta", "beta_0"):
        LinearBeta(0.0, 1.0)
