"""A station's local metric frame, and geodesic helpers on the WGS84 ellipsoid.

Every distance and path check happens in metres in a frame centred on the station: an azimuthal
equidistant (aeqd) projection keeps distances from the centre exact and stretches others by about
rho^2 / (6 R^2), i.e. about 1e-6 (1 mm per km) across the 16 km drone radius and 4e-6 at 30 km (measured
against pyproj.Geod), so planar geometry (shapely) is exact enough there. The transformer is
built once per station because building a pyproj CRS costs milliseconds, while transforming an array of
points costs microseconds.
"""

from __future__ import annotations

import math

import numpy as np
import pyproj
import shapely
from numpy.typing import ArrayLike
from shapely.geometry.base import BaseGeometry

__all__ = ["LocalFrame", "bearing_deg", "distance_and_bearing", "geodesic_distance_m"]

_GEOD = pyproj.Geod(ellps="WGS84")


def _check_centre(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise ValueError(f"frame centre lat={lat!r}: must be a finite latitude in [-90, 90] degrees")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise ValueError(f"frame centre lon={lon!r}: must be a finite longitude in [-180, 180] degrees")


class LocalFrame:
    """pyproj azimuthal equidistant (aeqd) frame centred on a station: metres east (x) and north (y)."""

    def __init__(self, lat: float, lon: float) -> None:
        _check_centre(lat, lon)
        self.lat = float(lat)
        self.lon = float(lon)
        crs = pyproj.CRS.from_proj4(
            f"+proj=aeqd +lat_0={self.lat!r} +lon_0={self.lon!r} +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
        )
        # always_xy: (lon, lat) in, (x, y) out, whatever the CRS axis order says.
        self._fwd = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        self._inv = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    def __repr__(self) -> str:
        return f"LocalFrame(lat={self.lat!r}, lon={self.lon!r})"

    def to_local(self, lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 (lon, lat) degrees -> (x east, y north) metres; vectorized over arrays."""
        x, y = self._fwd.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def to_wgs84(self, x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Local (x, y) metres -> WGS84 (lon, lat) degrees; vectorized over arrays."""
        lon, lat = self._inv.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)

    def geometry_to_local(self, geom: BaseGeometry) -> BaseGeometry:
        """A lon/lat geometry (or array of them) in the local frame, vertex by vertex."""
        return shapely.transform(geom, self._coords_to_local)

    def geometry_to_wgs84(self, geom: BaseGeometry) -> BaseGeometry:
        """A local-frame geometry (or array of them) back in lon/lat, vertex by vertex."""
        return shapely.transform(geom, self._coords_to_wgs84)

    def _coords_to_local(self, coords: np.ndarray) -> np.ndarray:
        x, y = self._fwd.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    def _coords_to_wgs84(self, coords: np.ndarray) -> np.ndarray:
        lon, lat = self._inv.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])


def geodesic_distance_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> np.ndarray:
    """Distance in metres along the WGS84 ellipsoid (Karney's algorithm via pyproj.Geod); vectorized."""
    lon1, lat1, lon2, lat2 = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (lon1, lat1, lon2, lat2))
    )
    _, _, dist = _GEOD.inv(lon1, lat1, lon2, lat2)
    return np.asarray(dist, dtype=float)


def bearing_deg(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> np.ndarray:
    """Forward azimuth from point 1 to point 2, degrees clockwise from true north in [0, 360)."""
    return distance_and_bearing(lon1, lat1, lon2, lat2)[1]


def distance_and_bearing(
    lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """(`geodesic_distance_m`, `bearing_deg`) from one solution of the inverse problem, which gives both."""
    lon1, lat1, lon2, lat2 = np.broadcast_arrays(
        *(np.asarray(a, dtype=float) for a in (lon1, lat1, lon2, lat2))
    )
    az, _, dist = _GEOD.inv(lon1, lat1, lon2, lat2)
    deg = np.mod(np.asarray(az, dtype=float), 360.0)
    # A tiny negative azimuth rounds to exactly 360.0 under mod; fold it back to 0.
    return np.asarray(dist, dtype=float), np.where(deg >= 360.0, 0.0, deg)
