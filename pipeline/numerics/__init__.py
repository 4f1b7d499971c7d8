"""Numerical building blocks shared by the heat kernels, samplers and posteriors.

* :mod:`.quadrature`: the composite Gauss–Legendre rule on given panel edges.
* :mod:`.rejection`: the per-draw rejection loop of the exact angle samplers.
"""

from pipeline.numerics.quadrature import composite_gauss_legendre
from pipeline.numerics.rejection import rejection_sample

__all__ = ["composite_gauss_legendre", "rejection_sample"]
