r"""Prior mismatch KL(p_T ‖ reference) of a forward process without a closed-form transition.

The generator starts from the reference law instead of :math:`p_T`, which costs
:math:`\mathrm{KL}(p_T\,\|\,\pi)` nats of likelihood. For Brownian motion on S² the heat kernel
gives an exact bound (:func:`pipeline.sde.heat_kernel.prior_kl_uniform`); for Langevin
dynamics it is estimated here by Monte Carlo: draw :math:`X_T` from the data by the process's
random walk, map each draw to :math:`u = F_\pi(d(X_T, \mu))` (the reference's distance CDF, so
u is uniform under π), and take the KL of the histogram of u against the uniform one. By the
data-processing inequality the KL of a coarse-graining is a lower bound on the whole KL; it is
exact when :math:`p_T` is radial about μ (e.g. from δ_μ). The Miller–Madow term removes the
histogram's O(K/N) upward bias.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pipeline.geometry.radial import RadialLaw
from pipeline.sde.process import ForwardProcess

__all__ = ["radial_prior_kl"]


def radial_prior_kl(
    process: ForwardProcess,
    x0: Tensor,
    reference: RadialLaw,
    *,
    n_steps: int = 100,
    bins: int = 50,
    generator: torch.Generator | None = None,
) -> float:
    """Radial lower bound on KL(p_T ‖ reference) in nats, from the data points x0.

    Args:
        process: The forward process (run for its whole heat time s(T)).
        x0: Tensor, shape (N, D), data points (repeat rows for more draws per point).
        reference: The process's reference law as a radial law about its centre.
        n_steps: Random-walk steps.
        bins: Histogram bins of the reference's distance CDF.
        generator: Random generator on x0's device.

    Returns:
        The estimate (≥ 0 up to Monte Carlo error).
    """
    s_end = process.schedule.heat_time(torch.tensor(process.T, dtype=torch.float64))
    x_t = process.heat_time_sample(x0, float(s_end), n_steps, generator)
    r = process.manifold.dist(x_t, reference.centre.to(x_t))
    u = reference.distance_cdf(r)
    if x0.shape[0] < 1:
        raise ValueError("radial_prior_kl needs at least one data point")
    counts = torch.histc(u, bins=bins, min=0.0, max=1.0)
    n = float(counts.sum())
    p = counts[counts > 0] / n
    plug_in = float((p * torch.log(p * bins)).sum())
    return plug_in - (p.numel() - 1) / (2.0 * n)
