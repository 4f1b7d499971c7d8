"""``rsgm``: the Riemannian score-based generative model (De Bortoli et al. 2022).

One tangent score network P_x net(x, t), trained by denoising score matching against the exact
heat-kernel score (or implicit score matching), noising by Brownian motion to the uniform law;
its density is the probability-flow ODE. The engine's :class:`ScoreNetworkVariant` is all of
it; this package only names it (and is the one folder that ``rsgm`` stages depend on).
"""

from pipeline.variants.base import ScoreNetworkVariant

__all__ = ["VARIANT"]

VARIANT = ScoreNetworkVariant("rsgm")
