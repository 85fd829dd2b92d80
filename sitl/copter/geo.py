"""Flat-earth geometry for the simulator: metres <-> degrees around a point.

Why not pyproj: the simulator moves a vehicle by a few metres per step, where an equirectangular
approximation is exact to millimetres, and it keeps `sitl` free of the geometry stack the controller
uses (the simulator must stay an independent truth).
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_378_137.0  # WGS84 semi-major axis, as ArduPilot's Location uses (AP_Common/Location.cpp)


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """Move (lat, lon) by metres north and east."""
    dlat = math.degrees(north_m / EARTH_RADIUS_M)
    dlon = math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return lat + dlat, lon + dlon


def ne_of(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    """Metres north and east of (lat, lon) from the origin (lat0, lon0)."""
    north = math.radians(lat - lat0) * EARTH_RADIUS_M
    east = math.radians(lon - lon0) * EARTH_RADIUS_M * math.cos(math.radians((lat + lat0) / 2.0))
    return north, east


def distance_m(lat0: float, lon0: float, lat1: float, lon1: float) -> float:
    """Horizontal distance in metres."""
    n, e = ne_of(lat0, lon0, lat1, lon1)
    return math.hypot(n, e)


def bearing_deg(lat0: float, lon0: float, lat1: float, lon1: float) -> float:
    """Bearing from the first point to the second, degrees clockwise from north in [0, 360)."""
    n, e = ne_of(lat0, lon0, lat1, lon1)
    return math.degrees(math.atan2(e, n)) % 360.0


def point_in_polygon(north: float, east: float, poly: list[tuple[float, float]]) -> bool:
    """Even-odd rule on a local (north, east) polygon; the vertex list is implicitly closed."""
    inside = False
    n = len(poly)
    for i in range(n):
        y1, x1 = poly[i]
        y2, x2 = poly[(i + 1) % n]
        if (y1 > north) != (y2 > north):
            x_cross = x1 + (north - y1) * (x2 - x1) / (y2 - y1)
            if east < x_cross:
                inside = not inside
    return inside
