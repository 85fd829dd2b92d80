"""Benchmark: feasibility + matching for big queues, and path checks against many zones.

    python bench/assign.py [--quick]

Rows: the time of one planning tick (zone index, routes and detours, energy, the package x vehicle
feasibility arrays, and one optimal matching) for 2,000 x 200 and 10,000 x 1,000, each beside its anchor
measured in the same run (issue 19: bare `linear_sum_assignment` on a random matrix of the same shape,
plus the vectorized shapely check of the straight legs) and the ratio; the full look-ahead plan (every
round until the queue is placed); the peak memory of the 10,000 x 1,000 plans; a 50,000-package plan at
the example station (its fleet, one drone offline); straight-segment checks per second against 1,000
zones; and the 2,000 x 200 tick with the station's airspace step as the service runs it, drones already
in the air (`bench/assign_air.py`). Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import machine, table, write_section
from bench.assign_air import fill_sky, summary, time_air_tick, with_pads
from controller.assignment import Demand, Planner
from controller.fleet import FleetVehicle, fleet_from_station
from controller.station import StationConfig, load_station
from geofences import LocalFrame, ZoneIndex, load_zones
from vehicles.spec import DRONE_DEFAULT, ROBOT_DEFAULT, VehicleKind

AIR_PADS = 60  # the many-pad variant: the day bench's 6 pads for every 20 drones, for 200 in the air

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tolleson" / "station.toml"
AT = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


AIR_TEXT = (
    "**With the airspace step** (`bench/assign_air.py`), the 2,000 x 200 warm tick (one round) as the "
    "service runs it: `ServiceAirspace.tick()`, `planning_spec` for every drone, the Planner, then for "
    "every drone assigned to launch now `ServiceAirspace.book` (from the pad it stands on; the free "
    "drones stand on the pads in turn) and `plan_dict`; a flight with no launch slot within `max_delay_s`"
    " (60 s) is refused (`airspace_busy`, its package stays queued). Without and with are timed in turn, "
    "the same repeats; what a tick booked is freed before the next. The drones in the air were booked "
    "beforehand through `ServiceAirspace.book`, a drone on each pad asking for a launch every 15 s of an "
    "advancing clock, until the wanted number was in the air at once (each then reports its planned "
    'position once, which books the landing of those nearly home). "200 drones in the air" cannot happen '
    "at the example station: its four pads, 10 m apart, are one column of air that launches and lands one"
    " drone at a time, so its traffic holds a handful in the air (its rows: two instants of its traffic, "
    "with 7 and 6 up). The second station is the example's with 60 pads 80 m apart (the day bench's 6 "
    "pads per 20 drones), asked for 200 and booked for 3 h of its clock: it falls short (see the notes), "
    "so its rows have fewer than 200 in the air. Fleet (a): the scenario's 200 vehicles with every drone "
    "busy in the air, so only the 40 robots launch; (b): 200 free vehicles (160 drones) plus the drones "
    'in the air, whose reservations the new launches must clear. "Growth" is the difference of the '
    "medians. Where the time goes: see the note under the table."
)

AIR_CACHE_NOTE = (
    "Where the time goes. A search (`ServiceAirspace.book` -> `StationAirspace.plan`) first asks the book, "
    "in one query for all the drone's pads, whether any has a column free for a climb to the lowest layer "
    "within `max_delay_s` (`_columns_or_busy`); if none, it is refused there, and that refusal holds for "
    "every drone with nothing booked until the book changes. Otherwise `fit_flight` searches the pads "
    "whose column frees in time (at most 8), each combination of pads and layers built once per request "
    "and shifted in time (`search.Candidates`; the take-off columns once per station), then the landing "
    "sequence; a booking reuses the volumes the search built. The service (and this bench, as it) stops "
    "searching for a pad after two refusals of drones standing on it, for the whole pass after 20 "
    "refusals in a row, and once the pass has spent `AIRSPACE_PASS_BUDGET_S` (10 ms) in searches, unless "
    "every search so far booked and fewer than `MIN_AIRSPACE_BOOKINGS` (4) did (`REFUSALS_PER_PAD`, "
    "`REFUSALS_IN_A_ROW`, `AIRSPACE_PASS_BUDGET_S`, `MIN_AIRSPACE_BOOKINGS` in controller/service/core.py): "
    "the "
    "drones left over wait as airspace_busy and are tried next pass, without a search each (counted among "
    'the refused, "by the budget" or not searched). With 160 drones to launch, the step is therefore '
    "about the budget, plus the search that crosses it, plus the pass's own work for each drone left over "
    "(its pads from its position, its `airspace_busy` time)."
)


WHERE_TIME_GOES = (
    "Where the time goes. Each round is matched over *classes* of vehicles (`controller/matching.py`: "
    "same spec, same feasible packages, costs that differ only by when each is free) as a min-cost "
    "max-flow with OR-Tools, not `linear_sum_assignment` over vehicles, whose identical cost columns were "
    "its worst case (42-128x slower than on a random matrix); the verdicts of the pairs are the only "
    "(packages x vehicles) arrays, one byte a pair. What is left of a cold tick is mostly the routes "
    "(`controller/routing.py`: the zone index, the straight legs, the detours, and building the route "
    "cache entry by entry) and the van explanations of the packages no vehicle takes. A full look-ahead "
    "checks, after round 0, only the cheapest open packages of each model's ranking where that provably "
    "suffices (`controller/lookahead.py`), and packages no later round could place leave the rounds; the "
    "cycle collector is paused for a plan (its full collections were a third of the 50,000-package plan). "
    "The anchor moves with the machine's load as much as the ticks do (LSA on the random 10,000 x 1,000 "
    "matrix: 100-430 ms in this session's runs), so read the ratios of one run together."
)


def scenario(n_packages: int, n_vehicles: int, seed: int = 7) -> tuple[list[Demand], list[FleetVehicle]]:
    """Packages spread over 15 miles around the example station; 80 % drones, 20 % robots."""
    station = load_station(EXAMPLE)
    frame = station.frame
    rng = np.random.default_rng(seed)
    radius = rng.uniform(200, 24000, n_packages) * np.sqrt(rng.uniform(0, 1, n_packages))
    angle = rng.uniform(0, 2 * np.pi, n_packages)
    lon, lat = frame.to_wgs84(radius * np.sin(angle), radius * np.cos(angle))
    weight = np.where(
        rng.uniform(size=n_packages) < 0.6,
        rng.uniform(0.2, 2.2, n_packages),
        rng.lognormal(1.5, 0.7, n_packages),
    )
    packages = [
        Demand(f"p{i}", float(weight[i]), float(lat[i]), float(lon[i]), priority=int(rng.integers(0, 3)))
        for i in range(n_packages)
    ]
    drones = int(n_vehicles * 0.8)
    fleet = [
        FleetVehicle(f"d{i}", VehicleKind.DRONE, DRONE_DEFAULT, charge=float(rng.uniform(0.4, 1.0)))
        for i in range(drones)
    ]
    fleet += [
        FleetVehicle(f"r{i}", VehicleKind.ROBOT, ROBOT_DEFAULT, charge=float(rng.uniform(0.5, 1.0)))
        for i in range(n_vehicles - drones)
    ]
    return packages, fleet


def time_tick(n_packages: int, n_vehicles: int, repeats: int) -> tuple[float, float, float, int]:
    """Median seconds of a cold tick and of a warm one (routes known from the last tick), seconds of the full
    look-ahead plan, and the packages placed now."""
    station = load_station(EXAMPLE)
    packages, fleet = scenario(n_packages, n_vehicles)
    cold, warm = [], []
    placed = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        first = Planner(station, at=AT)
        first.plan(packages, fleet, max_rounds=1)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        decisions = Planner(station, at=AT, previous=first).plan(packages, fleet, max_rounds=1)
        warm.append(time.perf_counter() - t0)
        placed = sum(d.status == "assigned" for d in decisions)
    t0 = time.perf_counter()
    Planner(station, at=AT).plan(packages, fleet)
    full = time.perf_counter() - t0
    return statistics.median(cold), statistics.median(warm), full, placed


def anchor(n_packages: int, n_vehicles: int, repeats: int) -> tuple[float, float]:
    """Issue 19's anchor, median seconds of its two parts: `linear_sum_assignment` on a random matrix of the
    tick's shape, and the vectorized check of the straight legs from the station to every destination."""
    station = load_station(EXAMPLE)
    packages, _ = scenario(n_packages, n_vehicles)
    index = ZoneIndex(station.zones, station.frame, "drone", altitude_m=DRONE_DEFAULT.cruise_altitude_m)
    x, y = station.frame.to_local(
        np.array([p.dest_lon for p in packages]), np.array([p.dest_lat for p in packages])
    )
    zeros = np.zeros(n_packages)
    rng = np.random.default_rng(11)
    lsa, legs = [], []
    for _ in range(repeats):
        cost = rng.uniform(0.0, 3600.0, (n_packages, n_vehicles))
        t0 = time.perf_counter()
        linear_sum_assignment(cost)
        lsa.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        index.segments_clear_xy(zeros, zeros, x, y)
        legs.append(time.perf_counter() - t0)
    return statistics.median(lsa), statistics.median(legs)


def peak_mb(n_packages: int, n_vehicles: int, *, max_rounds: int | None) -> float:
    """Peak traced memory (MB, tracemalloc: numpy's arrays included) of one cold plan."""
    station = load_station(EXAMPLE)
    packages, fleet = scenario(n_packages, n_vehicles)
    tracemalloc.start()
    try:
        Planner(station, at=AT).plan(packages, fleet, max_rounds=max_rounds)
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def big_queue(n_packages: int) -> tuple[float, dict[str, int], timedelta, float]:
    """The full look-ahead plan of n packages for the example station's own fleet (d8 offline): seconds, the
    count of each status, the latest promised ETA from now, and the horizon in hours."""
    station = load_station(EXAMPLE)
    fleet = fleet_from_station(station)
    assert [v.id for v in fleet if not v.online] == ["d8"], "the example station has one drone offline"
    packages, _ = scenario(n_packages, 10)
    planner = Planner(station, at=AT)
    t0 = time.perf_counter()
    decisions = planner.plan(packages, fleet)
    seconds = time.perf_counter() - t0
    counts = {status: sum(d.status == status for d in decisions) for status in ("assigned", "queued", "van")}
    latest = max((d.eta for d in decisions if d.eta is not None), default=AT) - AT
    return seconds, counts, latest, planner.horizon_s / 3600.0


def path_checks_per_second(n_zones: int, n_segments: int, seed: int = 3) -> float:
    """Straight segments checked per second against n_zones exclusion zones (circles and boxes)."""
    rng = np.random.default_rng(seed)
    frame = LocalFrame(33.44, -112.256)
    features = []
    for i in range(n_zones):
        x, y = rng.uniform(-30000, 30000, 2)
        lon, lat = frame.to_wgs84(x, y)
        if i % 2:
            features.append(
                {
                    "type": "Feature",
                    "id": f"c{i}",
                    "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
                    "properties": {"kind": "no_fly", "radius_m": float(rng.uniform(50, 400))},
                }
            )
        else:
            half = float(rng.uniform(50, 400))
            lons, lats = frame.to_wgs84(
                np.array([x - half, x + half, x + half, x - half, x - half]),
                np.array([y - half, y - half, y + half, y + half, y - half]),
            )
            ring = [[float(a), float(b)] for a, b in zip(lons, lats, strict=True)]
            features.append(
                {
                    "type": "Feature",
                    "id": f"b{i}",
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                    "properties": {"kind": "no_fly"},
                }
            )
    index = ZoneIndex(load_zones({"type": "FeatureCollection", "features": features}), frame, "drone")
    x1, y1 = rng.uniform(-16000, 16000, (2, n_segments))
    zeros = np.zeros(n_segments)
    index.segments_clear_xy(zeros[:100], zeros[:100], x1[:100], y1[:100])  # warm up
    t0 = time.perf_counter()
    index.segments_clear_xy(zeros, zeros, x1, y1)
    return n_segments / (time.perf_counter() - t0)


def drone_destinations(station: StationConfig, packages: list[Demand]) -> list[tuple[float, float]]:
    """(lat, lon) of the scenario's packages a drone can carry there and back (<= 2.268 kg, within 14 km)."""
    x, y = station.frame.to_local(
        np.array([p.dest_lon for p in packages]), np.array([p.dest_lat for p in packages])
    )
    near = np.hypot(x, y) <= 14000.0
    return [
        (p.dest_lat, p.dest_lon) for p, ok in zip(packages, near, strict=True) if ok and p.weight_kg <= 2.268
    ]


def _span(xs: list[int]) -> str:
    """A count over the repeats: one figure when they agree, else min-max."""
    return f"{min(xs)}" if min(xs) == max(xs) else f"{min(xs)}-{max(xs)}"


def air_rows(repeats: int, budget_s: float) -> tuple[list[list[str]], list[str]]:
    """The 2,000 x 200 tick without and with the airspace step: table rows, and notes on the skies."""
    station = load_station(EXAMPLE)
    packages, fleet = scenario(2000, 200)
    dests = drone_destinations(station, packages)
    # (a) the scenario's 200 vehicles with every drone in the air: only robots launch now
    busy = [
        FleetVehicle(v.id, v.kind, v.spec, charge=v.charge, free_in_s=900.0)
        if v.kind is VehicleKind.DRONE
        else v
        for v in fleet
    ]
    rows: list[list[str]] = []
    notes: list[str] = []
    steps: dict[str, list[float]] = {"a": [], "b": []}  # airspace step medians (ms) by fleet case
    skies = (
        # The example station's four pads are one column of air: it never has many drones up at once.
        ("example (4 pads, 1 column)", station, 4, 2700.0),
        # another instant of the same traffic: here the refusals are not cached (see the note)
        ("example (4 pads), another instant", station, 6, 1800.0),
        (f"example, {AIR_PADS} pads 80 m apart", with_pads(station, AIR_PADS), 200, 0.0),
    )
    for label, st, want, after in skies:
        sky = fill_sky(st, AT, dests, want, after_s=after, budget_s=budget_s)
        notes.append(
            f"{label}: {sky.airborne} drones in the air at the tick ({sky.now_s / 60:.0f} min of traffic "
            f"booked pad by pad, {sky.attempts} `plan` calls in {sky.seconds:.0f} s; "
            f"asked for {want}); "
            f"{sky.landings_booked} of them with their landing booked, {sky.waiting} waiting for one; "
            f"{len(sky.air.station.book.volumes())} volumes in the book"
        )
        print(notes[-1])
        cases = [("(a) 200 vehicles, all 160 drones busy in the air", busy)]
        cases.append(("(b) 200 free vehicles + the drones in the air", fleet))
        for case, fl in cases:
            r = time_air_tick(st, sky, packages, fl, AT, repeats)
            (p50, p95), (a50, a95), (s50, s95) = summary(r.plain), summary(r.with_air), summary(r.step)
            steps["a" if fl is busy else "b"].append(s50)
            book_ms = statistics.median(r.booked_s) * 1000
            ref_ms = statistics.median(r.refused_s) * 1000
            skip_ms = statistics.median(r.skipped_s) * 1000
            n_book, n_searched = statistics.median(r.booked), statistics.median(r.searched)
            per_book = f" ({book_ms / n_book:.2f} each)" if n_book else ""
            per_ref = f" ({ref_ms / n_searched:.2f} per search)" if n_searched else ""
            booked = _span(r.booked)
            refused = (
                f"{_span(r.refused)} ({_span(r.searched)} searched, {_span(r.over_budget)} by the budget)"
            )
            rows.append(
                [
                    label,
                    case,
                    f"{sky.airborne}",
                    f"{r.launch_now} ({r.drone_launches})",
                    f"{p50:.0f} / {p95:.0f} ms",
                    f"{a50:.0f} / {a95:.0f} ms",
                    f"{a50 - p50:+.0f} ms",
                    f"{s50:.1f} / {s95:.1f} ms",
                    booked,
                    refused,
                    f"{book_ms:.1f} ms{per_book}",
                    f"{ref_ms:.1f} ms{per_ref}",
                    f"{skip_ms:.1f} ms",
                ]
            )
            print(
                f"{label} | {case}: tick {p50:.0f}/{p95:.0f} ms, with airspace {a50:.0f}/{a95:.0f} ms "
                f"(growth {a50 - p50:+.0f} ms; airspace step {s50:.1f}/{s95:.1f} ms); launch now "
                f"{r.launch_now} ({r.drone_launches} drones): booked {booked}, airspace_busy {refused}; "
                f"booking {book_ms:.1f} ms, refusals {ref_ms:.1f} ms, drones left unsearched {skip_ms:.1f} ms"
            )
    verdict = (
        "Issue 16's aim, the tick grows by no more than 20 ms with drones in the air: "
        + "; ".join(
            f"{name}: airspace step {min(v):.0f}-{max(v):.0f} ms, "
            + ("met" if max(v) <= 20.0 else "met in no row" if min(v) > 20.0 else "not met in every row")
            for name, v in (("(a), no drone launches", steps["a"]), ("(b), 160 drones to launch", steps["b"]))
        )
        + " (the airspace step timed alone; the growth of the medians also carries the machine's noise)"
    )
    notes.append(verdict)
    print(verdict)
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    rows = []
    for n_packages, n_vehicles in ((2000, 200), (10000, 1000)):
        big = n_packages > 5000
        cold, warm, full, placed = time_tick(n_packages, n_vehicles, 3 if big else repeats)
        lsa, legs = anchor(n_packages, n_vehicles, 3 if big else repeats)
        base = lsa + legs
        rows.append(
            [
                f"{n_packages:,} x {n_vehicles:,}",
                f"{lsa * 1000:.0f} + {legs * 1000:.0f} = {base * 1000:.0f} ms",
                f"{cold * 1000:.0f} ms ({cold / base:.1f}x)",
                f"{warm * 1000:.0f} ms ({warm / base:.1f}x)",
                f"{placed:,}",
                f"{full:.2f} s ({full / base:.1f}x)",
            ]
        )
        print(
            f"{n_packages} x {n_vehicles}: anchor {base * 1000:.0f} ms (LSA on a random matrix "
            f"{lsa * 1000:.0f} ms + straight legs {legs * 1000:.0f} ms); cold tick {cold * 1000:.0f} ms "
            f"({cold / base:.1f}x), warm tick {warm * 1000:.0f} ms ({warm / base:.1f}x) ({placed} launch "
            f"now), full plan {full:.2f} s ({full / base:.1f}x)"
        )
    tick_mb = peak_mb(10000, 1000, max_rounds=1)
    plan_mb = peak_mb(10000, 1000, max_rounds=None)
    memory = (
        f"Peak memory of the 10,000 x 1,000 plans (tracemalloc, numpy's arrays included; a run of its own): "
        f"cold tick **{tick_mb:.0f} MB**, full look-ahead plan **{plan_mb:.0f} MB**"
    )
    print(memory)
    n_big = 50_000
    big_s, counts, latest, horizon_h = big_queue(n_big)
    queue = (
        f"{n_big:,} packages at the example station (its own fleet: 7 drones online, d8 offline, 4 robots), "
        f"the full look-ahead plan: **{big_s:.2f} s**; {counts['assigned']} launch now, "
        f"{counts['queued']:,} queued, {counts['van']:,} to the vans; latest promised ETA "
        f"{latest.total_seconds() / 3600:.2f} h from now (horizon {horizon_h:g} h)"
    )
    print(queue)
    rate = path_checks_per_second(1000, 100_000 if args.quick else 300_000)
    print(f"path checks against 1,000 zones: {rate:,.0f} per second")
    air, notes = air_rows(repeats, 60.0 if args.quick else 150.0)
    body = (
        "`python bench/assign.py` — one planning tick is zone index + routes and detours + energy + "
        "feasibility arrays + one optimal matching (`controller/matching.py`); a warm tick reuses the last "
        "tick's routes (the controller does, while the same zones are in force); the full plan repeats "
        "rounds until every package is placed on a later trip or handed to a van. Packages spread over 15 mi "
        "around the "
        "example station (its 7 zones), 60 % under 2.2 kg; fleet 80 % drones, 20 % robots. The anchor "
        "(issue 19), measured in the same run: `linear_sum_assignment` on a random matrix of the tick's "
        "shape plus the vectorized shapely check of the straight legs; each figure's ratio to it in "
        "brackets.\n\n"
        + table(
            [
                "packages x vehicles",
                "anchor (random LSA + legs)",
                "cold tick (routes computed)",
                "warm tick (routes known)",
                "launch now",
                "full look-ahead plan",
            ],
            rows,
        )
        + f"\n\n{memory}.\n\n{queue}.\n\n"
        + WHERE_TIME_GOES
        + f"\n\nStraight-segment checks against 1,000 exclusion zones: **{rate:,.0f} per second**.\n\n"
        + AIR_TEXT
        + "\n\n"
        + "\n".join(f"- {n}." for n in notes)
        + "\n\n"
        + table(
            [
                "station",
                "fleet",
                "drones in the air",
                "launch now (drones)",
                "tick without airspace (median / p95)",
                "tick with airspace (median / p95)",
                "growth (medians)",
                "airspace step alone (median / p95)",
                "flights booked",
                "refused airspace_busy",
                "time in bookings",
                "time in refused searches",
                "time on drones left unsearched",
            ],
            air,
        )
        + "\n\n"
        + AIR_CACHE_NOTE
        + f"\n\nMachine: {machine()}; shared (other benchmarks and tests ran at the same time on its 2 "
        "cores), so single figures move by tens of ms between runs: the airspace step timed alone is the "
        "steadier one.\n"
    )
    write_section("assign", "Assignment", body)


if __name__ == "__main__":
    main()
