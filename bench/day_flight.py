"""What a trip really does in the simulated day: its timing, its measured energy, and its safety.

The controller predicts with `vehicles.energy`; the day measures with the simulator's own power model
(`sitl.copter.power.flight_power_w`, written independently), flown the way `sitl.copter` flies the
controller's mission: climb at WPNAV_SPEED_UP, every leg at WPNAV_SPEED *ground* speed (capped so the
airspeed stays under the airframe's maximum against the wind), descend at WPNAV_SPEED_DN to the
delivery altitude, release, climb back, fly the route backwards, RTL loiter and land (LAND_SPEED below
LAND_ALT_LOW). The wind is the one in force when each phase starts, so a drone caught out by the weather
hold pays for it. Accelerations and the slow-down near waypoints are left out (seconds per trip).

Safety is checked here, apart from the planner: every flown leg against the zones in force while the
drone is on it (the stadium TFR switches on and off during the day), and every trip's measured energy
against the pack's reserve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bench.day_world import at, wind_at
from controller.feasibility import LAUNCH_PREP_S
from controller.station import StationConfig
from geofences import ZoneIndex
from sitl.copter.physics import MAX_AIRSPEED_MPS, wind_vector
from sitl.copter.power import flight_power_w
from vehicles.spec import VehicleKind, VehicleSpec

CLIMB_MPS, DESCENT_MPS = 2.5, 1.5  # WPNAV_SPEED_UP / _DN
GROUND_SPEED_MPS = 22.0  # WPNAV_SPEED of the delivery airframe
LAND_SPEED_MPS, LAND_ALT_LOW_M = 0.5, 10.0
RTL_LOITER_S, RELEASE_S = 5.0, 2.0


@dataclass
class Trip:
    """One drone or robot trip as it happened."""

    order_id: str
    vehicle_id: str
    kind: VehicleKind
    launch_s: float
    drop_s: float  # package at the door
    back_s: float  # vehicle back at the station
    route_xy: np.ndarray  # (n, 2) metres in the station frame, station first, destination last
    predicted_wh: float
    measured_wh: float
    spec: VehicleSpec
    legs: list[tuple[float, float, int]] = field(default_factory=list)  # (t0, t1, index of the leg's start)


def route_xy(config: StationConfig, waypoints: list[tuple[float, float]]) -> np.ndarray:
    """Waypoints (lon, lat) in the station's metric frame."""
    pts = np.asarray(waypoints, dtype=float)
    x, y = config.frame.to_local(pts[:, 0], pts[:, 1])
    return np.column_stack([x, y])


def _airspeed(direction: tuple[float, float], t_s: float) -> tuple[float, float]:
    """(ground speed, airspeed) on a leg along unit vector `direction` (east, north) at time t."""
    wn, we = wind_vector(*wind_at(t_s))
    along = direction[1] * wn + direction[0] * we
    disc = along * along - (wn * wn + we * we) + MAX_AIRSPEED_MPS**2
    cap = along + math.sqrt(disc) if disc > 0.0 else 0.0
    g = min(GROUND_SPEED_MPS, cap)
    return g, math.hypot(g * direction[1] - wn, g * direction[0] - we)


def fly(
    order_id: str,
    vehicle_id: str,
    spec: VehicleSpec,
    payload_kg: float,
    xy: np.ndarray,
    launch_s: float,
    predicted_wh: float,
) -> Trip:
    """Fly a delivery out along `xy` and back along it reversed, measuring energy with the sim's model."""
    assert spec.cruise_altitude_m is not None and spec.delivery_altitude_m is not None
    h, h_drop = spec.cruise_altitude_m, spec.cruise_altitude_m - spec.delivery_altitude_m
    t = launch_s + LAUNCH_PREP_S[VehicleKind.DRONE]
    joules = 0.0
    legs: list[tuple[float, float, int]] = []

    def hover(mass: float, seconds: float, climb: float) -> None:
        nonlocal t, joules
        speed, _ = wind_at(t)
        joules += flight_power_w(mass, speed, climb) * seconds
        t += seconds

    def cruise(mass: float, path: np.ndarray, reverse: bool) -> None:
        nonlocal t, joules
        n = len(path) - 1
        for k in range(n):
            a, b = path[k], path[k + 1]
            length = float(np.hypot(*(b - a)))
            if length < 1e-6:
                continue
            g, air = _airspeed(((b - a) / length).tolist(), t)  # type: ignore[arg-type]
            seconds = length / g
            joules += flight_power_w(mass, air, 0.0) * seconds
            legs.append((t, t + seconds, (n - 1 - k) if reverse else k))
            t += seconds

    loaded, empty = spec.empty_mass_kg + payload_kg, spec.empty_mass_kg
    hover(loaded, h / CLIMB_MPS, CLIMB_MPS)
    cruise(loaded, xy, reverse=False)
    hover(loaded, h_drop / DESCENT_MPS, -DESCENT_MPS)
    hover(loaded, RELEASE_S, 0.0)
    drop = t
    hover(empty, h_drop / CLIMB_MPS, CLIMB_MPS)
    cruise(empty, xy[::-1], reverse=True)
    hover(empty, RTL_LOITER_S, 0.0)
    hover(empty, (h - LAND_ALT_LOW_M) / DESCENT_MPS, -DESCENT_MPS)
    hover(empty, LAND_ALT_LOW_M / LAND_SPEED_MPS, -LAND_SPEED_MPS)
    return Trip(
        order_id,
        vehicle_id,
        VehicleKind.DRONE,
        launch_s,
        drop,
        t,
        xy,
        predicted_wh,
        joules / 3600.0,
        spec,
        legs,
    )


def drive(
    order_id: str, vehicle_id: str, spec: VehicleSpec, xy: np.ndarray, launch_s: float, predicted_wh: float
) -> Trip:
    """A robot's trip at walking pace along its sidewalk route (its energy is the model's: no second one)."""
    length = float(np.hypot(*np.diff(xy, axis=0).T).sum())
    t0 = launch_s + LAUNCH_PREP_S[VehicleKind.ROBOT]
    one_way = length / spec.cruise_speed_mps
    n = len(xy) - 1
    legs = [(t0, t0 + one_way, k) for k in range(n)] + [(t0 + one_way, t0 + 2 * one_way, k) for k in range(n)]
    return Trip(
        order_id,
        vehicle_id,
        VehicleKind.ROBOT,
        launch_s,
        t0 + one_way,
        t0 + 2 * one_way,
        xy,
        predicted_wh,
        predicted_wh,
        spec,
        legs,
    )


def lower_bound_s(kind: str, distance_m: float, spec: VehicleSpec | None, van_speed_mps: float) -> float:
    """The physical floor of a delivery: straight line at top speed, plus takeoff and descent for drones."""
    if kind == "drone" and spec is not None:
        assert spec.cruise_altitude_m is not None and spec.delivery_altitude_m is not None
        h = spec.cruise_altitude_m
        return (
            distance_m / spec.cruise_speed_mps + h / CLIMB_MPS + (h - spec.delivery_altitude_m) / DESCENT_MPS
        )
    if kind == "robot" and spec is not None:
        return distance_m / spec.cruise_speed_mps
    return distance_m / van_speed_mps


class SafetyCheck:
    """Zone entries along flown and driven legs, checked with indices built apart from the planner's."""

    def __init__(self, config: StationConfig, day_end_s: float) -> None:
        self.config = config
        cuts = {0.0, day_end_s}
        for zone in config.zones:
            for edge in (zone.active_from, zone.active_until):
                if edge is not None:
                    s = (edge - at(0.0)).total_seconds()
                    if 0.0 < s < day_end_s:
                        cuts.add(s)
        self.cuts = sorted(cuts)
        self._index: dict[tuple[str, int], ZoneIndex] = {}

    def index(self, kind: str, interval: int) -> ZoneIndex:
        key = (kind, interval)
        if key not in self._index:
            mid = 0.5 * (self.cuts[interval] + self.cuts[interval + 1])
            altitude = 60.0 if kind == "drone" else 0.0
            self._index[key] = ZoneIndex(
                self.config.zones, self.config.frame, kind, at=at(mid), altitude_m=altitude
            )
        return self._index[key]

    def zone_entries(self, trips: list[Trip]) -> int:
        """Trips with any leg (or part of a leg) inside a zone in force at that moment."""
        pieces: dict[tuple[str, int], list[tuple[int, float, float, float, float]]] = {}
        for n, trip in enumerate(trips):
            kind = str(trip.kind)
            for t0, t1, k in trip.legs:
                a, b = trip.route_xy[k], trip.route_xy[k + 1]
                for i in range(len(self.cuts) - 1):
                    lo, hi = max(t0, self.cuts[i]), min(t1, self.cuts[i + 1])
                    if hi <= lo and not (t0 == t1 and self.cuts[i] <= t0 < self.cuts[i + 1]):
                        continue
                    span = max(t1 - t0, 1e-9)
                    f0, f1 = (lo - t0) / span, (hi - t0) / span
                    p, q = a + (b - a) * f0, a + (b - a) * f1
                    pieces.setdefault((kind, i), []).append((n, p[0], p[1], q[0], q[1]))
        bad: set[int] = set()
        for key, rows in pieces.items():
            arr = np.asarray(rows)
            ok = self.index(*key).segments_clear_xy(arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4])
            bad.update(int(n) for n in arr[~ok, 0])
        return len(bad)


def below_reserve(trips: list[Trip]) -> int:
    """Drone trips whose measured energy ate into the reserve (each leaves on a freshly swapped pack)."""
    return sum(
        1
        for t in trips
        if t.kind is VehicleKind.DRONE and t.measured_wh > t.spec.battery_wh * (1.0 - t.spec.reserve_fraction)
    )
