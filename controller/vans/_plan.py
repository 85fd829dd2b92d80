"""`plan_van_routes`: from packages and vans in SI units and datetimes to routes, via the integer solver.

Steps: validate; estimate road distances (`_geo`), or take the caller's; build the integer model (metres,
seconds from `start`, grams, cm³); set aside what no van can do even alone (too heavy, too big, window or
shift out of reach of a direct trip), each with a reason; solve the rest with PyVRP; map routes back to
package ids and datetimes; check the plan against the original inputs before calling it feasible.

How the rest is solved matters for quality. With every client *required*, PyVRP runs the search it is
tuned for (bare `solve_matrix` on CVRPLIB instances). With every client *optional* behind a prize, each
iteration also weighs dropping and re-inserting clients: about half the iterations in the same time, and
0.2-0.6 % longer routes on CVRPLIB instances (issue 19). So when the fleet can hold every stop (screening
below: each stop alone, and the fleet's weight, volume and shift hours in all) they are solved as required;
only when they do not all fit (screening says so, or PyVRP finds no feasible plan in `GIVE_UP_SHARE` of the
time) is the rest of the time spent on the prize-collecting model, which serves as many as fit.

Reasons start with a stable code (`overweight`, `oversize`, `deadline`, `shift`, `no_room`), then words.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial

import numpy as np
import numpy.typing as npt

from controller.errors import InputError
from controller.vans._geo import CIRCUITY, road_distance_matrix
from controller.vans._model import Van, VanPlan, VanRoute, VanStop
from controller.vans._solver import NO_LIMIT, solve_matrix
from controller.vans._validate import check_depot, check_distances, check_start, check_stops, check_vans

GRAMS_PER_KG = 1000
CM3_PER_M3 = 1_000_000
# The required-clients solve gives up after this share of the time limit if it has found nothing feasible
# (the stops cannot all fit after all); the prize-collecting solve then has the rest of the time.
GIVE_UP_SHARE = 0.25
MIN_FALLBACK_S = 0.2  # the prize-collecting solve never gets less than this
LOAD_UNITS = 10_000  # the largest van counts at most this many load units (see `_IntegerModel._load_units`)


def plan_van_routes(
    depot: tuple[float, float],
    stops: Sequence[VanStop],
    vans: Sequence[Van],
    *,
    start: datetime,
    time_limit_s: float = 2.0,
    seed: int = 1,
    circuity: float = CIRCUITY,
    distances_m: npt.ArrayLike | None = None,
    max_iterations: int | None = None,
) -> VanPlan:
    """Routes for the vans from the depot (lat, lon) over `stops`, leaving no earlier than `start`.

    Minimises total road distance subject to each van's weight (and volume) capacity, each stop's
    `earliest`..`deadline` for the arrival, and each van's shift (leave after its start, back before its
    end). Stops that cannot be served are in `unassigned` with a reason; they are never dropped silently.

    `distances_m`: road distances from a routing engine, (n+1) x (n+1) metres, the depot first then the
    stops in order; without it, great circle x `circuity`. `plan.mode` says how it was solved:
    "all_required" (every stop fits: PyVRP's own CVRP search) or "prizes" (they do not all fit).
    `max_iterations` caps the search by iterations as well as by time: the same routes on any machine.
    """
    t0 = time.perf_counter()
    check_depot(depot)
    check_start(start, time_limit_s, circuity)
    if max_iterations is not None and (not isinstance(max_iterations, int) or max_iterations < 1):
        raise InputError(f"must be a whole number >= 1, got {max_iterations!r}", field="max_iterations")
    check_stops(stops)
    check_vans(vans)

    n = len(stops)
    if distances_m is None:
        lat = np.array([depot[0], *(s.lat for s in stops)], dtype=np.float64)
        lon = np.array([depot[1], *(s.lon for s in stops)], dtype=np.float64)
        dist_m = road_distance_matrix(lat, lon, circuity)
    else:
        dist_m = check_distances(distances_m, n)
    model = _IntegerModel(dist_m, stops, vans, start)

    reasons = model.screen()
    keep = [i for i in range(n) if stops[i].package_id not in reasons]
    usable = [k for k in range(len(vans)) if model.usable[k]]
    routes: list[VanRoute] = []
    solver_feasible = True
    mode = "all_required"
    iterations = 0
    if keep and usable:
        nodes = np.array([0, *(i + 1 for i in keep)])
        sub = np.ix_(nodes, nodes)
        solve = partial(
            solve_matrix,
            model.dist[sub],
            [d[sub] for d in model.durations],
            model.demand[keep],
            [model.capacity[k] for k in usable],
            windows=model.windows[nodes],
            service=model.service[keep],
            shifts=[model.shifts[k] for k in usable],
            profiles=[model.profile[k] for k in usable],
            seed=seed,
            max_iterations=max_iterations,
        )
        short = model.shortfall(keep, usable)
        sol = None
        spent = 0.0
        if not short:
            sol = solve(time_limit_s=time_limit_s, give_up_s=GIVE_UP_SHARE * time_limit_s)
            spent, iterations = sol.solver_s, sol.iterations
            if not sol.feasible:
                sol = None  # they do not all fit after all: serve as many as fit
        if sol is None:
            mode = "prizes"
            sol = solve(
                prizes=np.full(len(keep), 2 * int(model.dist[sub].max()) + 1),
                time_limit_s=max(MIN_FALLBACK_S, time_limit_s - spent),
            )
        solver_feasible = sol.feasible
        iterations += sol.iterations if mode == "prizes" else 0
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
        why = short or "no van has capacity or shift time left for it alongside the other stops"
        for c in sol.unvisited:
            reasons[stops[keep[c - 1]].package_id] = "no_room: " + why
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
        mode=mode,
        iterations=iterations,
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
        self._load_units()
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

    def _load_units(self) -> None:
        """Count each load dimension in a unit PyVRP's search works well with: coarse enough, still safe.

        PyVRP penalises an overload per unit of excess, with penalties clipped to a fixed range, and its
        search crosses infeasible ground on those penalties. In grams or cm³ an overload weighs 1,000 or
        1,000,000 times what it does in the instances PyVRP is tuned on (capacities of tens to thousands of
        units), and the search does worse: X-n101-k25, seeds 1-3 at 1,500 iterations each, +1.56 % over the
        best known in grams against +1.28 % in kg (0.3 points). So: first the largest
        unit that divides every load and capacity exactly (whole kg stay whole kg: PyVRP's own search);
        if the largest van still counts more than `LOAD_UNITS` of it, a coarser unit with loads rounded up
        and capacities down (still safe; each package gives up at most 1/`LOAD_UNITS` of the largest van).
        `unit[d]` is grams (cm³) per model unit.
        """
        self.unit = []
        for d in range(self.demand.shape[1]):
            # A van without a volume limit holds a placeholder (more than all the stops take): not a real
            # capacity, so it picks no unit; it is set again, in the new unit, below.
            real = [
                cap[d] for v, cap in zip(self.vans, self.capacity, strict=True) if d == 0 or v.capacity_m3
            ]
            g = int(np.gcd.reduce(np.array([*self.demand[:, d], *real], dtype=np.int64))) or 1
            g = max(g, max(real, default=0) // LOAD_UNITS)
            self.unit.append(g)
            self.demand[:, d] = -(-self.demand[:, d] // g)  # rounded up
            for v, cap in zip(self.vans, self.capacity, strict=True):
                cap[d] = cap[d] // g if d == 0 or v.capacity_m3 else int(self.demand[:, d].sum()) + 1

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

    def shortfall(self, keep: list[int], usable: list[int]) -> str:
        """Why the usable vans cannot carry all of `keep` in one plan, or "" when screening sees no reason.

        Weight and volume against the vans' sums; time against their shift hours: every stop needs its
        service plus at least the quickest drive into it from anywhere (each stop is entered once), a lower
        bound on the driving, so "" does not promise a plan, but a reason here is certain.
        """
        need = self.demand[keep].sum(axis=0)
        have = np.array([self.capacity[k] for k in usable]).sum(axis=0)
        if need[0] > have[0]:
            kg = self.unit[0] / GRAMS_PER_KG
            return f"the vans carry {have[0] * kg:g} kg in all and these packages weigh {need[0] * kg:g} kg"
        if len(need) > 1 and need[1] > have[1]:
            m3 = self.unit[1] / CM3_PER_M3
            return f"the vans hold {have[1] * m3:g} m³ in all and these packages take {need[1] * m3:g} m³"
        hours = [self.shifts[k][1] - self.shifts[k][0] for k in usable]
        if any(self.shifts[k][1] >= NO_LIMIT for k in usable):
            return ""
        nodes = np.array([0, *(i + 1 for i in keep)])
        quickest = np.minimum.reduce([d[np.ix_(nodes, nodes)] for d in self.durations]).astype(np.float64)
        np.fill_diagonal(quickest, np.inf)
        drive_in = quickest[:, 1:].min(axis=0) if len(nodes) > 1 else np.zeros(0)
        least = float(drive_in.sum() + self.service[keep].sum())
        if least > sum(hours):
            return (
                f"the vans have {sum(hours) / 3600:.1f} h of shift in all and these stops need at least "
                f"{least / 3600:.1f} h of driving and service"
            )
        return ""

    def _late_reason(self, s: VanStop, ok: npt.NDArray[np.bool_], serve: npt.NDArray[np.float64]) -> str:
        deadline = s.deadline.isoformat() if s.deadline else "none"
        if not ok.any():
            return "shift: no van that can carry it has a shift open after the plan start"
        if s.deadline is not None and s.deadline < self.start:
            return f"deadline: {deadline} has passed at the plan start ({self.start.isoformat()})"
        soonest = self.start + timedelta(seconds=float(serve[ok].min()))
        return f"deadline: a direct trip arrives at {soonest.isoformat()} at the soonest, after {deadline}"
