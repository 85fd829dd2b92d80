"""Kinematics of a position-controlled multicopter: what ArduCopter's position controller makes it do.

The vehicle is modelled at the level a ground station sees: a point that accelerates toward a commanded
velocity with bounded acceleration, whose horizontal speed is capped by the waypoint speed and by the
airspeed the airframe can reach against the wind, and whose climb and descent rates are bounded by the
WPNAV_SPEED_UP / WPNAV_SPEED_DN / LAND_SPEED limits the nav code would use. Speeds slow down near the
target along sqrt(2 a d), the shape of AC_PosControl's square-root controller
(libraries/AC_AttitudeControl/AC_PosControl.cpp, sqrt_controller).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sitl.copter import geo

MAX_AIRSPEED_MPS = 30.0
ACCEL_Z_MPS2 = 2.5  # PILOT_ACCEL_Z default 250 cm/s/s


@dataclass
class Kinematics:
    """Position (WGS84 + metres above home) and ground velocity (north, east, up)."""

    lat: float
    lon: float
    alt: float = 0.0
    vn: float = 0.0
    ve: float = 0.0
    vu: float = 0.0
    heading_deg: float = 0.0

    @property
    def groundspeed(self) -> float:
        return math.hypot(self.vn, self.ve)


def wind_vector(speed_mps: float, from_deg: float) -> tuple[float, float]:
    """Air mass velocity (north, east) for a wind blowing FROM `from_deg` (SIM_WIND_DIR convention)."""
    to = math.radians(from_deg + 180.0)
    return speed_mps * math.cos(to), speed_mps * math.sin(to)


def _approach(current: float, target: float, max_step: float) -> float:
    if target > current:
        return min(target, current + max_step)
    return max(target, current - max_step)


def step_horizontal(
    k: Kinematics,
    target: tuple[float, float] | None,
    speed: float,
    accel: float,
    wind: tuple[float, float],
    dt: float,
) -> float:
    """Move toward `target` (lat, lon), or brake to a stop if None; return the distance left in metres."""
    if target is None:
        dist = 0.0
        want_n = want_e = 0.0
    else:
        north, east = geo.ne_of(k.lat, k.lon, target[0], target[1])
        dist = math.hypot(north, east)
        if dist < 0.01:
            want_n = want_e = 0.0
        else:
            dn, de = north / dist, east / dist
            # the largest ground speed along (dn, de) whose airspeed stays within MAX_AIRSPEED_MPS
            wn, we = wind
            along = dn * wn + de * we
            disc = along * along - (wn * wn + we * we) + MAX_AIRSPEED_MPS**2
            cap = along + math.sqrt(disc) if disc > 0.0 else 0.0
            # decelerate to arrive: v = sqrt(2 a d), and never overshoot within one step
            v = min(speed, cap, math.sqrt(2.0 * accel * dist), dist / dt)
            want_n, want_e = dn * v, de * v
    dvn, dve = want_n - k.vn, want_e - k.ve
    dv = math.hypot(dvn, dve)
    if dv > accel * dt:
        scale = accel * dt / dv
        dvn, dve = dvn * scale, dve * scale
    k.vn += dvn
    k.ve += dve
    k.lat, k.lon = geo.offset(k.lat, k.lon, k.vn * dt, k.ve * dt)
    if k.groundspeed > 0.5:
        k.heading_deg = math.degrees(math.atan2(k.ve, k.vn)) % 360.0
    if target is None:
        return 0.0
    return geo.distance_m(k.lat, k.lon, target[0], target[1])


def step_vertical(k: Kinematics, target_alt: float, up_mps: float, down_mps: float, dt: float) -> float:
    """Climb or descend toward `target_alt` (m above home); return the altitude error left."""
    err = target_alt - k.alt
    limit = up_mps if err > 0 else down_mps
    want = math.copysign(min(limit, math.sqrt(2.0 * ACCEL_Z_MPS2 * abs(err)), abs(err) / dt), err)
    k.vu = _approach(k.vu, want, ACCEL_Z_MPS2 * dt)
    k.alt += k.vu * dt
    return target_alt - k.alt


def airspeed(k: Kinematics, wind: tuple[float, float]) -> float:
    """Speed through the air mass, what the rotors pay for."""
    return math.hypot(k.vn - wind[0], k.ve - wind[1])
