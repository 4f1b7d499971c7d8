"""Event catalogues: registry, readers, validation, netCDF storage and train/val/test splits.

Import from the submodules directly (``pipeline.data.readers`` ...): this package module
imports nothing, so a stage depends only on the submodules it really uses.
"""
