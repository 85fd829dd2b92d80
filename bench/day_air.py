"""The station's airspace in the simulated day: every drone flight planned, followed and landed through
`controller.airspace.StationAirspace`, as the service does it.

A launch is `plan`ned (a later launch, or `airspace_busy`: the package waits for the next tick); the drone
then flies the bench's own kinematic model (`day_flight.fly`) of what it was told: its pad, its layers, its
waypoints, its holding point and its landing pad. Along the way its position goes to `on_progress` every
`PROGRESS_S` seconds, when it comes within `landing_book_m` of home on the way back, and when it reaches its
holding point; there it waits as long as it is told (until its landing is booked, and then until the slot).
`finish` frees its pad once it is down and clear. Events run in the order of the simulated clock, before
each planning tick.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np

from bench import day_world as w
from bench.day_flight import CLIMB_MPS, DESCENT_MPS, GROUND_SPEED_MPS, RELEASE_S, Program, Trip, fly
from controller.airspace import AirspaceBusy, AirspaceConfig, AirspacePlan, StationAirspace
from controller.feasibility import LAUNCH_PREP_S
from controller.station import StationConfig
from vehicles.spec import VehicleKind, VehicleSpec

PROGRESS_S = 30.0  # telemetry the controller acts on, simulated this often
HOLD_POLL_S = 10.0  # a drone waiting for its landing slot asks again this often


def _same(a: Program, b: Program) -> bool:
    """Two programs tell the drone the same thing."""
    for f in dataclasses.fields(Program):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if not (np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y):
            return False
    return True


@dataclass
class _Live:
    """A flight in the air (or about to be): what it carries and what it was told."""

    trip: Trip
    spec: VehicleSpec
    payload_kg: float
    program: Program
    done: bool = False
    version: int = 0  # events pushed for an older schedule of this flight are dropped


@dataclass
class AirStats:
    """Counted by the day: packages that waited for airspace, and launches that had to wait."""

    busy: int = 0  # plan() refused with airspace_busy (the package waits for the next tick)
    busy_orders: set[str] = field(default_factory=set)
    delays_s: list[float] = field(default_factory=list)  # per launch: lift-off later than asked
    changed_launch: int = 0  # flights whose lift-off moved after planning (gave way to a late drone)
    retold: int = 0  # drones at their holding point told a new slot (gave way to a late drone)


class AirspaceDay:
    """Drones of one simulated day through `StationAirspace` (see the module docstring)."""

    def __init__(self, config: StationConfig, airspace: AirspaceConfig) -> None:
        self.frame = config.frame
        self.air = StationAirspace(
            airspace,
            config.lat,
            config.lon,
            ceiling_m=config.altitude_ceiling_m,
            frame=config.frame,
            epoch=w.DAY_START,
        )
        self.stats = AirStats()
        self._live: dict[str, _Live] = {}
        self._events: list[tuple[float, int, str, str, int]] = []  # (t, order, kind, flight, version)
        self._holding: dict[str, float] = {}  # flights waiting at their holding point: when they leave
        self._seq = itertools.count()

    # ---- launch ----------------------------------------------------------------------------------------

    def launch(
        self,
        order: w.Order,
        vehicle_id: str,
        spec: VehicleSpec,
        route: list[tuple[float, float]],
        xy: np.ndarray,
        t: float,
        predicted_wh: float,
    ) -> Trip | None:
        """Plan and fly one delivery decided at `t`; None when the airspace is busy (the package waits)."""
        assert spec.delivery_altitude_m is not None
        ready = t + LAUNCH_PREP_S[VehicleKind.DRONE]
        try:
            plan = self.air.plan(
                order.id,
                vehicle_id,
                [(lat, lon) for lon, lat in route],
                now_s=ready,
                speed_mps=GROUND_SPEED_MPS,
                climb_rate_mps=CLIMB_MPS,
                descent_rate_mps=DESCENT_MPS,
                delivery_alt_m=spec.delivery_altitude_m,
                dwell_s=RELEASE_S,
            )
        except AirspaceBusy:
            self.stats.busy += 1
            self.stats.busy_orders.add(order.id)
            return None
        self.stats.delays_s.append(plan.launch_at_s - ready)
        program = self._program(plan)
        trip = fly(order.id, vehicle_id, spec, order.weight_kg, xy, t, predicted_wh, program)
        self._live[order.id] = _Live(trip, spec, order.weight_kg, program)
        self._push(plan.launch_at_s, "lift", order.id)
        return trip

    def _program(
        self, plan: AirspacePlan, leave_hold_s: float | None = None, liftoff_s: float | None = None
    ) -> Program:
        """What the drone is told. `liftoff_s`: when it really lifted off, for a drone already flying: the
        plan's `launch_at_s` is then where the plan puts a launch to explain the drone's lateness, not when
        the drone left (`FlightIntent.progressed`)."""

        def xy(points: tuple[tuple[float, float], ...]) -> np.ndarray:
            if not points:
                return np.empty((0, 2))
            lat, lon = np.array(points).T
            return np.column_stack(self.frame.to_local(lon, lat))

        def one(lat: float, lon: float) -> tuple[float, float]:
            x, y = self.frame.to_local(lon, lat)
            return float(x), float(y)

        return Program(
            liftoff_s=plan.launch_at_s if liftoff_s is None else liftoff_s,
            pad_xy=one(plan.pad_lat, plan.pad_lon),
            alt_out_m=plan.cruise_alt_out_m,
            route_out=xy(plan.route_out),
            alt_back_m=plan.cruise_alt_back_m,
            route_back=xy(plan.route_back),
            hold_xy=one(plan.hold_lat, plan.hold_lon),
            landing_xy=one(plan.landing_lat, plan.landing_lon),
            leave_hold_s=leave_hold_s,
        )

    # ---- events ----------------------------------------------------------------------------------------

    def _push(self, t: float, kind: str, flight_id: str) -> None:
        version = self._live[flight_id].version
        heapq.heappush(self._events, (t, next(self._seq), kind, flight_id, version))

    def advance(self, until_s: float) -> list[Trip]:
        """Run every event up to `until_s`; the trips whose end moved (their vehicles are busy longer)."""
        changed: dict[str, Trip] = {}
        while self._events and self._events[0][0] <= until_s:
            t, _, kind, fid, version = heapq.heappop(self._events)
            live = self._live[fid]
            if live.done or version != live.version:
                continue
            before = {k: self._live[k].trip.back_s for k in (fid, *self._holding)}
            getattr(self, f"_on_{kind}")(t, fid, live)
            self._tell_holding(t)
            for k, back in before.items():
                if self._live[k].trip.back_s != back:
                    changed[k] = self._live[k].trip
        self.air.release_before(until_s - 600.0)
        return list(changed.values())

    def _tell_holding(self, t: float) -> None:
        """Drones waiting at their holding point hear at once when their slot moved (a longer wait, another
        pad: another flight's lateness made them give way), as a drone hears its next instruction."""
        for fid, leave in list(self._holding.items()):
            live = self._live[fid]
            if live.done or t >= leave:
                del self._holding[fid]
                continue
            plan = self.air.flight(fid)
            if not plan.landing_booked or plan.hold_until_s is None:
                continue
            told = self._program(plan, max(t, plan.hold_until_s), live.program.liftoff_s)
            if not _same(told, live.program):
                self.stats.retold += 1
                self._leave_hold(t, fid, live, plan)

    def _refly(self, live: _Live, program: Program) -> None:
        """Fly the trip again as now told; the same Trip object, so the day's lists stay current."""
        t = live.trip
        live.program = program
        again = fly(t.order_id, t.vehicle_id, live.spec, live.payload_kg, t.route_xy, t.launch_s,
                    t.predicted_wh, program)  # fmt: skip
        for f in dataclasses.fields(Trip):
            setattr(t, f.name, getattr(again, f.name))

    def _on_lift(self, t: float, fid: str, live: _Live) -> None:
        plan = self.air.flight(fid)
        program = self._program(plan)
        if not _same(
            program, live.program
        ):  # gave way to a late drone before lifting off: later, or elsewhere
            self.stats.changed_launch += 1
            self._refly(live, program)
            if plan.launch_at_s > t + 1e-6:
                self._push(plan.launch_at_s, "lift", fid)
                return
        trip = live.trip
        assert trip.hold_at_s is not None
        # Telemetry every PROGRESS_S, plus where it matters: back in range of the landing booking, and at
        # the holding point (where it waits for the answer).
        times = set(np.arange(t + PROGRESS_S, trip.hold_at_s, PROGRESS_S).tolist())
        times.add(self._in_range_s(trip, plan))
        for s in sorted(times):
            if s < trip.hold_at_s:
                self._push(s, "progress", fid)
        self._push(trip.hold_at_s, "hold", fid)

    def _in_range_s(self, trip: Trip, plan: AirspacePlan) -> float:
        """When the drone, on its way back, first comes within `landing_book_m` of its landing pad."""
        assert trip.knots is not None and trip.hold_at_s is not None
        ts = np.arange(trip.drop_s, trip.hold_at_s, 1.0)
        x, y = (np.interp(ts, trip.knots[:, 0], trip.knots[:, k]) for k in (1, 2))
        lx, ly = self.frame.to_local(plan.landing_lon, plan.landing_lat)
        near = np.flatnonzero(np.hypot(x - lx, y - ly) <= self.air.config.landing_book_m)
        return float(ts[near[0]]) if len(near) else trip.drop_s

    def _report(self, t: float, fid: str, live: _Live) -> None:
        knots = live.trip.knots
        assert knots is not None
        x, y, z = (float(np.interp(t, knots[:, 0], knots[:, k])) for k in (1, 2, 3))
        lon, lat = self.frame.to_wgs84(x, y)
        self.air.on_progress(fid, float(lat), float(lon), z, t)

    def _on_progress(self, t: float, fid: str, live: _Live) -> None:
        self._report(t, fid, live)

    def _on_hold(self, t: float, fid: str, live: _Live) -> None:
        """At the holding point: leave at the booked time, or wait and ask again."""
        self._report(t, fid, live)
        plan = self.air.flight(fid)
        if plan.landing_booked:
            self._leave_hold(t, fid, live, plan)
        else:
            self._refly(live, self._program(plan, t + HOLD_POLL_S, live.program.liftoff_s))
            self._push(t + HOLD_POLL_S, "hold", fid)

    def _leave_hold(self, t: float, fid: str, live: _Live, plan: AirspacePlan) -> None:
        """Wait until the booked slot (from `t` on), then the final leg, the approach and the landing."""
        assert plan.hold_until_s is not None
        live.version += 1  # what was scheduled after the holding point no longer holds
        self._refly(live, self._program(plan, max(t, plan.hold_until_s), live.program.liftoff_s))
        trip = live.trip
        assert trip.knots is not None
        leave = float(trip.knots[trip.phases.index("final"), 0])
        if leave > t:
            self._holding[fid] = leave
            self._push(leave, "progress", fid)
        for s in np.arange(leave + PROGRESS_S, trip.back_s, PROGRESS_S):
            self._push(float(s), "progress", fid)
        self._push(trip.back_s + self.air.margins.pad_clear_s, "down", fid)

    def _on_down(self, t: float, fid: str, live: _Live) -> None:
        self.air.finish(fid)
        live.done = True

    def finish(self) -> None:
        """End of the day: run what is left (drones still out land)."""
        self.advance(float("inf"))
