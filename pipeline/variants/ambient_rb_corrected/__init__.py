"""``ambient_rb_corrected``: the ``ambient_rb`` weights with the curvature correction.

Not trained: ``derive@<catalogue>`` copies the ``ambient_rb`` folder, and the score field is
ŝ − σ²(½W_H − Ric♯)ŝ (:mod:`pipeline.ambient.curvature`).
"""

from pipeline.ambient.variant import AmbientNetworkVariant

__all__ = ["VARIANT"]

VARIANT = AmbientNetworkVariant("ambient_rb_corrected", trained_from="ambient_rb")
