"""``ambient_raw``: the ambient denoising score model with the raw ambient target (Z − X)/σ²
(:mod:`pipeline.ambient.models`); its score field is the tangent part at x, σ = √s(t)."""

from pipeline.ambient.variant import AmbientNetworkVariant

__all__ = ["VARIANT"]

VARIANT = AmbientNetworkVariant("ambient_raw")
