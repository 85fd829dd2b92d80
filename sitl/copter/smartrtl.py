"""SMART_RTL: fly home back along the recorded path, then land (libraries/AP_SmartRTL/AP_SmartRTL.cpp,
ArduCopter/mode_smart_rtl.cpp).

While armed the copter records a point each time it has moved SRTL_ACCURACY (2 m) from the last one; a
point that lies within that accuracy of the straight line from its predecessor to the new point is
dropped, so straight legs cost two points (AP_SmartRTL simplifies the same way, with
Ramer-Douglas-Peucker). With more than SRTL_POINTS (300) points SmartRTL is deactivated
("SmartRTL deactivated: buffer full") and entering the mode fails, so failsafes fall back to RTL/LAND.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import geo

if TYPE_CHECKING:
    from sitl.copter.nav import Navigator
    from sitl.copter.vehicle import SimCopter

ACCURACY_M = 2.0  # SRTL_ACCURACY default
MAX_POINTS = 300  # SRTL_POINTS default

Point = tuple[float, float, float]  # north, east, up (m) from home


def _dist_to_segment(p: Point, a: Point, b: Point) -> float:
    ab = [b[i] - a[i] for i in range(3)]
    ap = [p[i] - a[i] for i in range(3)]
    denom = sum(c * c for c in ab)
    t = 0.0 if denom == 0 else max(0.0, min(1.0, sum(ab[i] * ap[i] for i in range(3)) / denom))
    return math.dist(p, [a[i] + t * ab[i] for i in range(3)])


class SmartRtl:
    """The recorded return path and the retrace state."""

    def __init__(self, v: SimCopter) -> None:
        self.v = v
        self.path: list[Point] = []
        self.available = False
        self.returning: list[Point] = []
        self.landing = False

    def reset(self, *, active: bool = True) -> None:
        """On arming and when home is set: the path starts at home (AP_SmartRTL::set_home); without a
        position it is cleared and SmartRTL stays inactive."""
        self.path = [(0.0, 0.0, 0.0)] if active else []
        self.available = active
        self.returning = []
        self.landing = False

    def _here(self) -> Point:
        v = self.v
        north, east = geo.ne_of(v.home[0], v.home[1], v.lat, v.lon)
        return north, east, v.alt_m

    def record(self) -> None:
        if not self.available or self.v.landed or self.returning:
            return
        here = self._here()
        if math.dist(here, self.path[-1]) < ACCURACY_M:
            return
        if len(self.path) >= 2 and _dist_to_segment(self.path[-1], self.path[-2], here) < ACCURACY_M:
            self.path[-1] = here
            return
        self.path.append(here)
        if len(self.path) > MAX_POINTS:
            self.available = False
            self.v.send_text("SmartRTL deactivated: buffer full", mavlink.MAV_SEVERITY_WARNING)

    def start(self) -> None:
        self.returning = list(reversed(self.path))
        self.landing = False

    def step(self, nav: Navigator, dt: float, wind: tuple[float, float]) -> None:
        """Fly the path backwards point by point, then land at home (mode_smart_rtl.cpp)."""
        v = self.v
        if self.landing or not self.returning:
            self.landing = True
            nav.land_step((v.home[0], v.home[1]), dt, wind)
            return
        north, east, up = self.returning[0]
        point = geo.offset(v.home[0], v.home[1], north, east)
        dist, dz = nav.fly_to(point, up if len(self.returning) > 1 else v.alt_m, dt, wind)
        if dist < ACCURACY_M and (dz < 1.0 or len(self.returning) == 1):
            self.returning.pop(0)
