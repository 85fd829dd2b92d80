"""Geofence: the stored fence items, the enabled fence types, and breach detection.

Follows libraries/AC_Fence/AC_Fence.cpp (FENCE_TYPE bits: 1 max altitude, 2 circle around home of
FENCE_RADIUS, 4 polygons/circles uploaded as the FENCE mission, 8 min altitude) and
libraries/AC_Fence/AC_PolyFence_loader.cpp (inclusion polygons and circles must all contain the vehicle,
exclusion polygons and circles must not; a polygon is `param1` consecutive vertex items; the return
point is item 5000). Breaches are reported as FENCE_STATUS (breach_type MAXALT / MINALT / BOUNDARY) and
announced with AC_Fence::print_fence_message("breached", ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import geo

if TYPE_CHECKING:
    from sitl.copter.items import Item
    from sitl.copter.vehicle import SimCopter

RETURN_POINT = mavlink.MAV_CMD_NAV_FENCE_RETURN_POINT  # 5000
POLY_INCL = mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION  # 5001
POLY_EXCL = mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION  # 5002
CIRCLE_INCL = mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION  # 5003
CIRCLE_EXCL = mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION  # 5004
FENCE_COMMANDS = {RETURN_POINT, POLY_INCL, POLY_EXCL, CIRCLE_INCL, CIRCLE_EXCL}

TYPE_ALT_MAX, TYPE_CIRCLE, TYPE_POLYGON, TYPE_ALT_MIN = 1, 2, 4, 8
GIVE_UP_DISTANCE_M = 100.0  # AC_FENCE_GIVE_UP_DISTANCE: further outside than this, just land
NAMES = {TYPE_ALT_MAX: "Max Alt", TYPE_CIRCLE: "Circle", TYPE_POLYGON: "Polygon", TYPE_ALT_MIN: "Min Alt"}


def check_items(items: list[Item]) -> int:
    """AC_PolyFence_loader::validate_fence: polygons complete, >= 3 vertices, circles with a radius."""
    i = 0
    while i < len(items):
        item = items[i]
        if item.command in (POLY_INCL, POLY_EXCL):
            n = int(item.param1)
            if n < 3 or i + n > len(items):
                return mavlink.MAV_MISSION_ERROR
            for j in range(i, i + n):
                if items[j].command != item.command or int(items[j].param1) != n:
                    return mavlink.MAV_MISSION_ERROR
            i += n
            continue
        if item.command in (CIRCLE_INCL, CIRCLE_EXCL) and item.param1 <= 0:
            return mavlink.MAV_MISSION_ERROR
        i += 1
    return mavlink.MAV_MISSION_ACCEPTED


def fence_names(types: int) -> str:
    """AC_Fence::get_fence_names: "Polygon fence", "Max Alt and Polygon fences", "A, B and C fences"."""
    names = [name for bit, name in sorted(NAMES.items()) if types & bit]
    text = names[-1] if len(names) < 2 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{text} fence{'s' if len(names) > 1 else ''}"


class Fence:
    """Fence state for one vehicle: enabled flag, polygons, and breach bookkeeping for FENCE_STATUS."""

    def __init__(self, v: SimCopter) -> None:
        self.v = v
        self.enabled = v.params["FENCE_ENABLE"] != 0
        self.polygons: list[tuple[bool, list[tuple[float, float]]]] = []  # (inclusion, [(lat, lon)])
        self.circles: list[tuple[bool, float, float, float]] = []  # (inclusion, lat, lon, radius)
        self.return_point: tuple[float, float] | None = None
        self.breached_types = 0
        self.breach_count = 0
        self.breach_time_ms = 0
        self.last_breach_type = mavlink.FENCE_BREACH_NONE

    def load(self, items: list[Item]) -> None:
        self.polygons, self.circles, self.return_point = [], [], None
        i = 0
        while i < len(items):
            item = items[i]
            if item.command in (POLY_INCL, POLY_EXCL):
                n = int(item.param1)
                self.polygons.append(
                    (item.command == POLY_INCL, [(it.lat, it.lon) for it in items[i : i + n]])
                )
                i += n
                continue
            if item.command in (CIRCLE_INCL, CIRCLE_EXCL):
                self.circles.append((item.command == CIRCLE_INCL, item.lat, item.lon, item.param1))
            elif item.command == RETURN_POINT:
                self.return_point = (item.lat, item.lon)
            i += 1

    def enabled_types(self) -> int:
        if not self.enabled:
            return 0
        return int(self.v.params["FENCE_TYPE"])

    def _polygon_breached(self) -> bool:
        v = self.v
        for inclusion, lat, lon, radius in self.circles:
            inside = geo.distance_m(lat, lon, v.lat, v.lon) <= radius
            if inside != inclusion:
                return True
        for inclusion, verts in self.polygons:
            lat0, lon0 = verts[0]
            local = [geo.ne_of(lat0, lon0, a, b) for a, b in verts]
            n, e = geo.ne_of(lat0, lon0, v.lat, v.lon)
            if geo.point_in_polygon(n, e, local) != inclusion:
                return True
        return False

    def current_breaches(self) -> tuple[int, float]:
        """Bitmask of breached fence types now, and how far outside (m) for the give-up rule."""
        types = self.enabled_types()
        v, p = self.v, self.v.params
        breaches, distance = 0, 0.0
        if types & TYPE_ALT_MAX and v.alt_m > p["FENCE_ALT_MAX"]:
            breaches |= TYPE_ALT_MAX
            distance = max(distance, v.alt_m - p["FENCE_ALT_MAX"])
        if types & TYPE_ALT_MIN and v.armed and not v.landed and v.alt_m < p["FENCE_ALT_MIN"]:
            breaches |= TYPE_ALT_MIN
        if types & TYPE_CIRCLE:
            d = geo.distance_m(v.home[0], v.home[1], v.lat, v.lon)
            if d > p["FENCE_RADIUS"]:
                breaches |= TYPE_CIRCLE
                distance = max(distance, d - p["FENCE_RADIUS"])
        if types & TYPE_POLYGON and self._polygon_breached():
            breaches |= TYPE_POLYGON
        return breaches, distance

    def check(self) -> tuple[int, float]:
        """AC_Fence::check: update breach state; returns (new breaches bitmask, breach distance)."""
        now, distance = self.current_breaches()
        new = now & ~self.breached_types
        if new:
            self.breach_count += 1
            self.breach_time_ms = int(self.v.time_s * 1000)
            if new & (TYPE_CIRCLE | TYPE_POLYGON):
                self.last_breach_type = mavlink.FENCE_BREACH_BOUNDARY
            elif new & TYPE_ALT_MAX:
                self.last_breach_type = mavlink.FENCE_BREACH_MAXALT
            else:
                self.last_breach_type = mavlink.FENCE_BREACH_MINALT
        self.breached_types = now
        return new, distance

    @staticmethod
    def describe(types: int) -> str:
        return ", ".join(name for bit, name in NAMES.items() if types & bit)

    def status_msg(self) -> mavlink.MAVLink_message:
        """FENCE_STATUS (AC_Fence::send_fence_status)."""
        return mavlink.MAVLink_fence_status_message(
            1 if self.breached_types else 0,
            min(self.breach_count, 65535),
            self.last_breach_type if self.breached_types else mavlink.FENCE_BREACH_NONE,
            self.breach_time_ms & 0xFFFFFFFF,
            mavlink.FENCE_MITIGATE_NONE,
        )
