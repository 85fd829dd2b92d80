"""`plan_van_routes`: from packages and vans in SI units and datetimes to routes, via the integer solver.

Steps: validate; estimate road distances (`_geo`); build the integer model (metres, seconds from
`start`, grams, cm³); set aside what no van can do even alone (too heavy, too big, window or shift out of
reach of a direct trip), each with a reason; solve the rest with PyVRP; map routes back to package ids
and datetimes; check the plan against the original inputs before calling it feasible.

Reasons start with a stable code (`overweight`, `oversize`, `deadline`, `shift`, `no_room`), then words.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from controller.vans._geo import CIRCUITY, road_distance_matrix
from controller.vans._model import Van, VanPlan, VanRoute, VanStop
from controller.vans._solver import NO_LIMIT, solve_matrix
from controller.vans._validate import check_depot, check_start, check_stops, check_vans

GRAMS_PER_KG = 1000
CM3_PER_M3 = 1_000_000


def plan_van_routes(
    depot: tuple[float, float],
    stops: Sequence[VanStop],
    vans: Sequence[Van],
    *,
    start: datetime,
    time_limit_s: float = 2.0,
    seed: int = 1,
    circuity: float = CIRCUITY,
) -> VanPlan:
    """Routes for the vans from the depot (lat, lon) over `stops`, leaving no earlier than `start`.

    Minimises total road distance subject to each van's weight (and volume) capacity, each stop's
    `earliest`..`deadline` for the arrival, and each van's shift (leave after its start, back before its
    end). Stops that cannot be served are in `unassigned` with a reason; they are never dropped silently.
    """
    t0 = time.perf_counter()
    check_depot(depot)
    check_start(start, time_limit_s, circuity)
    check_stops(stops)
    check_vans(vans)

    n = len(stops)
    lat = np.array([depot[0], *(s.lat for s in stops)], dtype=np.float64)
    lon = np.array([depot[1], *(s.lon for s in stops)], dtype=np.float64)
    dist_m = road_distance_matrix(lat, lon, circuity)
    model = _IntegerModel(dist_m, stops, vans, start)

    reasons = model.screen()
    keep = [i for i in range(n) if stops[i].package_id not in reasons]
    usable = [k for k in range(len(vans)) if model.usable[k]]
    routes: list[VanRoute] = []
    solver_feasible = True
    if keep and usable:
        nodes = np.array([0, *(i + 1 for i in keep)])
        sub = np.ix_(nodes, nodes)
        sol = solve_matrix(
            model.dist[sub],
            [d[sub] for d in model.durations],
            model.demand[keep],
            [model.capacity[k] for k in usable],
            windows=model.windows[nodes],
            service=model.service[keep],
            shifts=[model.shifts[k] for k in usable],
            profiles=[model.profile[k] for k in usable],
            prizes=np.full(len(keep), 2 * int(model.dist[sub].max()) + 1),
            time_limit_s=time_limit_s,
            seed=seed,
        )
        solver_feasible = sol.feasible
        for r in sol.routes:
            van = vans[usable[r.vehicle]]
            idx = [keep[c - 1] for c in r.clients]
            path = [0, *(i + 1 for i in idx), 0]
            volumes = [v for i in idx if (v := stops[i].volume_m3) is not None]
            routes.append(
                VanRoute(
                    van_id=van.id,
                    stops=[stops[i].package_id for i in idx],
                    distance_m=float(dist_m[path[:-1], path[1:]].sum()),
                    duration_s=float(r.duration),
                    load_kg=float(sum(stops[i].weight_kg for i in idx)),
                    arrivals=[start + timedelta(seconds=s) for s in r.starts],
                    departure=start + timedelta(seconds=r.depart),
                    back_at=start + timedelta(seconds=r.back),
                    load_m3=float(sum(volumes)) if volumes else None,
                )
            )
        short = _shortage(stops, vans, keep, usable)
        for c in sol.unvisited:
            reasons[stops[keep[c - 1]].package_id] = "no_room: " + short
    elif keep:
        for i in keep:
            reasons[stops[i].package_id] = "shift: no van's shift is still open after the plan start"

    order = {v.id: k for k, v in enumerate(vans)}
    routes.sort(key=lambda r: order[r.van_id])
    unassigned = [s.package_id for s in stops if s.package_id in reasons]
    plan = VanPlan(
        routes=routes,
        unassigned=unassigned,
        distance_m=float(sum(r.distance_m for r in routes)),
        duration_s=float(sum(r.duration_s for r in routes)),
        solver_s=0.0,
        feasible=solver_feasible,
        unassigned_reasons={p: reasons[p] for p in unassigned},
    )
    plan.feasible = solver_feasible and not plan_violations(plan, stops, vans, start)
    plan.solver_s = time.perf_counter() - t0
    return plan


def plan_violations(
    plan: VanPlan, stops: Sequence[VanStop], vans: Sequence[Van], start: datetime
) -> list[str]:
    """Every broken promise of a plan, checked on the original inputs: capacity, windows, shifts, and each
    package planned exactly once or unassigned. Empty means the dispatcher can trust it."""
    by_id = {s.package_id: s for s in stops}
    van_by_id = {v.id: v for v in vans}
    problems: list[str] = []
    seen: list[str] = list(plan.unassigned)
    for r in plan.routes:
        van = van_by_id[r.van_id]
        seen += r.stops
        kg = sum(by_id[p].weight_kg for p in r.stops)
        if kg > van.capacity_kg + 1e-9:
            problems.append(f"{r.van_id}: {kg:.3f} kg over capacity {van.capacity_kg} kg")
        m3 = sum(by_id[p].volume_m3 or 0.0 for p in r.stops)
        if van.capacity_m3 is not None and m3 > van.capacity_m3 + 1e-9:
            problems.append(f"{r.van_id}: {m3:.3f} m³ over capacity {van.capacity_m3} m³")
        for p, at in zip(r.stops, r.arrivals, strict=True):
            s = by_id[p]
            if (s.earliest and at < s.earliest) or (s.deadline and at > s.deadline):
                problems.append(f"{p}: arrival {at.isoformat()} outside its window")
        if r.departure and (r.departure < start or (van.shift_start and r.departure < van.shift_start)):
            problems.append(f"{r.van_id}: leaves before the plan or shift starts")
        if r.back_at and van.shift_end and r.back_at > van.shift_end:
            problems.append(f"{r.van_id}: back after its shift ends")
    if sorted(seen) != sorted(by_id):
        problems.append("some package is planned twice or missing")
    return problems


class _IntegerModel:
    """The instance in PyVRP's integers: metres, seconds after `start`, grams and cm³ (rounded safely:
    loads up, capacities down, travel times up, windows inwards), so integer-feasible is truly feasible."""

    def __init__(
        self, dist_m: npt.NDArray[np.float64], stops: Sequence[VanStop], vans: Sequence[Van], start: datetime
    ) -> None:
        self.stops, self.vans, self.start = stops, vans, start
        self.dist = np.rint(dist_m).astype(np.int64)
        speeds = sorted({v.speed_mps for v in vans})
        self.profile = [speeds.index(v.speed_mps) for v in vans]
        self.durations = [np.ceil(dist_m / s).astype(np.int64) for s in speeds]
        use_volume = any(v.capacity_m3 is not None for v in vans) and any(
            s.volume_m3 is not None for s in stops
        )
        kg = np.array([math.ceil(s.weight_kg * GRAMS_PER_KG) for s in stops], dtype=np.int64)
        cols = [kg]
        if use_volume:
            cols.append(np.array([math.ceil((s.volume_m3 or 0.0) * CM3_PER_M3) for s in stops], np.int64))
        self.demand = np.stack(cols, axis=1) if stops else np.zeros((0, len(cols)), np.int64)
        total = self.demand.sum(axis=0) + 1 if stops else np.ones(len(cols), np.int64)
        self.capacity = []
        for v in vans:
            cap = [math.floor(v.capacity_kg * GRAMS_PER_KG)]
            if use_volume:
                cap.append(math.floor(v.capacity_m3 * CM3_PER_M3) if v.capacity_m3 else int(total[1]))
            self.capacity.append(cap)
        self.service = np.array([math.ceil(s.service_s) for s in stops], dtype=np.int64)
        self.windows = np.zeros((len(stops) + 1, 2), dtype=np.int64)
        self.windows[:, 1] = NO_LIMIT
        for i, s in enumerate(stops, start=1):
            if s.earliest is not None:
                self.windows[i, 0] = max(0, math.ceil(self._secs(s.earliest)))
            if s.deadline is not None:
                self.windows[i, 1] = math.floor(self._secs(s.deadline))
        self.shifts: list[tuple[int, int]] = []
        self.usable: list[bool] = []
        for v in vans:
            early = max(0, math.ceil(self._secs(v.shift_start))) if v.shift_start else 0
            late = math.floor(self._secs(v.shift_end)) if v.shift_end else NO_LIMIT
            self.shifts.append((early, max(early, late)))
            self.usable.append(late > early)

    def _secs(self, t: datetime) -> float:
        return (t - self.start).total_seconds()

    def screen(self) -> dict[str, str]:
        """Reasons for the stops no single van could serve even on a trip of its own (vectorized)."""
        stops, vans = self.stops, self.vans
        if not stops:
            return {}
        n = len(stops)
        w = np.array([s.weight_kg for s in stops])
        vol = np.array([s.volume_m3 if s.volume_m3 is not None else 0.0 for s in stops])
        cap = np.array([v.capacity_kg for v in vans])
        cap_m3 = np.array([v.capacity_m3 if v.capacity_m3 is not None else np.inf for v in vans])
        by_weight = w[:, None] <= cap[None, :]
        fits = by_weight & (vol[:, None] <= cap_m3[None, :])
        usable = np.array(self.usable)
        early = np.array([s[0] for s in self.shifts], dtype=np.float64)
        late = np.array([s[1] for s in self.shifts], dtype=np.float64)
        out_ = np.stack([self.durations[p][0, 1:] for p in self.profile], axis=1).astype(np.float64)
        back_ = np.stack([self.durations[p][1:, 0] for p in self.profile], axis=1).astype(np.float64)
        arrive = early[None, :] + out_
        serve = np.maximum(arrive, self.windows[1:, 0, None].astype(np.float64))
        in_window = serve <= self.windows[1:, 1, None].astype(np.float64)
        back_in_shift = serve + self.service[:, None] + back_ <= late[None, :]
        reasons: dict[str, str] = {}
        for i in range(n):
            s = stops[i]
            if not by_weight[i].any():
                reasons[s.package_id] = (
                    f"overweight: {s.weight_kg:g} kg is more than the largest van carries ({cap.max():g} kg)"
                )
            elif not fits[i].any():
                biggest = cap_m3[by_weight[i]].max()
                reasons[s.package_id] = (
                    f"oversize: {vol[i]:g} m³ is more than any van that can carry its weight holds "
                    f"({biggest:g} m³)"
                )
            elif not (fits[i] & usable & in_window[i]).any():
                reasons[s.package_id] = self._late_reason(s, fits[i] & usable, serve[i])
            elif not (fits[i] & usable & in_window[i] & back_in_shift[i]).any():
                reasons[s.package_id] = (
                    "shift: no van that can carry it can serve it within its window and be back "
                    "at the depot before its shift ends"
                )
        return reasons

    def _late_reason(self, s: VanStop, ok: npt.NDArray[np.bool_], serve: npt.NDArray[np.float64]) -> str:
        deadline = s.deadline.isoformat() if s.deadline else "none"
        if not ok.any():
            return "shift: no van that can carry it has a shift open after the plan start"
        if s.deadline is not None and s.deadline < self.start:
            return f"deadline: {deadline} has passed at the plan start ({self.start.isoformat()})"
        soonest = self.start + timedelta(seconds=float(serve[ok].min()))
        return f"deadline: a direct trip arrives at {soonest.isoformat()} at the soonest, after {deadline}"


def _shortage(stops: Sequence[VanStop], vans: Sequence[Van], keep: list[int], usable: list[int]) -> str:
    """Why the optimiser left a feasible-alone stop out: say which resource is short, when one clearly is."""
    need = sum(stops[i].weight_kg for i in keep)
    have = sum(vans[k].capacity_kg for k in usable)
    if need > have:
        return f"the vans carry {have:g} kg in all and these packages weigh {need:g} kg"
    need_m3 = sum(stops[i].volume_m3 or 0.0 for i in keep)
    caps = [vans[k].capacity_m3 for k in usable]
    if all(c is not None for c in caps) and need_m3 > sum(c or 0.0 for c in caps):
        return (
            f"the vans hold {sum(c or 0.0 for c in caps):g} m³ in all and these packages take {need_m3:g} m³"
        )
    return "no van has capacity or shift time left for it alongside the other stops"
