"""Geometry only: zones, a station's local metric frame, vectorized path checks and detours.

This package imports no protocol and nothing else of ours; `vehicles` and `controller` build on it.
"""

from geofences.checks import ZoneIndex
from geofences.detours import DetourPlanner, Route
from geofences.errors import LastmileError, ZoneError
from geofences.frame import LocalFrame, bearing_deg, distance_and_bearing, geodesic_distance_m
from geofences.zones import VEHICLE_KINDS, Zone, ZoneKind, load_zones, zones_to_geojson

__all__ = [
    "VEHICLE_KINDS",
    "DetourPlanner",
    "LastmileError",
    "LocalFrame",
    "Route",
    "Zone",
    "ZoneError",
    "ZoneIndex",
    "ZoneKind",
    "bearing_deg",
    "distance_and_bearing",
    "geodesic_distance_m",
    "load_zones",
    "zones_to_geojson",
]
