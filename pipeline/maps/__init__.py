"""Density maps on the globe: the latitude/longitude grid, offline cartopy, the figure, CF
netCDF output, and the rendering of one model's map from its density and sampler.

Conventions: grids are cell centres with ``lon`` in ``[-180, 180)``
(:mod:`pipeline.maps.grid`); a ``log_density`` grid has shape ``(n_lat, n_lon)`` in nats per
steradian (the uniform density is ``-log 4π``); coastlines come from the Natural Earth
shapefiles shipped in the project, never from the network (:mod:`pipeline.maps.offline`).
"""

# No re-exports: importing a submodule runs this file, and every name re-exported here
# would put its module in the DVC code deps of each stage that imports any submodule.
