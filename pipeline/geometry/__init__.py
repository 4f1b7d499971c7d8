"""Riemannian manifolds used by the RSGM engine (embedded coordinates).

Coordinates helpers live in :mod:`pipeline.geometry.coords` (import from there directly).
"""

from pipeline.geometry.euclidean import Euclidean
from pipeline.geometry.manifold import Manifold
from pipeline.geometry.sphere import Sphere
from pipeline.geometry.torus import FlatTorus

__all__ = ["Euclidean", "FlatTorus", "Manifold", "Sphere"]
