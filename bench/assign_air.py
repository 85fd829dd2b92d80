"""The planning tick with the station's airspace step, as the service runs it (`bench/assign.py` rows).

The service (`controller.service.core`) does, each pass: `ServiceAirspace.tick()`; `planning_spec` for every
drone of the fleet; the Planner; then for every drone the tick assigns to launch now, `ServiceAirspace.book`
(its pad from where it stands, a launch slot within `max_delay_s`, layers, holding point) and `plan_dict`
for the mission; a flight that does not fit is refused with `AirspaceBusy` and its package stays queued
(`airspace_busy`). After `REFUSALS_PER_PAD` refusals of drones on one pad, `REFUSALS_IN_A_ROW` in a row, or
`AIRSPACE_PASS_BUDGET_S` spent in searches, the drones left wait for the next pass without a search, as in
the service. `time_air_tick` times that tick next to the same tick without the airspace step.

Drones "in the air" are booked beforehand through `ServiceAirspace.book` itself, pad by pad on an advancing
clock (each lift-off when the book, the pads and the landing sequence allow it), until the wanted number is
airborne at once; that instant is the tick's "now". The flights that landed meanwhile are finished
(as the service does when a drone is down), and each airborne drone reports its planned position once at
"now" (`on_progress`), so those already on their way home have their landing booked as they would.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np

from controller.airspace import AirspaceBusy, AirspacePlan, PadConfig
from controller.assignment import Demand, Planner
from controller.fleet import FleetVehicle
from controller.service.airspace import ServiceAirspace
from controller.service.core import (
    AIRSPACE_PASS_BUDGET_S,
    MIN_AIRSPACE_BOOKINGS,
    REFUSALS_IN_A_ROW,
    REFUSALS_PER_PAD,
    _job,
)
from controller.station import StationConfig
from vehicles.spec import DRONE_DEFAULT, VehicleKind

PAD_SPACING_M = 80.0  # as the day bench (bench/day_world.py): each pad a column of air of its own
PADS_PER_20_DRONES = 6  # as the day bench: 6 pads for every 20 drones


def with_pads(station: StationConfig, n_pads: int) -> StationConfig:
    """The station with its `[airspace]` (layers, waits) but `n_pads` pads on a square grid 80 m apart."""
    cols = math.ceil(math.sqrt(n_pads))
    rows = math.ceil(n_pads / cols)
    x = np.array([PAD_SPACING_M * (i % cols - (cols - 1) / 2) for i in range(n_pads)])
    y = np.array([PAD_SPACING_M * (i // cols - (rows - 1) / 2) for i in range(n_pads)])
    lon, lat = station.frame.to_wgs84(x, y)
    pads = [
        PadConfig(name=f"P{k + 1}", lat=float(a), lon=float(b))
        for k, (a, b) in enumerate(zip(lat, lon, strict=True))
    ]
    return station.model_copy(update={"airspace": station.airspace.model_copy(update={"pads": pads})})


@dataclass
class Sky:
    """A station's airspace with `airborne` drones in the air at `now_s` (its clock is set by hand)."""

    air: ServiceAirspace
    now_s: float
    airborne: int
    landings_booked: int
    waiting: int  # airborne drones whose landing found no slot yet (launches are refused meanwhile)
    attempts: int  # plan() calls made to fill it (refused ones included)
    seconds: float  # how long filling it took


def fill_sky(
    station: StationConfig,
    epoch: datetime,
    dests: list[tuple[float, float]],
    airborne: int,
    *,
    after_s: float = 0.0,
    limit_s: float = 3 * 3600.0,
    budget_s: float = 120.0,
    seed: int = 11,
) -> Sky:
    """Book flights to `dests` (lat, lon) from the station until `airborne` of them are in the air at once
    (not before `after_s` on its clock); or, when the station cannot hold that many (or booking them costs
    more than `budget_s` of wall time), until `limit_s` or the budget is spent: `Sky.airborne` says how many
    are in the air at the end.

    Every `step_s` of its clock, a drone on each pad in turn asks for a launch (`book` from that pad); a pad
    refused is asked again when the refusal said the air frees (at most a minute later), so every pad's
    column is used as the book allows."""
    clock = {"t": 0.0}
    air = ServiceAirspace(station, epoch=epoch, clock=lambda: clock["t"])
    st = air.station
    rng = np.random.default_rng(seed)
    spec = DRONE_DEFAULT
    home = (station.lat, station.lon)
    pads = [(p.lat, p.lon) for p in station.airspace.pads] or [home]
    plans: dict[str, AirspacePlan] = {}
    retry = [0.0] * len(pads)  # when a pad's last refusal said the air frees
    t, i, attempts = 0.0, 0, 0
    t0 = time.perf_counter()

    def up() -> int:
        return sum(p.launch_at_s <= t <= p.arrival_s for p in plans.values())

    while t < limit_s and time.perf_counter() - t0 < budget_s and (t < after_s or up() < airborne):
        clock["t"] = t
        for fid in [f for f, p in plans.items() if p.arrival_s + p.hold_s < t - 60.0]:
            air.finish(fid)  # down and off its pad
            del plans[fid]
        air.tick()
        for k in rng.permutation(len(pads)):
            if t < retry[k]:
                continue
            attempts += 1
            dest = dests[int(rng.integers(len(dests)))]
            try:
                plans[f"air{i}"] = air.book(
                    f"air{i}", f"a{i}", [home, dest], spec, pads=air.pads_for(pads[k])
                )
                i += 1
            except AirspaceBusy as busy:
                retry[k] = min(busy.free_at_s, t + 4 * st.config.step_s)
        t += st.config.step_s
    for fid in [f for f, p in plans.items() if p.arrival_s < t]:
        air.finish(fid)
        del plans[fid]
    clock["t"] = t
    air.tick()
    for fid, plan in plans.items():  # each drone in the air says where it is, once, at "now"
        if plan.launch_at_s <= t:
            flight = st._flights[fid]
            x, y, alt = flight.path.position(t)[0]
            lon, lat = station.frame.to_wgs84(float(x), float(y))
            st.on_progress(fid, float(lat), float(lon), float(alt), t)
    up = sum(p.launch_at_s <= t <= p.arrival_s for p in plans.values())
    waiting = sum(f.waiting for f in st._flights.values())
    landings = sum(f.landing_booked for f in st._flights.values())
    return Sky(air, t, up, landings, waiting, attempts, time.perf_counter() - t0)


@dataclass
class AirTick:
    """Timings (seconds) of the planning tick without and with the airspace step, and what it booked."""

    plain: list[float] = field(default_factory=list)  # Planner tick alone
    with_air: list[float] = field(default_factory=list)  # tick() + planning_spec + Planner + bookings
    step: list[float] = field(default_factory=list)  # the airspace step alone, within `with_air`
    booked_s: list[float] = field(default_factory=list)  # per tick: time in book() calls that booked
    refused_s: list[float] = field(default_factory=list)  # per tick: time in book() calls refused
    skipped_s: list[float] = field(default_factory=list)  # per tick: time on drones left without a search
    booked: list[int] = field(default_factory=list)  # per tick
    refused: list[int] = field(default_factory=list)  # per tick: airspace_busy, searched or not
    searched: list[int] = field(default_factory=list)  # per tick: refusals that cost a search
    over_budget: list[int] = field(default_factory=list)  # per tick: left for the next pass by the budget
    launch_now: int = 0  # drones and robots the tick assigns to launch now
    drone_launches: int = 0


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def summary(xs: list[float]) -> tuple[float, float]:
    """(median, p95) in ms."""
    return statistics.median(xs) * 1000, _pct(xs, 95) * 1000


def time_air_tick(
    station: StationConfig,
    sky: Sky,
    packages: list[Demand],
    fleet: list[FleetVehicle],
    at: datetime,
    repeats: int,
) -> AirTick:
    """`repeats` warm ticks of `packages` on `fleet`, without and with the airspace step (interleaved); the
    drones free now stand on the pads round-robin (`book` then takes off from the pad each stands on)."""
    air = sky.air
    pad_latlon = [(p.lat, p.lon) for p in station.airspace.pads] or [(station.lat, station.lon)]
    drones = [v for v in fleet if v.kind is VehicleKind.DRONE]
    where = {v.id: pad_latlon[k % len(pad_latlon)] for k, v in enumerate(drones)}
    by_id = {p.id: p for p in packages}
    warm_plain = Planner(station, at=at)
    warm_plain.plan(packages, fleet, max_rounds=1)
    warm_air = Planner(station, at=at)
    warm_air.plan(packages, [_flying(air, v) for v in fleet], max_rounds=1)
    out = AirTick()
    for _ in range(repeats):
        t0 = time.perf_counter()
        Planner(station, at=at, previous=warm_plain).plan(packages, fleet, max_rounds=1)
        out.plain.append(time.perf_counter() - t0)

        booked: list[str] = []
        t_book = t_refuse = t_skip = 0.0
        refused = 0
        t0 = time.perf_counter()
        air.tick()
        flying = [_flying(air, v) for v in fleet]
        t1 = time.perf_counter()
        decisions = Planner(station, at=at, previous=warm_air).plan(packages, flying, max_rounds=1)
        t2 = time.perf_counter()
        launches = [d for d in decisions if d.status == "assigned" and d.vehicle_id is not None]
        tries: dict[tuple[str, ...] | None, int] = {}  # as StationService._apply: a few refusals per pad
        in_a_row = 0  # and a few in a row over all pads
        searching_s = 0.0  # and AIRSPACE_PASS_BUDGET_S of searches a pass
        searched = over_budget = 0
        next_pass: AirspaceBusy | None = None
        for d in launches:
            if d.mode != "drone":
                continue
            s0 = time.perf_counter()
            booking_run = searched == 0 and len(booked) < MIN_AIRSPACE_BOOKINGS  # as the service
            if searching_s > AIRSPACE_PASS_BUDGET_S and not booking_run:  # as the service: checked first
                next_pass = next_pass or air.next_pass()
                air.free_at(next_pass)
                over_budget += 1
                refused += 1  # left queued as airspace_busy without a search
                t_skip += time.perf_counter() - s0
                continue
            job = _job(station, by_id[d.package_id], d)  # type: ignore[arg-type]
            on = air.pads_for(where[job.vehicle_id])
            key = tuple(on) if on is not None else None
            if tries.get(key, 0) >= REFUSALS_PER_PAD or in_a_row >= REFUSALS_IN_A_ROW:
                refused += 1  # left queued as airspace_busy without a search
                t_skip += time.perf_counter() - s0
                continue
            try:
                started = time.perf_counter()
                try:
                    plan = air.book(job.mission_id, job.vehicle_id, job.route, DRONE_DEFAULT, pads=on)
                finally:
                    searching_s += time.perf_counter() - started
                job = replace(job, airspace=air.plan_dict(plan))
                booked.append(job.mission_id)
                in_a_row = 0
                t_book += time.perf_counter() - s0
            except AirspaceBusy as busy:
                air.free_at(busy)
                tries[key] = tries.get(key, 0) + 1
                in_a_row += 1
                refused += 1
                searched += 1
                t_refuse += time.perf_counter() - s0
        t3 = time.perf_counter()
        out.with_air.append(t3 - t0)
        out.step.append((t1 - t0) + (t3 - t2))
        out.booked_s.append(t_book)
        out.refused_s.append(t_refuse)
        out.skipped_s.append(t_skip)
        out.booked.append(len(booked))
        out.refused.append(refused)
        out.searched.append(searched)
        out.over_budget.append(over_budget)
        out.launch_now = len(launches)
        out.drone_launches = sum(d.mode == "drone" for d in launches)
        for fid in booked:  # the next repeat plans the same instant again
            air.finish(fid)
    return out


def _flying(air: ServiceAirspace, v: FleetVehicle) -> FleetVehicle:
    """The vehicle as the service plans it: a drone flies the station's layers and may hold."""
    if v.kind is not VehicleKind.DRONE:
        return v
    return replace(v, spec=air.planning_spec(v.spec))
