"""Model variants that are not one score network (the registry's first plug-in: ``kde``)."""

from pipeline.variants.kde import KDEConfig, KernelDensity, fit_kde, load_kde, save_kde

__all__ = ["KDEConfig", "KernelDensity", "fit_kde", "load_kde", "save_kde"]
