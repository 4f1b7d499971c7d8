"""SO(3): the rotation group as a manifold of the engine, its heat kernel, its benchmark data.

- :mod:`pipeline.so3.manifold`: ``SO3`` ⊂ R^{3×3} with the Frobenius metric.
- :mod:`pipeline.so3.heat_kernel`: Brownian motion's transition density, score, exact sampler.
- :mod:`pipeline.so3.wrapped`: wrapped-normal mixtures with their exact density.

A package of its own, not ``geometry/`` and ``sde/``: while dvc.yaml lists those folders
whole, a new file there would rerun every train stage (issue 18's derived per-file deps lift
this; the modules can then move next to their S² siblings).
"""
