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


XY = tuple[float, float]


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
    # Where each leg really ran (t0, t1, x0, y0, x1, y1): from the pad, through the holding point, to the
    # landing pad. Empty: along `route_xy` as `legs` says (robots, and trips built by hand).
    leg_xy: list[tuple[float, float, float, float, float, float]] = field(default_factory=list)
    # Drones: the flown track, knots (t, x, y, alt above the station's ground) and the phase of each piece.
    knots: np.ndarray | None = None
    phases: tuple[str, ...] = ()
    liftoff_s: float | None = None
    hold_at_s: float | None = None  # reached the holding point (None: the flight had none)
    hold_s: float = 0.0  # waited there


@dataclass(frozen=True)
class Program:
    """What a drone is told to fly: the mission (pad, layers, waypoints, holding point, landing pad), when to
    lift off, and how long to wait at the holding point (None: fly through it, or no holding point)."""

    liftoff_s: float
    pad_xy: XY
    alt_out_m: float
    route_out: np.ndarray  # (n, 2) after the pad, destination last
    alt_back_m: float
    route_back: np.ndarray  # (m, 2) between the destination and the holding point (or the landing pad)
    hold_xy: XY | None
    landing_xy: XY
    leave_hold_s: float | None = None


def station_program(xy: np.ndarray, launch_s: float, spec: VehicleSpec) -> Program:
    """The mission without airspace planning: up from the station's centre at the spec's one cruise
    altitude, out and back along the route, down on the centre; lift-off after the launch preparation."""
    assert spec.cruise_altitude_m is not None
    h = spec.cruise_altitude_m
    home = (float(xy[0, 0]), float(xy[0, 1]))
    return Program(
        launch_s + LAUNCH_PREP_S[VehicleKind.DRONE], home, h, xy[1:], h, xy[::-1][1:-1], None, home
    )


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


class _Flown:
    """The drone's state while a flight is flown: clock, position, energy, and the track so far."""

    def __init__(self, t: float, xy: XY) -> None:
        self.t, self.x, self.y, self.z = t, xy[0], xy[1], 0.0
        self.joules = 0.0
        self.knots: list[tuple[float, float, float, float]] = [(t, self.x, self.y, 0.0)]
        self.phases: list[str] = []
        self.legs: list[tuple[float, float, float, float, float, float]] = []

    def _to(self, x: float, y: float, z: float, seconds: float, phase: str) -> None:
        self.t += seconds
        self.x, self.y, self.z = x, y, z
        self.knots.append((self.t, x, y, z))
        self.phases.append(phase)

    def vertical(self, mass: float, z_to: float, rate: float, phase: str) -> None:
        """Climb or descend in place at `rate` (a hover when already there)."""
        seconds = abs(z_to - self.z) / rate
        if seconds <= 0.0:
            return
        speed, _ = wind_at(self.t)
        self.joules += flight_power_w(mass, speed, rate if z_to > self.z else -rate) * seconds
        self._to(self.x, self.y, z_to, seconds, phase)

    def hover(self, mass: float, seconds: float, phase: str) -> None:
        if seconds <= 0.0:
            return
        speed, _ = wind_at(self.t)
        self.joules += flight_power_w(mass, speed, 0.0) * seconds
        self._to(self.x, self.y, self.z, seconds, phase)

    def leg(self, mass: float, x: float, y: float, phase: str) -> None:
        """Straight to (x, y) at WPNAV_SPEED ground speed, slower when the airframe cannot make it."""
        length = math.hypot(x - self.x, y - self.y)
        if length < 1e-6:
            return
        g, air = _airspeed(((x - self.x) / length, (y - self.y) / length), self.t)
        seconds = length / g
        self.joules += flight_power_w(mass, air, 0.0) * seconds
        self.legs.append((self.t, self.t + seconds, self.x, self.y, x, y))
        self._to(x, y, self.z, seconds, phase)


def fly(
    order_id: str,
    vehicle_id: str,
    spec: VehicleSpec,
    payload_kg: float,
    xy: np.ndarray,
    launch_s: float,
    predicted_wh: float,
    program: Program | None = None,
) -> Trip:
    """Fly a delivery as the drone is told (`program`; default: `station_program`), measuring its energy
    with the simulator's model and recording its track."""
    assert spec.delivery_altitude_m is not None
    p = program or station_program(xy, launch_s, spec)
    loaded, empty = spec.empty_mass_kg + payload_kg, spec.empty_mass_kg
    f = _Flown(p.liftoff_s, p.pad_xy)
    f.vertical(loaded, p.alt_out_m, CLIMB_MPS, "climb")
    for x, y in p.route_out:
        f.leg(loaded, float(x), float(y), "cruise_out")
    f.vertical(loaded, spec.delivery_altitude_m, DESCENT_MPS, "descent")
    f.hover(loaded, RELEASE_S, "drop")
    drop = f.t
    f.vertical(empty, p.alt_back_m, CLIMB_MPS, "climb_back")
    for x, y in p.route_back:
        f.leg(empty, float(x), float(y), "cruise_back")
    hold_at = None
    if p.hold_xy is not None:
        f.leg(empty, *p.hold_xy, "cruise_back")
        hold_at = f.t
        f.hover(empty, max(0.0, (f.t if p.leave_hold_s is None else p.leave_hold_s) - f.t), "hold")
    held = f.t - hold_at if hold_at is not None else 0.0
    f.leg(empty, *p.landing_xy, "final")
    f.hover(empty, RTL_LOITER_S, "approach")
    f.vertical(empty, min(LAND_ALT_LOW_M, f.z), DESCENT_MPS, "approach")
    f.vertical(empty, 0.0, LAND_SPEED_MPS, "landing")
    legs = [(t0, t1, 0) for t0, t1, *_ in f.legs]
    return Trip(
        order_id,
        vehicle_id,
        VehicleKind.DRONE,
        launch_s,
        drop,
        f.t,
        xy,
        predicted_wh,
        f.joules / 3600.0,
        spec,
        legs,
        f.legs,
        np.asarray(f.knots, dtype=float),
        tuple(f.phases),
        p.liftoff_s,
        hold_at,
        held,
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
            for t0, t1, ax, ay, bx, by in _legs_xy(trip):
                a, b = np.array([ax, ay]), np.array([bx, by])
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


def _legs_xy(trip: Trip) -> list[tuple[float, float, float, float, float, float]]:
    """Every leg of a trip as (t0, t1, x0, y0, x1, y1)."""
    if trip.leg_xy:
        return trip.leg_xy
    r = trip.route_xy
    return [(t0, t1, r[k][0], r[k][1], r[k + 1][0], r[k + 1][1]) for t0, t1, k in trip.legs]


def below_reserve(trips: list[Trip]) -> int:
    """Drone trips whose measured energy ate into the reserve (each leaves on a freshly swapped pack)."""
    return sum(
        1
        for t in trips
        if t.kind is VehicleKind.DRONE and t.measured_wh > t.spec.battery_wh * (1.0 - t.spec.reserve_fraction)
    )
