"""One station day as a discrete-event simulation, with three deciders over the same orders.

The clock is simulated (no sockets, no sleeping): the controller ticks every `TICK_S`, vans leave in
waves (`day_world.WAVES`), and trips end when `day_flight` says they do. Deciders:

- `controller`: the real `controller.assignment.Planner` every tick over all pending orders and the
  fleet's state (busy until a trip's measured end plus the station's turnaround; drones held on the
  ground during the weather hold). "assigned" launches now, "queued" stays pending, "van" joins the van
  queue at once. Every drone launch goes through the station's airspace (`bench/day_air.py`): pads,
  layers, reserved volumes, late landing slots and holds; a launch the airspace refuses waits for the
  next tick.
- `no_airspace`: the same without the airspace: every drone from the station's centre at 60 m, launched
  as soon as it is assigned (what issue 16 measured; kept to show what deconfliction costs).
- `naive`: each order, when it arrives, to the quickest *idle* feasible vehicle (the same Planner
  feasibility over idle vehicles only, one round), else to the van queue.
- `vans`: every order to the van queue.

The van queue is routed with `controller.vans.plan_van_routes` (PyVRP) at each wave, over the vans
back at the depot; what a wave cannot fit waits for the next. Anything undelivered at the end of the
day is carried over.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from bench import day_world as w
from bench.day_air import AirspaceDay
from bench.day_flight import Trip, drive, fly, route_xy
from controller.assignment import Decision, Planner
from controller.fleet import FleetVehicle
from controller.service.core import REFUSALS_IN_A_ROW, REFUSALS_PER_PAD
from controller.station import StationConfig, WeatherConfig
from controller.vans import Van, VanStop, plan_van_routes
from vehicles.spec import VehicleKind

TICK_S = 60.0
HORIZON_S = 2 * 3600.0  # the controller queues for a drone or robot at most this far ahead, then vans
Decider = Literal["controller", "no_airspace", "naive", "vans"]


@dataclass
class Outcome:
    """How one order ended: by which mode, when delivered (None if carried over)."""

    mode: str  # drone | robot | van | carried_over
    delivered_s: float | None = None
    vehicle_id: str | None = None


@dataclass
class DayResult:
    """Everything the KPIs are computed from."""

    decider: str
    orders: list[w.Order]
    outcomes: dict[str, Outcome]
    trips: list[Trip] = field(default_factory=list)
    van_km: float = 0.0
    van_stops: int = 0
    van_routes: int = 0
    van_busy: list[tuple[float, float]] = field(default_factory=list)  # (departure, back) per route
    plan_s: float = 0.0  # wall time spent deciding (Planner and airspace calls)
    van_s: float = 0.0  # wall time spent in PyVRP
    air: AirspaceDay | None = None  # the controller's airspace, when it had one

    def minutes(self, order: w.Order) -> float:
        """Order to door in minutes; infinite for an order carried over to the next day."""
        done = self.outcomes[order.id].delivered_s
        return float("inf") if done is None else (done - order.t_s) / 60.0


class Day:
    """A simulated day for one decider."""

    def __init__(
        self,
        decider: Decider,
        orders: list[w.Order],
        fleet: w.Fleet,
        config: StationConfig,
        *,
        van_time_limit_s: float = 2.0,
        seed: int = 1,
        horizon_s: float = HORIZON_S,
    ) -> None:
        self.decider = decider
        self.orders = orders
        self.by_id = {o.id: o for o in orders}
        self.fleet = fleet
        self.config = config
        self.van_time_limit_s = van_time_limit_s
        self.seed = seed
        self.horizon_s = horizon_s
        self.vehicles = {v.id: v for v in fleet.vehicles()}
        self.busy_until = dict.fromkeys(self.vehicles, 0.0)
        self.van_back = {f"v{k:02d}": 0.0 for k in range(1, fleet.vans + 1)}
        self.pending: list[str] = []
        self.van_queue: list[str] = []
        self.late_ok: set[str] = set()  # van stops whose deadline could not be met: routed without it
        self.result = DayResult(decider, orders, {})
        self._planner: Planner | None = None
        self.air = AirspaceDay(config, w.airspace_config(config, fleet)) if decider == "controller" else None
        self._retry = False  # a launch the airspace refused: plan again at the next tick

    # --- the clock --------------------------------------------------------------------------------------

    def run(self) -> DayResult:
        """Advance tick by tick to the end of the day; returns what happened."""
        import time

        times = [o.t_s for o in self.orders]
        waves = list(w.WAVES)
        t, seen = 0.0, 0
        dirty = True
        while t <= w.DAY_END_S:
            upto = bisect.bisect_right(times, t)
            arrivals = self.orders[seen:upto]
            seen = upto
            t0 = time.perf_counter()
            self._airspace_until(t)
            if self.decider == "vans":
                self.van_queue += [o.id for o in arrivals]
            elif self.decider == "naive":
                for order in arrivals:
                    self._naive(order)
            else:
                self.pending += [o.id for o in arrivals]
                freed = any(t - TICK_S < b <= t for b in self.busy_until.values())
                changed = w.wind_at(t) != w.wind_at(t - TICK_S) or w.in_hold(t) != w.in_hold(t - TICK_S)
                if self.pending and (arrivals or freed or changed or dirty or self._retry):
                    self._retry = False
                    self._controller_tick(t)
                dirty = False
            self.result.plan_s += time.perf_counter() - t0
            if waves and t >= waves[0]:
                waves.pop(0)
                t0 = time.perf_counter()
                self._van_wave(t)
                self.result.van_s += time.perf_counter() - t0
            t += TICK_S
        self._airspace_until(float("inf"))
        if self.air is not None:
            self.result.air = self.air
        for oid in self.pending + self.van_queue:
            self.result.outcomes[oid] = Outcome("carried_over")
        return self.result

    # --- deciders -----------------------------------------------------------------------------------------

    def _fleet_state(self, t: float, *, idle_only: bool) -> list[FleetVehicle]:
        out = []
        for vid, v in self.vehicles.items():
            free = max(0.0, self.busy_until[vid] - t)
            if v.kind is VehicleKind.DRONE and w.in_hold(t):
                free = max(free, w.HOLD[1] - t)
            if idle_only and free > 0.0:
                continue
            out.append(v.after_trip(free_in_s=free, charge=1.0))
        return out

    def _planner_at(self, t: float) -> Planner:
        speed, direction = w.wind_at(t)
        self.config.weather = WeatherConfig(wind_speed_mps=speed, wind_from_deg=direction)
        self._planner = Planner(self.config, at=w.at(t), horizon_s=self.horizon_s, previous=self._planner)
        return self._planner

    def _controller_tick(self, t: float) -> None:
        demands = [self.by_id[oid].demand() for oid in self.pending]
        decisions = self._planner_at(t).plan(demands, self._fleet_state(t, idle_only=False))
        keep = []
        # As the service's pass (controller/service/core.py): after REFUSALS_PER_PAD airspace refusals for
        # drones that may take off from the same pads (here any pad: one key), or REFUSALS_IN_A_ROW in a
        # row, the drones left wait for the next tick without a search. Its time budget per pass is not
        # mirrored: a wall-clock limit would make the day depend on the machine.
        refused = in_a_row = 0
        for d in decisions:
            if d.status == "assigned":
                drone = self.vehicles[d.vehicle_id].kind is VehicleKind.DRONE  # type: ignore[index]
                capped = refused >= REFUSALS_PER_PAD or in_a_row >= REFUSALS_IN_A_ROW
                if self.air is not None and drone and capped:
                    keep.append(d.package_id)  # the airspace is full for this tick: the package waits
                    self._retry = True
                elif not self._launch(d, t):
                    keep.append(d.package_id)  # the airspace is busy: the package waits
                    self._retry = True
                    refused, in_a_row = refused + 1, in_a_row + 1
                elif drone:
                    in_a_row = 0
            elif d.status == "van":
                self.van_queue.append(d.package_id)
            else:
                keep.append(d.package_id)
        self.pending = keep

    def _naive(self, order: w.Order) -> None:
        fleet = self._fleet_state(order.t_s, idle_only=True)
        if fleet:
            (d,) = self._planner_at(order.t_s).plan([order.demand()], fleet, max_rounds=1)
            if d.status == "assigned":
                self._launch(d, order.t_s)
                return
        self.van_queue.append(order.id)

    def _airspace_until(self, t: float) -> None:
        """Drones in the air report and land up to `t`; a held drone keeps its vehicle busy longer."""
        if self.air is None:
            return
        for trip in self.air.advance(t):
            self.busy_until[trip.vehicle_id] = trip.back_s + self.config.drone_turnaround_s
            self.result.outcomes[trip.order_id].delivered_s = trip.drop_s

    def _launch(self, d: Decision, t: float) -> bool:
        """Send the vehicle; False when the airspace cannot take the drone flight in time."""
        assert d.vehicle_id is not None and d.route is not None and d.energy_wh is not None
        order = self.by_id[d.package_id]
        vehicle = self.vehicles[d.vehicle_id]
        xy = route_xy(self.config, d.route)
        if vehicle.kind is VehicleKind.DRONE:
            if self.air is not None:
                flown = self.air.launch(order, vehicle.id, vehicle.spec, d.route, xy, t, d.energy_wh)
                if flown is None:
                    return False
                trip = flown
            else:
                trip = fly(order.id, vehicle.id, vehicle.spec, order.weight_kg, xy, t, d.energy_wh)
            turnaround = self.config.drone_turnaround_s
        else:
            trip = drive(order.id, vehicle.id, vehicle.spec, xy, t, d.energy_wh)
            turnaround = self.config.robot_turnaround_s
        self.busy_until[vehicle.id] = trip.back_s + turnaround
        self.result.trips.append(trip)
        self.result.outcomes[order.id] = Outcome(str(vehicle.kind), trip.drop_s, vehicle.id)
        return True

    # --- vans ---------------------------------------------------------------------------------------------

    def _van_wave(self, t: float) -> None:
        vans_here = [vid for vid, back in self.van_back.items() if back <= t]
        if not self.van_queue or not vans_here:
            return
        end = min(t + w.VAN_ROUTE_MAX_S, w.DAY_END_S)
        vans = [
            Van(
                vid,
                self.fleet.van_capacity_kg,
                speed_mps=self.fleet.van_speed_mps,
                shift_start=w.at(t),
                shift_end=w.at(end),
            )
            for vid in vans_here
        ]
        stops = []
        for oid in self.van_queue:
            o = self.by_id[oid]
            due = o.deadline_s if o.deadline_s is not None and oid not in self.late_ok else None
            if due is not None and due < t + 600.0:  # cannot be met any more: deliver, late
                self.late_ok.add(oid)
                due = None
            stops.append(VanStop(oid, o.lat, o.lon, o.weight_kg, deadline=None if due is None else w.at(due)))
        plan = plan_van_routes(
            (self.config.lat, self.config.lon),
            stops,
            vans,
            start=w.at(t),
            time_limit_s=self.van_time_limit_s,
            seed=self.seed,
        )
        served: set[str] = set()
        for route in plan.routes:
            assert route.back_at is not None and route.departure is not None
            self.van_back[route.van_id] = (route.back_at - w.at(0.0)).total_seconds()
            self.result.van_busy.append(
                ((route.departure - w.at(0.0)).total_seconds(), self.van_back[route.van_id])
            )
            self.result.van_km += route.distance_m / 1000.0
            self.result.van_stops += len(route.stops)
            self.result.van_routes += 1
            for oid, arrival in zip(route.stops, route.arrivals, strict=True):
                self.result.outcomes[oid] = Outcome(
                    "van", (arrival - w.at(0.0)) / timedelta(seconds=1), route.van_id
                )
                served.add(oid)
        for oid, reason in plan.unassigned_reasons.items():
            if reason.startswith("deadline"):
                self.late_ok.add(oid)
        self.van_queue = [oid for oid in self.van_queue if oid not in served]


def simulate(
    decider: Decider, orders: list[w.Order], fleet: w.Fleet, config: StationConfig, **kw: object
) -> DayResult:
    """Run one decider over the day."""
    return Day(decider, orders, fleet, config, **kw).run()  # type: ignore[arg-type]
