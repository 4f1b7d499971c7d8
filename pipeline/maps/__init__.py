"""Density maps on the globe: the latitude/longitude grid, offline cartopy, the figure, CF
netCDF output, and the rendering of one model's map from its density and sampler.

Conventions: grids are cell centres with ``lon`` in ``[-180, 180)``
(:mod:`pipeline.maps.grid`); a ``log_density`` grid has shape ``(n_lat, n_lon)`` in nats per
steradian (the uniform density is ``-log 4π``); coastlines come from the Natural Earth
shapefiles shipped in the project, never from the network (:mod:`pipeline.maps.offline`).
"""

from pipeline.maps.figure import PROJECTIONS, draw_density_map
from pipeline.maps.grid import (
    UNIFORM_LOG_DENSITY,
    grid_cell_areas,
    grid_normalization,
    latlon_grid,
)
from pipeline.maps.netcdf import write_density_netcdf
from pipeline.maps.offline import OfflineDataError, configure_offline_cartopy

__all__ = [
    "PROJECTIONS",
    "UNIFORM_LOG_DENSITY",
    "OfflineDataError",
    "configure_offline_cartopy",
    "draw_density_map",
    "grid_cell_areas",
    "grid_normalization",
    "latlon_grid",
    "write_density_netcdf",
]
