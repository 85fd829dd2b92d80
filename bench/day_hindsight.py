"""The hindsight decider: the same day decided knowing every order in advance, as the anchor for the others.

An online decider learns of an order when it arrives; this one is handed the whole day at 07:00 and solves
it at once, so the gap between it and the controller is what not knowing the future costs (plus whatever
the controller could still do better). It keeps every rule the others keep: an order cannot leave before
it arrives; the same Planner feasibility (payload, radius, zones in force, wind, energy with reserve) is
asked at each real launch; drones do not launch in the weather hold; the same turnarounds; flights flown
and measured as `day_flight` flies them; vans routed by `plan_van_routes` (PyVRP) at the same waves with
the same 4 h limit. It is a lower bound *in spirit*, not a proof: the schedule below is a heuristic, and
its drones do not go through the airspace (no launch is ever refused or delayed for separation), which
only makes it faster.

How it decides, once, for the whole day:

1. Options: for every order, at its arrival (after the hold for drones), the Planner's answer for one idle
   drone and for one idle robot; each feasible one is flown or driven to learn its time to the door and
   the vehicle's busy time (trip plus turnaround).
2. One scheduling solve over the day (`HindsightDay.solve`): a linear programme over 10-minute buckets,
   each order by a drone or robot leaving in some bucket after it arrives, or on some van wave after it
   arrives, or carried over; each trip holding its vehicle for its real busy time, each wave's vans for
   their hours; minimising the minutes to the door (two hours more for a missed deadline, twelve for
   an order carried over). Its value is a lower bound on that cost *for its fluid model*; its fractions are
   rounded to each order's heaviest choice.
3. The day is then played on the clock: a free drone or robot takes, among the orders assigned to its
   kind that have arrived, the one the LP launches first (one due within 30 min first), asking the
   Planner at that moment (if the wind has turned against it, the order joins the van queue); a free one
   with none takes an order waiting for the next van wave that it can carry; van orders join the van queue
   on arrival. (Moving queued orders to a van at each wave when their turn looked late was tried: more
   orders carried over at 2,000, the vans being full already.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from bench import day_world as w
from bench.day_flight import Trip, drive, fly, route_xy
from bench.day_sim import TICK_S, Day, DayResult, Outcome
from controller.assignment import Planner
from controller.fleet import FleetVehicle
from controller.station import StationConfig
from geofences import geodesic_distance_m
from vehicles.spec import VehicleKind

KINDS = (VehicleKind.DRONE, VehicleKind.ROBOT)
LATE_PENALTY_S = 2 * 3600.0  # a missed deadline weighs as two hours more at the door
VAN_LOAD_S = 600.0  # from the wave to the van leaving (as `Day._van_wave` treats deadlines)
VAN_INTO_ROUTE_S = 45 * 60.0  # typical time from the van's departure to a stop other than the first
CARRIED_OVER_S = 12 * 3600.0  # the cost of an order no wave can take any more
BUCKET_S = 600.0  # the LP's time step
WINDOW_S = 3 * 3600.0  # an order may leave on a drone or robot at most this long after it arrives
VAN_SERVICE_S = 120.0  # at the door, as `plan_van_routes` by default
VAN_DRIVE_SHARE = 0.15  # of a stop's own drive out and back, the part its route spends on it, roughly
URGENT_S = 1800.0  # an order due within this much slack (after its trip) jumps its kind's queue


@dataclass(frozen=True)
class Option:
    """One way to carry an order: door after `to_door_s` from launch; the vehicle busy for `busy_s`."""

    to_door_s: float
    busy_s: float


class HindsightDay(Day):
    """A day decided once, at its start, knowing every order (see the module docstring)."""

    def __init__(
        self,
        orders: list[w.Order],
        fleet: w.Fleet,
        config: StationConfig,
        *,
        van_time_limit_s: float = 2.0,
        seed: int = 1,
    ) -> None:
        super().__init__("naive", orders, fleet, config, van_time_limit_s=van_time_limit_s, seed=seed)
        self.decider = "hindsight"  # type: ignore[assignment]
        self.result = DayResult("hindsight", orders, {})
        self.assigned: dict[VehicleKind, list[tuple[float, str]]] = {k: [] for k in KINDS}
        self.by_van: list[str] = []
        self.solve_s = 0.0
        self.options: dict[str, dict[VehicleKind, Option]] = {}
        self.lp_bound_s = float("nan")
        self.drive_s = np.zeros(0)
        self.index: dict[str, int] = {}

    # --- the one solve ------------------------------------------------------------------------------------

    def _options(self) -> dict[str, dict[VehicleKind, Option]]:
        """Each order's drone and robot option at its arrival (drones: after the hold), flown as the day
        does."""
        protos = {
            k: next(v for v in self.vehicles.values() if v.kind is k).after_trip(free_in_s=0.0, charge=1.0)
            for k in KINDS
            if any(v.kind is k for v in self.vehicles.values())
        }
        turnaround = {
            VehicleKind.DRONE: self.config.drone_turnaround_s,
            VehicleKind.ROBOT: self.config.robot_turnaround_s,
        }
        out: dict[str, dict[VehicleKind, Option]] = {}
        planners: dict[float, Planner] = {}
        for o in self.orders:
            out[o.id] = {}
            for kind, proto in protos.items():
                t = w.HOLD[1] if kind is VehicleKind.DRONE and w.in_hold(o.t_s) else o.t_s
                # One Planner per instant for both kinds (a Planner indexes the zones once per kind, and the
                # next one reuses its indexes while the same zones are in force).
                if t not in planners:
                    planners = {t: self._planner_at(t)}
                trip = self._try(planners[t], o, proto, t)
                if trip is not None:
                    out[o.id][kind] = Option(trip.drop_s - t, trip.back_s - t + turnaround[kind])
        return out

    def _try(self, planner: Planner, order: w.Order, vehicle: FleetVehicle, t: float) -> Trip | None:
        """The trip `vehicle` would make for `order` launched at `t`, or None when the Planner says no."""
        (d,) = planner.plan([order.demand()], [vehicle], max_rounds=1)
        if d.status != "assigned" or d.route is None or d.energy_wh is None:
            return None
        xy = route_xy(self.config, d.route)
        if vehicle.kind is VehicleKind.DRONE:
            return fly(order.id, vehicle.id, vehicle.spec, order.weight_kg, xy, t, d.energy_wh)
        return drive(order.id, vehicle.id, vehicle.spec, xy, t, d.energy_wh)

    def solve(self) -> None:
        """Decide the whole day at once: which orders fly or drive and when, which go on which van wave.

        A linear programme (HiGHS) over the day in `BUCKET_S` buckets: x[j, k, b] = order j leaves on a
        vehicle of kind k in bucket b (not before it arrives, at most `WINDOW_S` after; no drone in the
        hold), v[j, w] = order j goes on van wave w (not before it arrives). Each order is carried once (or
        carried over: the last column). A trip keeps its vehicle busy for its real busy time: in every
        bucket, the trips overlapping it use at most the kind's vehicles. A wave's vans have the time until
        the next wave (at most a route's 4 h) each, and a van stop costs its service plus its share of the
        drive (`_van_stop_s`). Cost: seconds
        from arrival to the door, plus `LATE_PENALTY_S` for a missed deadline, plus `CARRIED_OVER_S` for an
        order left for tomorrow. The LP's fractions are rounded to each order's heaviest choice; the launch
        order within a kind follows the LP's mean launch time.
        """
        t0 = time.perf_counter()
        self.options = self._options()
        self.index = {o.id: j for j, o in enumerate(self.orders)}
        lon = np.array([o.lon for o in self.orders])
        lat = np.array([o.lat for o in self.orders])
        far = geodesic_distance_m(
            np.full(len(lon), self.config.lon), np.full(len(lon), self.config.lat), lon, lat
        )
        self.drive_s = far * 1.3 / self.fleet.van_speed_mps
        counts = {VehicleKind.DRONE: self.fleet.drones, VehicleKind.ROBOT: self.fleet.robots}
        n_buckets = int(np.ceil(w.DAY_END_S / BUCKET_S))
        waves = list(w.WAVES)

        cost: list[float] = []
        row_of: list[int] = []  # the order each column carries
        what: list[tuple[str, VehicleKind | None, float]] = []  # ("air", kind, launch) | ("van", None, wave)
        cap_rows: list[int] = []
        cap_cols: list[int] = []
        cap_vals: list[float] = []
        for j, o in enumerate(self.orders):
            due = o.deadline_s

            def late(door: float, due: float | None = due) -> float:
                return LATE_PENALTY_S if due is not None and door > due else 0.0

            for kind, opt in self.options[o.id].items():
                if not counts.get(kind):
                    continue
                first = int(o.t_s // BUCKET_S)
                for b in range(first, min(n_buckets, first + int(WINDOW_S // BUCKET_S) + 1)):
                    launch = max(o.t_s, b * BUCKET_S)
                    if kind is VehicleKind.DRONE and w.in_hold(launch):
                        continue
                    door = launch + opt.to_door_s
                    col = len(cost)
                    cost.append(door - o.t_s + late(door))
                    row_of.append(j)
                    what.append(("air", kind, launch))
                    end = launch + opt.busy_s
                    for tb in range(int(launch // BUCKET_S), min(n_buckets, int(np.ceil(end / BUCKET_S)))):
                        lo, hi = max(launch, tb * BUCKET_S), min(end, (tb + 1) * BUCKET_S)
                        if hi > lo:
                            cap_rows.append((0 if kind is VehicleKind.DRONE else 1) * n_buckets + tb)
                            cap_cols.append(col)
                            cap_vals.append((hi - lo) / BUCKET_S)
            for wi, wave in enumerate(waves):
                if wave < o.t_s:
                    continue
                door = wave + VAN_LOAD_S + self.drive_s[j] + VAN_INTO_ROUTE_S
                col = len(cost)
                cost.append(door - o.t_s + late(door))
                row_of.append(j)
                what.append(("van", None, float(wi)))
                cap_rows.append(2 * n_buckets + wi)
                cap_cols.append(col)
                cap_vals.append(self._van_stop_s(j))
            cost.append(w.DAY_END_S - o.t_s + CARRIED_OVER_S)
            row_of.append(j)
            what.append(("over", None, 0.0))
        n_cols = len(cost)
        a_eq = sparse.csr_matrix(
            (np.ones(n_cols), (row_of, np.arange(n_cols))), shape=(len(self.orders), n_cols)
        )
        a_ub = sparse.csr_matrix((cap_vals, (cap_rows, cap_cols)), shape=(2 * n_buckets + len(waves), n_cols))
        b_ub = np.concatenate(
            [
                np.full(n_buckets, float(counts[VehicleKind.DRONE])),
                np.full(n_buckets, float(counts[VehicleKind.ROBOT])),
                self.fleet.vans * np.minimum(w.VAN_ROUTE_MAX_S, np.diff([*waves, w.DAY_END_S])),
            ]
        )
        lp = linprog(
            np.array(cost),
            A_ub=a_ub,
            b_ub=b_ub,
            A_eq=a_eq,
            b_eq=np.ones(len(self.orders)),
            bounds=(0.0, 1.0),
            method="highs",
        )
        if lp.status != 0:
            raise RuntimeError(f"hindsight LP: {lp.message}")
        self.lp_bound_s = float(lp.fun)
        x = lp.x
        mass: dict[tuple[int, str, VehicleKind | None], float] = {}
        when: dict[tuple[int, VehicleKind | None], float] = {}
        for col in np.flatnonzero(x > 1e-6):
            j, (tag, kind, at) = row_of[col], what[col]
            key = (j, tag, kind)
            mass[key] = mass.get(key, 0.0) + x[col]
            if tag == "air":
                when[(j, kind)] = when.get((j, kind), 0.0) + x[col] * at
        best: dict[int, tuple[float, str, VehicleKind | None]] = {}
        for (j, tag, kind), m in mass.items():
            if j not in best or m > best[j][0]:
                best[j] = (m, tag, kind)
        for j, o in enumerate(self.orders):
            _, tag, kind = best.get(j, (0.0, "van", None))
            if tag == "air" and kind is not None:
                self.assigned[kind].append((when[(j, kind)] / mass[(j, "air", kind)], o.id))
            else:
                self.by_van.append(o.id)
        for kind in KINDS:
            self.assigned[kind].sort()
        self.solve_s = time.perf_counter() - t0

    def _van_stop_s(self, j: int) -> float:
        """A van stop's share of its route's time: the service and a part of the drive out and back."""
        return VAN_SERVICE_S + VAN_DRIVE_SHARE * 2.0 * float(self.drive_s[j])

    # --- the day on the clock -----------------------------------------------------------------------------

    def run(self) -> DayResult:
        """Play the solved day: launches as vehicles free up, van orders into the waves."""
        self.solve()
        van_at = {oid: self.by_id[oid].t_s for oid in self.by_van}
        van_left = sorted(self.by_van, key=van_at.__getitem__)
        waves = list(w.WAVES)
        t = 0.0
        while t <= w.DAY_END_S:
            t0 = time.perf_counter()
            while van_left and van_at[van_left[0]] <= t:
                self.van_queue.append(van_left.pop(0))
            for kind in KINDS:
                self._launch_kind(kind, t)
            self.result.plan_s += time.perf_counter() - t0
            if waves and t >= waves[0]:
                waves.pop(0)
                t0 = time.perf_counter()
                self._van_wave(t)
                self.result.van_s += time.perf_counter() - t0
            t += TICK_S
        for kind in KINDS:
            self.pending += [oid for _, oid in self.assigned[kind]]
        for oid in self.pending + self.van_queue + van_left:
            self.result.outcomes[oid] = Outcome("carried_over")
        self.result.plan_s += self.solve_s
        return self.result

    def _pick(self, kind: VehicleKind, t: float) -> int | None:
        """Index in the kind's queue of the next order to launch at `t`: an arrived order whose deadline is
        still reachable and less than `URGENT_S` away first, else the arrived order with the earliest slot."""
        best = None
        for k, (_, oid) in enumerate(self.assigned[kind]):
            o = self.by_id[oid]
            if o.t_s > t:
                continue
            if best is None:
                best = k
            opt = self.options[oid].get(kind)
            slack = None if o.deadline_s is None or opt is None else o.deadline_s - t - opt.to_door_s
            if slack is not None and 0.0 <= slack < URGENT_S:
                return k
        return best

    def _launch_kind(self, kind: VehicleKind, t: float) -> None:
        """Free vehicles of `kind` take their kind's arrived orders; a vehicle with none of those takes an
        arrived order waiting for the next van wave that it can carry (the plan is a plan: an idle drone
        does not wait while a package it could fly waits for a van)."""
        if kind is VehicleKind.DRONE and w.in_hold(t):
            return
        free = [v for v in self.vehicles.values() if v.kind is kind and self.busy_until[v.id] <= t]
        planner = None
        while free:
            k = self._pick(kind, t)
            if k is not None:
                oid = self.assigned[kind].pop(k)[1]
                from_van = False
            else:
                spare = [q for q in self.van_queue if kind in self.options[q]]
                if not spare:
                    return
                oid = min(spare, key=lambda q: self.options[q][kind].to_door_s)
                self.van_queue.remove(oid)
                from_van = True
            vehicle = free[0].after_trip(free_in_s=0.0, charge=1.0)
            planner = planner or self._planner_at(t)
            (d,) = planner.plan([self.by_id[oid].demand()], [vehicle], max_rounds=1)
            if d.status == "assigned":
                free.pop(0)
                self._launch(d, t)
            else:
                # The wind or a zone says no at this hour: by van (and not offered to this kind again).
                self.options[oid].pop(kind, None)
                self.van_queue.append(oid)
                if from_van:
                    continue


def simulate_hindsight(
    orders: list[w.Order], fleet: w.Fleet, config: StationConfig, *, van_time_limit_s: float, seed: int
) -> DayResult:
    """The hindsight decider over the day."""
    return HindsightDay(orders, fleet, config, van_time_limit_s=van_time_limit_s, seed=seed).run()
