r"""The forward transition :math:`X_s \mid X_0` the RSGM losses use: its sampler and its score.

DSM needs two things of the transition at heat time s: draws of :math:`X_s` given
:math:`X_0` (:func:`make_noise_sampler`) and, as the regression target, the score
:math:`\nabla_x \log p_s(x \mid x_0)` (:func:`make_score_target`). Both are exact for
Brownian motion on S² and SO(3) (the heat kernel); any process can be sampled by its
geodesic random walk, and any manifold has Varadhan's small-time target
:math:`\log_{x}(x_0)/s`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from pipeline.geometry.manifold import Manifold
from pipeline.geometry.sphere import Sphere
from pipeline.sde.brownian import BrownianMotion
from pipeline.sde.exact_sampler import HeatKernelSampler
from pipeline.sde.heat_kernel import heat_kernel_score
from pipeline.sde.heat_kernel_table import HeatKernelScoreTable
from pipeline.sde.process import ForwardProcess

Target = Literal["exact", "tabulated", "varadhan"]
NoiseSampler = Callable[[Tensor, Tensor, torch.Generator], Tensor]
"""``(x0 (B, D), s (B,), generator) -> x_s (B, D)``: a forward-process draw at heat time s."""
ScoreTarget = Callable[[Tensor, Tensor, Tensor], Tensor]
"""``(x_s (B, D), x0 (B, D), s (B,)) -> (B, D)``: the DSM regression target, tangent at x_s."""


def is_s2(manifold: Manifold) -> bool:
    """Whether the manifold is the 2-sphere."""
    return isinstance(manifold, Sphere) and int(manifold.dim) == 2


def has_heat_kernel(manifold: Manifold) -> bool:
    """Whether the heat kernel's score and an exact sampler are implemented (S², SO(3))."""
    return is_s2(manifold) or hasattr(manifold, "exact_heat_kernel")


def exact_score_fn(manifold: Manifold | None) -> ScoreTarget:
    """The heat kernel's exact score on S² (also for ``None``) or SO(3).

    Raises:
        ValueError: On another manifold.
    """
    if hasattr(manifold, "exact_heat_kernel"):  # SO(3)
        return manifold.exact_heat_kernel()[0]  # type: ignore[union-attr,no-any-return]
    if manifold is None or is_s2(manifold):
        return heat_kernel_score
    raise ValueError(
        f"the exact heat-kernel target is implemented on S² and SO(3), not {manifold!r}"
    )


def is_bm_exact(process: ForwardProcess) -> bool:
    """Whether the process is Brownian motion with an exact heat kernel (S², SO(3))."""
    return isinstance(process, BrownianMotion) and has_heat_kernel(process.manifold)


def _heat_time_range(process: ForwardProcess, eps: float) -> tuple[float, float]:
    """Heat times s(eps) and s(T) of the process's schedule."""
    schedule = process.schedule
    s_lo = float(schedule.heat_time(torch.tensor(eps, dtype=torch.float64)))
    s_hi = float(schedule.heat_time(torch.tensor(schedule.T, dtype=torch.float64)))
    return s_lo, s_hi


def make_noise_sampler(
    process: ForwardProcess,
    kind: str = "exact",
    *,
    grw_steps: int = 20,
    eps: float = 1e-3,
) -> NoiseSampler:
    """Sampler of :math:`X_s | X_0` (heat time s) for the losses.

    Args:
        process: The forward process.
        kind: ``"exact"`` (Brownian motion on S²: :class:`HeatKernelSampler`, a tabulated
            inverse CDF, built lazily per device and dtype, float64 tables for float64 data;
            on SO(3): :func:`pipeline.so3.heat_kernel.so3_exact_bm_sample`, by rejection) or
            ``"grw"`` (the process's geodesic random walk with ``grw_steps`` steps, any process).
        grw_steps: Steps of the random walk.
        eps: Smallest diffusion time that will be asked for.

    Returns:
        Callable ``(x0 (B, D), s (B,), generator) -> (B, D)``.

    Raises:
        ValueError: On an unknown kind, or ``"exact"`` for another process or manifold.
    """
    if kind == "exact":
        if not is_bm_exact(process):
            raise ValueError(
                f"exact forward sampling is implemented for Brownian motion on S² and SO(3) "
                f"only, got {process!r}; use sampler: grw"
            )
        if hasattr(process.manifold, "exact_heat_kernel"):  # SO(3)
            return process.manifold.exact_heat_kernel()[1]  # type: ignore[no-any-return]
        s_lo, s_hi = _heat_time_range(process, eps)
        tables: dict[tuple[torch.device, torch.dtype], HeatKernelSampler] = {}

        def exact(x0: Tensor, s: Tensor, g: torch.Generator) -> Tensor:
            key = (x0.device, torch.float64 if x0.dtype == torch.float64 else torch.float32)
            if key not in tables:
                tables[key] = HeatKernelSampler(
                    s_min=min(s_lo, 1e-4), s_max=max(s_hi, 20.0), device=key[0], dtype=key[1]
                )
            return tables[key].sample(x0, s, generator=g)

        return exact
    if kind == "grw":
        return lambda x0, s, g: process.heat_time_sample(x0, s, grw_steps, g)
    raise ValueError(f"noise sampler must be 'exact' or 'grw', got {kind!r}")


def make_score_target(process: ForwardProcess, target: Target, *, eps: float = 1e-3) -> ScoreTarget:
    r"""The DSM target :math:`\nabla_x \log p_s(x \mid x_0)` of Brownian motion.

    Args:
        process: Brownian motion on its manifold.
        target: ``"exact"`` (the heat kernel's score, S² and SO(3)), ``"tabulated"`` (S²:
            :class:`pipeline.sde.heat_kernel_table.HeatKernelScoreTable` over the heat times
            of [eps, T], built lazily per device; relative error ≤ 1e-3, about 9× faster) or
            ``"varadhan"`` (:math:`\log_x(x_0)/s`, any manifold).
        eps: Smallest diffusion time that will be asked for.

    Returns:
        Callable ``(x_s (B, D), x0 (B, D), s (B,)) -> (B, D)``.

    Raises:
        ValueError: On an unknown target, or one the manifold does not have.
    """
    manifold = process.manifold
    if target == "exact":
        if not has_heat_kernel(manifold):
            raise ValueError("the exact heat-kernel target is implemented on S² and SO(3) only")
        return exact_score_fn(manifold)
    if target == "tabulated":
        if not is_s2(manifold):
            raise ValueError(
                f"the tabulated heat-kernel target is implemented on S² only, not {manifold!r}"
            )
        s_lo, s_hi = _heat_time_range(process, eps)
        tables: dict[torch.device, HeatKernelScoreTable] = {}

        def tabulated(x: Tensor, x0: Tensor, s: Tensor) -> Tensor:
            if x.device not in tables:
                # 0.1% margins: s(eps) and s(T) themselves are inside, whatever the rounding.
                tables[x.device] = HeatKernelScoreTable(s_lo * 0.999, s_hi * 1.001, device=x.device)
            return tables[x.device](x, x0, s)

        return tabulated
    if target == "varadhan":
        return lambda x, x0, s: manifold.logmap(x, x0) / s[:, None]
    raise ValueError(f"DSM target must be 'exact', 'tabulated' or 'varadhan', got {target!r}")
