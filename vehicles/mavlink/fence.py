"""Geofences as ArduPilot holds them: the FENCE mission type, built from the station's zones.

A `FencePlan` is what the FENCE mission type can express (https://mavlink.io/en/services/geofence.html):
inclusion/exclusion polygons (MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION/_EXCLUSION, 5001/5002, each vertex
an item whose param1 is the vertex count), circles (5003/5004, param1 the radius) and a return point (5000),
plus the altitude ceiling that goes into FENCE_ALT_MAX. `fence_from_zones` makes one from `geofences`
zones; this module knows the encoding, never which zones matter (the controller decides that).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink
from shapely.geometry import MultiPolygon, Point, Polygon

from vehicles.mavlink.errors import FenceError
from vehicles.mavlink.missions import MissionItem

__all__ = ["FENCE_TYPE_ALT_MAX", "FENCE_TYPE_POLYGON", "FencePlan", "fence_from_zones"]

LatLon = tuple[float, float]
Ring = list[LatLon]

# FENCE_TYPE bits (libraries/AC_Fence/AC_Fence.cpp); "polygon" covers the FENCE mission's shapes.
FENCE_TYPE_ALT_MAX, FENCE_TYPE_POLYGON = 1, 4
_GLOBAL = mavlink.MAV_FRAME_GLOBAL


@dataclass
class FencePlan:
    """What ArduPilot's FENCE mission type holds: lat/lon polygons and circles, plus an altitude ceiling."""

    inclusion_polygons: list[Ring] = field(default_factory=list)
    exclusion_polygons: list[Ring] = field(default_factory=list)
    inclusion_circles: list[tuple[LatLon, float]] = field(default_factory=list)  # (centre, radius m)
    exclusion_circles: list[tuple[LatLon, float]] = field(default_factory=list)
    ceiling_m: float | None = None
    return_point: LatLon | None = None

    def __post_init__(self) -> None:
        for name in ("inclusion_polygons", "exclusion_polygons"):
            for i, ring in enumerate(getattr(self, name)):
                if len(ring) < 3:
                    raise FenceError(f"polygon {i} has {len(ring)} vertices; at least 3 needed", field=name)
        for name in ("inclusion_circles", "exclusion_circles"):
            for i, (_, radius) in enumerate(getattr(self, name)):
                if not radius > 0:
                    raise FenceError(f"circle {i} radius {radius} m must be positive", field=name)
        if self.ceiling_m is not None and not self.ceiling_m > 0:
            raise FenceError(f"{self.ceiling_m} m must be positive", field="ceiling_m")

    @property
    def has_areas(self) -> bool:
        return bool(self.inclusion_polygons or self.exclusion_polygons or self.inclusion_circles
                    or self.exclusion_circles)  # fmt: skip

    @property
    def fence_type(self) -> int:
        """FENCE_TYPE bits: polygon (covers FENCE-mission polygons and circles) and max altitude."""
        return (FENCE_TYPE_POLYGON if self.has_areas else 0) | (FENCE_TYPE_ALT_MAX if self.ceiling_m else 0)

    def to_items(self) -> list[MissionItem]:
        """FENCE mission items: 5001/5002 vertices (param1 = vertex count), 5003/5004 circles
        (param1 = radius), 5000 return point (https://mavlink.io/en/services/geofence.html)."""
        items: list[MissionItem] = []
        polygon_kinds = (
            (mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION, self.inclusion_polygons),
            (mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION, self.exclusion_polygons),
        )
        for cmd, rings in polygon_kinds:
            for ring in rings:
                items += [MissionItem(cmd, lat, lon, param1=len(ring), frame=_GLOBAL) for lat, lon in ring]
        circle_kinds = (
            (mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION, self.inclusion_circles),
            (mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION, self.exclusion_circles),
        )
        for cmd, circles in circle_kinds:
            items += [MissionItem(cmd, lat, lon, param1=r, frame=_GLOBAL) for (lat, lon), r in circles]
        if self.return_point is not None:
            lat, lon = self.return_point
            items.append(MissionItem(mavlink.MAV_CMD_NAV_FENCE_RETURN_POINT, lat, lon, frame=_GLOBAL))
        return items


def _ring(coords: Any) -> Ring:
    pts = [(float(lat), float(lon)) for lon, lat, *_ in coords]
    return pts[:-1] if len(pts) > 1 and pts[0] == pts[-1] else pts


def fence_from_zones(
    zones: Sequence[Any], ceiling_m: float | None = None, *, at: datetime | None = None
) -> FencePlan:
    """The drone fence for a station's zones (geofences `Zone`s in WGS84 lon/lat).

    Exclusions (no_fly) become exclusion polygons/circles; operating areas become inclusions, and their holes
    exclusions (ArduPilot has no polygon holes). Zones that do not bind drones at `at`, and exclusions whose
    floor is above `ceiling_m` (the drone cannot reach them), are left out. An operating area's own ceiling
    lowers the altitude fence.
    """
    plan = FencePlan(ceiling_m=ceiling_m)
    for zone in zones:
        if not zone.applies("drone", at=at):
            continue
        if (
            zone.is_exclusion
            and ceiling_m is not None
            and zone.floor_m is not None
            and zone.floor_m > ceiling_m
        ):
            continue
        geom = zone.geometry
        if isinstance(geom, Point):
            if zone.radius_m is None:
                raise FenceError(f"zone {zone.id} is a point without radius_m", field="radius_m")
            circle = ((geom.y, geom.x), float(zone.radius_m))
            (plan.exclusion_circles if zone.is_exclusion else plan.inclusion_circles).append(circle)
            continue
        polygons = list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]
        for poly in polygons:
            if not isinstance(poly, Polygon):
                raise FenceError(f"zone {zone.id}: {poly.geom_type} cannot be a fence", field="geometry")
            if zone.is_exclusion:
                plan.exclusion_polygons.append(_ring(poly.exterior.coords))
            else:
                plan.inclusion_polygons.append(_ring(poly.exterior.coords))
                plan.exclusion_polygons += [_ring(hole.coords) for hole in poly.interiors]
        if not zone.is_exclusion and zone.ceiling_m is not None:
            plan.ceiling_m = min(zone.ceiling_m, plan.ceiling_m or math.inf)
    plan.__post_init__()
    return plan
