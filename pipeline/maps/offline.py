"""Offline cartopy: coastlines from the Natural Earth shapefiles shipped in the project.

:func:`configure_offline_cartopy` points cartopy at them, and any download attempt raises
:class:`OfflineDataError` instead of reaching the network.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["OfflineDataError", "configure_offline_cartopy"]

#: Natural Earth layers the shipped data holds (category, name, resolution).
_SHIPPED_LAYERS: tuple[tuple[str, str, str], ...] = (
    ("physical", "coastline", "110m"),
    ("physical", "land", "110m"),
    ("physical", "ocean", "110m"),
    ("physical", "lakes", "110m"),
    ("physical", "coastline", "50m"),
    ("physical", "land", "50m"),
    ("cultural", "admin_0_countries", "110m"),
    ("cultural", "admin_0_boundary_lines_land", "110m"),
)


class OfflineDataError(RuntimeError):
    """Raised when cartopy would download data: the project draws maps offline only."""


class _OfflineDownloader:
    """Stand-in for a cartopy downloader that refuses to download and says what is missing."""

    def __init__(self, data_dir: Path, spec: tuple[str, ...]) -> None:
        self.data_dir = data_dir
        self.spec = spec

    def path(self, format_dict: Mapping[str, Any]) -> Path:
        """Return the shipped file for ``format_dict`` or raise :class:`OfflineDataError`."""
        if self.spec == ("shapefiles", "natural_earth"):
            candidate = (
                self.data_dir
                / "shapefiles"
                / "natural_earth"
                / str(format_dict.get("category"))
                / f"ne_{format_dict.get('resolution')}_{format_dict.get('name')}.shp"
            )
            if candidate.exists():
                return candidate
            shipped = ", ".join(f"{c}/{r}_{n}" for c, n, r in _SHIPPED_LAYERS)
            raise OfflineDataError(
                f"cartopy asked for Natural Earth {format_dict} which is not shipped in "
                f"{self.data_dir} (looked for {candidate}); maps are drawn offline, so use one "
                f"of the shipped layers: {shipped}"
            )
        raise OfflineDataError(
            f"cartopy asked for {self.spec} {dict(format_dict)}; maps are drawn offline and "
            "only the shipped Natural Earth shapefiles are available"
        )

    def acquire_resource(self, target_path: Path, format_dict: Mapping[str, Any]) -> Path:
        """Never download: raise :class:`OfflineDataError`."""
        raise OfflineDataError(f"refusing to download {self.spec} {dict(format_dict)} offline")


def configure_offline_cartopy(naturalearth_dir: str | os.PathLike[str]) -> Path:
    """Point cartopy at shipped Natural Earth data and forbid downloads.

    Sets ``cartopy.config["pre_existing_data_dir"]`` to ``naturalearth_dir`` (the folder that
    holds ``shapefiles/natural_earth/{physical,cultural}``) and replaces every registered cartopy
    downloader by one that serves the shipped files and raises :class:`OfflineDataError` for
    anything else, so drawing never touches the network.

    Args:
        naturalearth_dir: Folder holding ``shapefiles/natural_earth/...`` (the project ships
            ``data/naturalearth``).

    Returns:
        The resolved data folder.

    Raises:
        FileNotFoundError: If the folder lacks the 110m coastline shapefile.
    """
    import cartopy

    data_dir = Path(naturalearth_dir).resolve()
    coastline = data_dir / "shapefiles" / "natural_earth" / "physical" / "ne_110m_coastline.shp"
    if not coastline.exists():
        raise FileNotFoundError(
            f"Natural Earth coastline not found at {coastline}; the project ships it under "
            "data/naturalearth (see data/naturalearth/PROVENANCE.md)"
        )
    cartopy.config["pre_existing_data_dir"] = data_dir
    downloaders = cartopy.config["downloaders"]
    for spec in list(downloaders):
        downloaders[spec] = _OfflineDownloader(data_dir, tuple(spec))
    return data_dir
