"""Forward SDE of the RSGM engine: β schedules, Brownian motion, the S² heat kernel."""

from pipeline.sde.brownian import BrownianMotion, geodesic_random_walk
from pipeline.sde.exact_sampler import HeatKernelSampler, exact_bm_sample
from pipeline.sde.heat_kernel import (
    heat_kernel_dlogp_dc,
    heat_kernel_logp,
    heat_kernel_logp_theta,
    heat_kernel_mixture_logp,
    heat_kernel_mixture_score,
    heat_kernel_score,
    prior_kl_uniform,
)
from pipeline.sde.schedules import BetaSchedule, ConstantBeta, LinearBeta, make_schedule

__all__ = [
    "BetaSchedule",
    "BrownianMotion",
    "ConstantBeta",
    "HeatKernelSampler",
    "LinearBeta",
    "exact_bm_sample",
    "geodesic_random_walk",
    "heat_kernel_dlogp_dc",
    "heat_kernel_logp",
    "heat_kernel_logp_theta",
    "heat_kernel_mixture_logp",
    "heat_kernel_mixture_score",
    "heat_kernel_score",
    "make_schedule",
    "prior_kl_uniform",
]
