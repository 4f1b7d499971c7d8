"""Latitude/longitude <-> unit-vector coordinates on S² (the project's only convention).

For latitude :math:`\\varphi` and longitude :math:`\\lambda` in degrees,

.. math::
    x = \\cos\\varphi \\cos\\lambda, \\quad y = \\cos\\varphi \\sin\\lambda, \\quad
    z = \\sin\\varphi,

so (0°, 0°) maps to (1, 0, 0), (0°, 90°E) to (0, 1, 0) and the north pole to (0, 0, 1).
Longitudes are returned in [-180, 180).

Every function accepts either numpy arrays (or Python scalars / sequences) or torch tensors
and returns the same kind, keeping the floating dtype (integers become float64) and, for
tensors, the device. torch is never imported by this module: a tensor can only be passed
in if the caller has already imported torch, so numpy-only callers (the ingest stage) stay
light.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import torch

__all__ = ["latlon_to_xyz", "normalize_longitude", "xyz_to_latlon"]

T = TypeVar("T", bound="torch.Tensor")


def _is_tensor(value: object) -> bool:
    """Whether ``value`` is a torch tensor (without importing torch)."""
    torch_mod = sys.modules.get("torch")
    return torch_mod is not None and isinstance(value, torch_mod.Tensor)


def _as_float_array(value: ArrayLike) -> NDArray[np.floating[Any]]:
    """Convert to a floating numpy array; integer and boolean input becomes float64."""
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _as_float_tensor(value: torch.Tensor) -> torch.Tensor:
    """Return ``value`` as a floating tensor; integer input becomes float64."""
    if value.is_floating_point():
        return value
    import torch as torch_mod

    return value.to(torch_mod.float64)


@overload
def normalize_longitude(lon: T) -> T: ...
@overload
def normalize_longitude(lon: ArrayLike) -> NDArray[np.floating[Any]]: ...
def normalize_longitude(lon: Any) -> Any:
    """Wrap longitudes (degrees) into [-180, 180).

    Values already in [-180, 180) are returned unchanged (bit for bit). Values in
    [180, 540) get 360 subtracted and values in [-540, -180) get 360 added, both exact in
    floating point (Sterbenz), so [0, 360) input loses no precision; 180 maps to -180.
    Anything else uses :math:`((\\lambda + 180) \\bmod 360) - 180`.

    Args:
        lon: Longitudes in degrees, any shape; numpy array, scalar or torch tensor.

    Returns:
        Same shape and kind as ``lon``, floating, values in [-180, 180) (NaN stays NaN).
    """
    if _is_tensor(lon):
        import torch as torch_mod

        t = _as_float_tensor(lon)
        far = torch_mod.remainder(t + 180.0, 360.0) - 180.0
        # remainder can round up to exactly 360 for tiny negative inputs: fold it back.
        far = torch_mod.where(far >= 180.0, far - 360.0, far)
        out_t = torch_mod.where((t >= 180.0) & (t < 540.0), t - 360.0, far)
        out_t = torch_mod.where((t < -180.0) & (t >= -540.0), t + 360.0, out_t)
        return torch_mod.where((t >= -180.0) & (t < 180.0), t, out_t)
    arr = _as_float_array(lon)
    with np.errstate(invalid="ignore"):
        far_np = np.mod(arr + 180.0, 360.0) - 180.0
        far_np = np.where(far_np >= 180.0, far_np - 360.0, far_np)
        out = np.where((arr >= 180.0) & (arr < 540.0), arr - 360.0, far_np)
        out = np.where((arr < -180.0) & (arr >= -540.0), arr + 360.0, out)
        return np.where((arr >= -180.0) & (arr < 180.0), arr, out)


@overload
def latlon_to_xyz(lat_deg: T, lon_deg: T) -> T: ...
@overload
def latlon_to_xyz(lat_deg: ArrayLike, lon_deg: ArrayLike) -> NDArray[np.floating[Any]]: ...
def latlon_to_xyz(lat_deg: Any, lon_deg: Any) -> Any:
    """Map latitude/longitude in degrees to unit vectors in R³.

    Args:
        lat_deg: Latitudes in degrees, shape (...), in [-90, 90].
        lon_deg: Longitudes in degrees, shape broadcastable with ``lat_deg``; any real value
            (periodic), e.g. [-180, 180) or [0, 360).

    Returns:
        Points on S², shape (..., 3), columns (x, y, z); a torch tensor if either input is
        one, else a numpy array.

    Raises:
        ValueError: If a latitude lies outside [-90, 90].
    """
    if _is_tensor(lat_deg) or _is_tensor(lon_deg):
        import torch as torch_mod

        lat_t = lat_deg if _is_tensor(lat_deg) else torch_mod.as_tensor(lat_deg)
        lon_t = lon_deg if _is_tensor(lon_deg) else torch_mod.as_tensor(lon_deg)
        lat_t = _as_float_tensor(lat_t)
        lon_t = _as_float_tensor(lon_t).to(device=lat_t.device)
        dtype = torch_mod.promote_types(lat_t.dtype, lon_t.dtype)
        lat_t, lon_t = lat_t.to(dtype), lon_t.to(dtype)
        if bool(torch_mod.any(lat_t.abs() > 90.0)):
            raise ValueError("latlon_to_xyz: latitude outside [-90, 90] degrees")
        phi_t, lam_t = torch_mod.broadcast_tensors(
            torch_mod.deg2rad(lat_t), torch_mod.deg2rad(lon_t)
        )
        cos_phi_t = torch_mod.cos(phi_t)
        return torch_mod.stack(
            (
                cos_phi_t * torch_mod.cos(lam_t),
                cos_phi_t * torch_mod.sin(lam_t),
                torch_mod.sin(phi_t),
            ),
            dim=-1,
        )
    lat = _as_float_array(lat_deg)
    lon = _as_float_array(lon_deg)
    if np.any(np.abs(lat) > 90.0):
        raise ValueError("latlon_to_xyz: latitude outside [-90, 90] degrees")
    phi, lam = np.broadcast_arrays(np.deg2rad(lat), np.deg2rad(lon))
    cos_phi = np.cos(phi)
    return np.stack((cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)), axis=-1)


@overload
def xyz_to_latlon(xyz: T) -> tuple[T, T]: ...
@overload
def xyz_to_latlon(
    xyz: ArrayLike,
) -> tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]: ...
def xyz_to_latlon(xyz: Any) -> Any:
    """Map points of R³ \\ {0} to latitude/longitude in degrees.

    The input need not be exactly unit-norm: latitude is computed as
    ``atan2(z, hypot(x, y))``, which is accurate everywhere, including near the poles.
    At the poles the longitude is undefined and returned as 0 (or -180 for x < 0 exactly
    on the axis, following ``atan2`` signs).

    Args:
        xyz: Points, shape (..., 3), numpy array or torch tensor.

    Returns:
        ``(lat, lon)`` in degrees, each shape (...); lat in [-90, 90], lon in [-180, 180).

    Raises:
        ValueError: If the last dimension is not 3.
    """
    if _is_tensor(xyz):
        import torch as torch_mod

        t = _as_float_tensor(xyz)
        if t.shape[-1] != 3:
            raise ValueError(f"xyz_to_latlon: expected shape (..., 3), got {tuple(t.shape)}")
        x_t, y_t, z_t = t.unbind(dim=-1)
        lat_t = torch_mod.rad2deg(torch_mod.atan2(z_t, torch_mod.hypot(x_t, y_t)))
        lon_t = normalize_longitude(torch_mod.rad2deg(torch_mod.atan2(y_t, x_t)))
        return lat_t, lon_t
    arr = _as_float_array(xyz)
    if arr.shape[-1:] != (3,):
        raise ValueError(f"xyz_to_latlon: expected shape (..., 3), got {arr.shape}")
    x, y, z = arr[..., 0], arr[..., 1], arr[..., 2]
    lat = np.rad2deg(np.arctan2(z, np.hypot(x, y)))
    lon = normalize_longitude(np.rad2deg(np.arctan2(y, x)))
    return lat, lon
