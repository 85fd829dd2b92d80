"""Van routes: hand-made cases a dispatcher would check by eye, and published instances with known optima.

The instance tests drive the solver layer (`solve_instance` -> `solve_matrix`) on VRPLIB/Solomon files from
`../shared/bench-data` and re-check every returned route against the instance itself (capacity, windows,
depot hours), independently of PyVRP's own feasibility flag.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from controller.errors import InputError
from controller.vans import (
    CIRCUITY,
    Instance,
    Van,
    VanPlan,
    VanStop,
    great_circle_matrix,
    load_instance,
    plan_van_routes,
    solve_instance,
    solve_matrix,
    stop_from_dict,
    van_from_dict,
)

DEPOT = (33.44, -112.256)
START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
BENCH = SHARED / "bench-data"
FAST = 0.3  # solver seconds for the hand-made cases: they have a handful of stops


def at(east_m: float, north_m: float) -> tuple[float, float]:
    """A point east/north of the depot, in metres (flat-Earth is fine at these distances)."""
    lat = DEPOT[0] + north_m / 111_195.0
    lon = DEPOT[1] + east_m / (111_195.0 * math.cos(math.radians(DEPOT[0])))
    return lat, lon


def stop(pid: str, east_m: float, north_m: float, kg: float = 10.0, **kw: object) -> VanStop:
    lat, lon = at(east_m, north_m)
    return VanStop(pid, lat, lon, kg, **kw)  # type: ignore[arg-type]


def minutes(m: float) -> datetime:
    return START + timedelta(minutes=m)


def assert_sound(plan: VanPlan, stops: list[VanStop], vans: list[Van]) -> None:
    """What a dispatcher relies on: each package once (or unassigned with a reason), loads under capacity,
    arrivals inside windows, routes that leave from and return to the depot within the van's shift."""
    by_id = {s.package_id: s for s in stops}
    van_by_id = {v.id: v for v in vans}
    planned = [p for r in plan.routes for p in r.stops]
    assert len(planned) == len(set(planned)), "a package is on two routes"
    assert sorted(planned + plan.unassigned) == sorted(by_id), "a package is missing"
    for p in plan.unassigned:
        assert plan.unassigned_reasons[p].strip(), f"{p} unassigned without a reason"
    for r in plan.routes:
        van = van_by_id[r.van_id]
        assert r.stops, "empty routes are not reported"
        assert r.load_kg == pytest.approx(sum(by_id[p].weight_kg for p in r.stops))
        assert r.load_kg <= van.capacity_kg
        if van.capacity_m3 is not None:
            assert sum(by_id[p].volume_m3 or 0 for p in r.stops) <= van.capacity_m3
        # the distance is the closed tour depot -> stops -> depot on the road estimate
        lat = [DEPOT[0], *(by_id[p].lat for p in r.stops), DEPOT[0]]
        lon = [DEPOT[1], *(by_id[p].lon for p in r.stops), DEPOT[1]]
        legs = great_circle_matrix(lat, lon) * CIRCUITY
        leg_m = [legs[k, k + 1] for k in range(len(lat) - 1)]
        assert r.distance_m == pytest.approx(sum(leg_m), rel=1e-9)
        # times: leave the depot, drive, (wait,) serve, ..., drive back
        assert r.departure is not None and r.back_at is not None
        assert r.departure >= START
        if van.shift_start:
            assert r.departure >= van.shift_start
        if van.shift_end:
            assert r.back_at <= van.shift_end
        t = r.departure
        for k, (p, arrival) in enumerate(zip(r.stops, r.arrivals, strict=True)):
            s = by_id[p]
            t += timedelta(seconds=leg_m[k] / van.speed_mps)
            assert arrival >= t - timedelta(seconds=1), f"{p}: planned before the van can get there"
            assert s.earliest is None or arrival >= s.earliest
            assert s.deadline is None or arrival <= s.deadline
            t = arrival + timedelta(seconds=s.service_s)
        t += timedelta(seconds=leg_m[-1] / van.speed_mps)
        assert r.back_at >= t - timedelta(seconds=1)
        assert r.duration_s == pytest.approx((r.back_at - r.departure).total_seconds())
    assert plan.distance_m == pytest.approx(sum(r.distance_m for r in plan.routes))


# --- hand-made instances ----------------------------------------------------------------------------------


def test_capacity_splits_the_load_over_vans() -> None:
    stops = [stop(f"p{k}", 1500 * math.cos(k), 1500 * math.sin(k), kg=30) for k in range(6)]
    vans = [Van("v1", 100), Van("v2", 100), Van("v3", 100)]
    plan = plan_van_routes(DEPOT, stops, vans, start=START, time_limit_s=FAST)
    assert plan.feasible and not plan.unassigned
    assert len(plan.routes) == 2  # 180 kg: two vans of 100 kg, three stops each
    assert_sound(plan, stops, vans)


def test_fleet_too_small_leaves_packages_unassigned_with_the_reason() -> None:
    stops = [stop(f"p{k}", 1000 * (k + 1), 0, kg=40) for k in range(5)]
    vans = [Van("v1", 100)]
    plan = plan_van_routes(DEPOT, stops, vans, start=START, time_limit_s=FAST)
    assert plan.feasible
    assert len(plan.routes[0].stops) == 2 and len(plan.unassigned) == 3
    for p in plan.unassigned:
        assert plan.unassigned_reasons[p].startswith("no_room:")
        assert "100 kg" in plan.unassigned_reasons[p]
    assert_sound(plan, stops, vans)


def test_volume_binds_when_weight_does_not() -> None:
    stops = [stop(f"p{k}", 800 * (k + 1), 500, kg=2, volume_m3=1.5) for k in range(4)]
    vans = [Van("v1", 1000, capacity_m3=3.0), Van("v2", 1000, capacity_m3=3.0)]
    plan = plan_van_routes(DEPOT, stops, vans, start=START, time_limit_s=FAST)
    assert plan.feasible and not plan.unassigned
    assert [len(r.stops) for r in plan.routes] == [2, 2]
    assert all(r.load_m3 == pytest.approx(3.0) for r in plan.routes)
    assert_sound(plan, stops, vans)


def test_time_windows_order_the_route_and_arrivals_fall_inside_them() -> None:
    # Geometry alone says: west first, then both east stops (or the reverse). The windows force a zigzag.
    stops = [
        stop("east1", 1000, 0, earliest=minutes(0), deadline=minutes(10)),
        stop("west", -1000, 0, earliest=minutes(20), deadline=minutes(30)),
        stop("east2", 2000, 0, earliest=minutes(60), deadline=minutes(70)),
    ]
    vans = [Van("v1", 500)]
    plan = plan_van_routes(DEPOT, stops, vans, start=START, time_limit_s=FAST)
    assert plan.feasible and not plan.unassigned
    assert plan.routes[0].stops == ["east1", "west", "east2"]
    # waits for a window rather than arriving early: the arrival is the start of the hand-over
    assert plan.routes[0].arrivals[1] == minutes(20)
    assert_sound(plan, stops, vans)


def test_stops_no_van_can_take_are_screened_out_with_reasons() -> None:
    stops = [
        stop("ok", 1000, 1000),
        stop("heavy", 1000, 0, kg=1200),
        stop("bulky", 0, 1000, kg=5, volume_m3=9.0),
        stop("gone", 500, 0, deadline=START - timedelta(minutes=5)),
        stop("too_soon", 20_000, 0, deadline=minutes(5)),  # 26 km of road cannot be driven in 5 minutes
        stop("after_hours", 1000, -1000, earliest=minutes(9 * 60)),  # the shift ends at 8 h
    ]
    vans = [Van("v1", 1000, capacity_m3=6.0, shift_end=minutes(8 * 60))]
    plan = plan_van_routes(DEPOT, stops, vans, start=START, time_limit_s=FAST)
    assert plan.feasible
    assert [r.stops for r in plan.routes] == [["ok"]]
    codes = {p: reason.split(":")[0] for p, reason in plan.unassigned_reasons.items()}
    assert codes == {
        "heavy": "overweight",
        "bulky": "oversize",
        "gone": "deadline",
        "too_soon": "deadline",
        "after_hours": "shift",
    }
    assert "1200 kg" in plan.unassigned_reasons["heavy"] and "1000 kg" in plan.unassigned_reasons["heavy"]
    assert "has passed" in plan.unassigned_reasons["gone"]
    assert_sound(plan, stops, vans)


def test_shifts_and_speeds_are_kept() -> None:
    stops = [stop(f"p{k}", 3000 * math.cos(k), 3000 * math.sin(k), kg=50) for k in range(8)]
    vans = [
        Van("late_start", 200, speed_mps=8.0, shift_start=minutes(60), shift_end=minutes(300)),
        Van("fast", 200, speed_mps=15.0, shift_start=minutes(-30), shift_end=minutes(240)),
    ]
    plan = plan_van_routes(DEPOT, stops, vans, start=START, time_limit_s=FAST)
    assert plan.feasible and not plan.unassigned
    assert {r.van_id for r in plan.routes} == {"late_start", "fast"}
    assert_sound(plan, stops, vans)  # departures after shift start (and after START), back before the end


def test_a_busy_afternoon_keeps_every_promise() -> None:
    """60 random stops with windows and volumes, 4 unlike vans: every route checked on real numbers."""
    rng = np.random.default_rng(11)
    stops = []
    for k in range(60):
        opens = float(rng.uniform(0, 240))
        stops.append(
            stop(
                f"p{k:02d}",
                float(rng.uniform(-8000, 8000)),
                float(rng.uniform(-8000, 8000)),
                kg=float(rng.uniform(2, 60)),
                volume_m3=float(rng.uniform(0.05, 0.5)),
                earliest=minutes(opens),
                deadline=minutes(opens + float(rng.uniform(30, 180))),
                service_s=float(rng.uniform(60, 300)),
            )
        )
    vans = [
        Van("a", 600, capacity_m3=6.0, speed_mps=9.0, shift_end=minutes(360)),
        Van("b", 600, capacity_m3=6.0, speed_mps=12.5, shift_end=minutes(360)),
        Van("c", 400, speed_mps=11.0, shift_start=minutes(30), shift_end=minutes(420)),
        Van("d", 400, capacity_m3=4.0, shift_start=minutes(-60), shift_end=minutes(300)),
    ]
    plan = plan_van_routes(DEPOT, stops, vans, start=START, time_limit_s=1.0)
    assert plan.feasible
    assert len(plan.unassigned) <= 3  # the fleet has room; nearly all should be served
    assert_sound(plan, stops, vans)


def test_numpy_numbers_are_numbers() -> None:
    lat, lon = at(1000, 0)
    s = VanStop("a", np.float32(lat), np.float64(lon), np.float32(12.5))  # type: ignore[arg-type]
    plan = plan_van_routes(DEPOT, [s], [Van("v", np.int64(100))], start=START)  # type: ignore[arg-type]
    assert plan.routes[0].stops == ["a"]


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"circuity": 0.8}, "circuity"), ({"time_limit_s": 0}, "time_limit_s")]
)
def test_bad_options_name_the_option(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InputError) as err:
        plan_van_routes(DEPOT, [], [Van("v", 1)], start=START, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


def test_no_stops_gives_an_empty_plan() -> None:
    plan = plan_van_routes(DEPOT, [], [Van("v1", 100)], start=START)
    assert plan.routes == [] and plan.unassigned == [] and plan.feasible
    assert plan.distance_m == 0


def test_plan_is_json_ready() -> None:
    stops = [stop("a", 1000, 0, earliest=minutes(5), deadline=minutes(60)), stop("b", 0, 0, kg=5000)]
    plan = plan_van_routes(DEPOT, stops, [Van("v1", 100)], start=START, time_limit_s=FAST)
    body = json.loads(json.dumps(plan.as_dict()))
    assert body["feasible"] is True
    assert body["routes"][0]["van_id"] == "v1" and body["routes"][0]["stops"] == ["a"]
    assert datetime.fromisoformat(body["routes"][0]["arrivals"][0]) >= minutes(5)
    assert body["unassigned"] == [{"package_id": "b", "reason": plan.unassigned_reasons["b"]}]


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stops", "vans", "field", "row"),
    [
        ([stop("a", 0, 0, kg=-1)], [Van("v", 100)], "weight_kg", "a"),
        ([stop("a", 0, 0, volume_m3=-0.1)], [Van("v", 100)], "volume_m3", "a"),
        ([stop("a", 0, 0, earliest=minutes(30), deadline=minutes(10))], [Van("v", 100)], "deadline", "a"),
        ([stop("a", 0, 0, deadline=datetime(2026, 12, 1, 16))], [Van("v", 100)], "deadline", "a"),
        ([stop("a", 0, 0), stop("a", 10, 0)], [Van("v", 100)], "package_id", "a"),
        ([VanStop("a", 95.0, 0.0, 1.0)], [Van("v", 100)], "lat", "a"),
        ([stop("a", 0, 0)], [], "vans", None),
        ([stop("a", 0, 0)], [Van("v", 0)], "capacity_kg", "v"),
        ([stop("a", 0, 0)], [Van("v", 100, speed_mps=float("nan"))], "speed_mps", "v"),
        ([stop("a", 0, 0)], [Van("v", 100, shift_start=minutes(60), shift_end=minutes(0))], "shift_end", "v"),
    ],
)
def test_bad_input_names_the_field(stops: list[VanStop], vans: list[Van], field: str, row: object) -> None:
    with pytest.raises(InputError) as err:
        plan_van_routes(DEPOT, stops, vans, start=START)
    assert err.value.field == field
    assert err.value.row == row


def test_naive_start_is_refused() -> None:
    with pytest.raises(InputError) as err:
        plan_van_routes(DEPOT, [], [Van("v", 1)], start=datetime(2026, 12, 1, 15))
    assert err.value.field == "start"


def test_units_from_json() -> None:
    s = stop_from_dict(
        {
            "package_id": "a",
            "lat": "33.5",
            "lon": -112.2,
            "weight": 22.0462,
            "weight_unit": "lb",
            "volume": 35.3147,
            "volume_unit": "ft3",
            "deadline": "2026-12-01T18:00:00+00:00",
        }
    )
    assert s.weight_kg == pytest.approx(10.0, rel=1e-5) and s.volume_m3 == pytest.approx(1.0, rel=1e-5)
    assert s.deadline == datetime(2026, 12, 1, 18, tzinfo=UTC)
    v = van_from_dict({"id": "v", "capacity_lb": 2204.62, "capacity_m3": 10, "speed_kph": 36})
    assert v.capacity_kg == pytest.approx(1000, rel=1e-5) and v.speed_mps == pytest.approx(10.0)
    with pytest.raises(InputError) as err:
        stop_from_dict({"package_id": "a", "lat": 33.5, "lon": -112.2, "weight": 3, "weight_unit": "stone"})
    assert err.value.field == "weight_unit" and "stone" in str(err.value)
    with pytest.raises(InputError) as err:
        stop_from_dict({"package_id": "a", "lat": 33.5, "lon": -112.2, "weight_kg": 3, "weight_lb": 6})
    assert err.value.field == "weight"
    with pytest.raises(InputError) as err:
        stop_from_dict({"package_id": "a", "lat": 33.5, "lon": -112.2, "weight_kg": 3, "earliest": "noon"})
    assert err.value.field == "earliest"


# --- published instances: the solver layer against known optima ------------------------------------------


def bench_file(relative: str) -> Path:
    path = BENCH / relative
    if not path.exists():
        message = f"{path} missing: clone the shared bench data beside the repository"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def check_against_instance(inst: Instance, routes: list[list[int]]) -> None:
    """Recompute each route on the instance's own numbers: load, windows (with waiting), depot hours."""
    visited = sorted(c for r in routes for c in r)
    assert visited == list(range(1, len(inst.demand) + 1))
    for r in routes:
        assert inst.demand[[c - 1 for c in r]].sum() <= inst.capacity
        if inst.windows is None or inst.service is None:
            continue
        t, here = inst.windows[0, 0], 0
        for c in r:
            t = max(t + inst.distance[here, c], inst.windows[c, 0])
            assert t <= inst.windows[c, 1] + 1e-6, f"client {c} served after its window"
            t, here = t + inst.service[c - 1], c
        assert t + inst.distance[here, 0] <= inst.windows[0, 1] + 1e-6


# Budgets in iterations, not seconds: a time limit on a loaded machine ran RC208 ~900 iterations (2.65 %
# above best known) instead of ~3,500 (0.00 %). About 1 s each on a quiet machine.
@pytest.mark.parametrize(
    ("relative", "optimum", "iterations", "tolerance"),
    [
        ("pyvrp-tests/E-n22-k4.txt", 375.0, 2000, 0.01),  # CVRP, optimum in the file's comment
        ("pyvrp-tests/RC208.vrp", None, 2500, 0.02),  # VRPTW, best-known routes in RC208.sol
        ("vrplib-tests/Solomon/C101.txt", None, 1500, 0.02),  # VRPTW, optimal routes in C101.sol
    ],
)
def test_solver_is_close_to_best_known(
    relative: str, optimum: float | None, iterations: int, tolerance: float
) -> None:
    inst = load_instance(bench_file(relative))
    best = optimum if optimum is not None else inst.best_known_cost  # known routes on the same distances
    assert best is not None
    sol, cost = solve_instance(inst, time_limit_s=60.0, seed=1, max_iterations=iterations)
    assert sol.feasible
    check_against_instance(inst, [r.clients for r in sol.routes])
    assert cost <= best * (1 + tolerance), f"{inst.name}: {cost:.1f} vs best known {best}"
    assert cost >= best * 0.99  # far below the optimum would mean we cost routes wrongly


def test_loader_reads_both_formats() -> None:
    e22 = load_instance(bench_file("pyvrp-tests/E-n22-k4.txt"))
    assert (len(e22.demand), e22.capacity, e22.windows, e22.rounded) == (21, 6000, None, True)
    c101 = load_instance(bench_file("vrplib-tests/Solomon/C101.txt"))
    assert len(c101.demand) == 100 and c101.windows is not None and c101.best_known == 827.3
    # the .sol states its cost on distances truncated to 0.1; the same routes cost 828.94 exactly
    assert c101.best_known_cost == pytest.approx(828.94, abs=0.01)
    assert c101.best_routes is not None
    check_against_instance(c101, c101.best_routes)  # the known solution passes our own checker
    assert c101.distance[0, 1] == pytest.approx(np.hypot(45 - 40, 68 - 50))


# --- required clients when they fit, prizes when they do not (issue 19) -------------------------------------


def test_stops_that_fit_are_all_required_and_routed_as_bare_pyvrp_routes_them() -> None:
    """A CVRP instance through the wrapper (its distances, demands as kg, its fleet as vans) gives the very
    routes of the bare solver at the same seed and iterations: no prizes, and loads in whole kg, not grams."""
    inst = load_instance(bench_file("vrplib-tests/classic/X-n101-k25.vrp"))
    dist = np.round(inst.distance * 100).astype(np.int64)
    bare = solve_matrix(
        dist, dist, inst.demand, [inst.capacity] * inst.vehicles, time_limit_s=60, max_iterations=400
    )
    stops = [VanStop(f"c{i}", *DEPOT, float(d), service_s=0.0) for i, d in enumerate(inst.demand, 1)]
    vans = [Van(f"v{k}", float(inst.capacity), speed_mps=1.0) for k in range(inst.vehicles)]
    plan = plan_van_routes(
        DEPOT, stops, vans, start=START, time_limit_s=60, distances_m=dist, max_iterations=400
    )
    assert plan.mode == "all_required" and plan.feasible and not plan.unassigned
    assert plan.iterations == bare.iterations == 400
    assert sorted([int(p[1:]) for p in r.stops] for r in plan.routes) == sorted(
        r.clients for r in bare.routes
    )
    assert plan.distance_m == pytest.approx(bare.distance)


def test_small_plans_that_fit_are_solved_with_every_stop_required() -> None:
    stops = [stop(f"p{k}", 2000 * math.cos(k), 2000 * math.sin(k), kg=30) for k in range(6)]
    plan = plan_van_routes(DEPOT, stops, [Van("v1", 100), Van("v2", 100)], start=START, time_limit_s=FAST)
    assert plan.mode == "all_required" and plan.feasible and not plan.unassigned


def test_too_few_shift_hours_fall_back_to_prizes_and_say_so() -> None:
    # 12 stops 6 km out, 30 min at each door: 6 h of service alone, and the one van works 3 h.
    stops = [stop(f"p{k}", 6000 * math.cos(k), 6000 * math.sin(k), service_s=1800) for k in range(12)]
    vans = [Van("v1", 1000, shift_end=minutes(180))]
    plan = plan_van_routes(DEPOT, stops, vans, start=START, time_limit_s=FAST)
    assert plan.mode == "prizes" and plan.feasible
    assert 1 <= sum(len(r.stops) for r in plan.routes) < 12
    for p in plan.unassigned:
        reason = plan.unassigned_reasons[p]
        assert reason.startswith("no_room:") and "3.0 h of shift" in reason
    assert_sound(plan, stops, vans)


def test_stops_that_fit_alone_but_not_together_fall_back_to_prizes_in_time() -> None:
    # Each stop alone is fine, and weight and hours are plenty, but both must be served in the same
    # 10 minutes 16 km apart by the one van: no plan serves both. The required solve gives up, the
    # prize-collecting one serves one and says why the other is left, within the time limit.
    stops = [
        stop("east", 8000, 0, earliest=minutes(30), deadline=minutes(40)),
        stop("west", -8000, 0, earliest=minutes(30), deadline=minutes(40)),
    ]
    vans = [Van("v1", 500, shift_end=minutes(240))]
    plan = plan_van_routes(DEPOT, stops, vans, start=START, time_limit_s=1.0)
    assert plan.mode == "prizes" and plan.feasible
    assert len(plan.unassigned) == 1
    (left,) = plan.unassigned
    assert plan.unassigned_reasons[left].startswith("no_room: no van has capacity or shift time left")
    assert plan.solver_s < 1.5
    assert_sound(plan, stops, vans)


@pytest.mark.parametrize(
    ("kwargs", "field", "row"),
    [
        ({"distances_m": np.zeros((3, 3))}, "distances_m", None),
        ({"distances_m": np.array([[0.0, 1.0], [-1.0, 0.0]])}, "distances_m", 1),
        ({"distances_m": np.array([[0.0, np.nan], [1.0, 0.0]])}, "distances_m", 0),
        ({"max_iterations": 0}, "max_iterations", None),
    ],
)
def test_bad_matrix_or_budget_names_the_option(kwargs: dict[str, object], field: str, row: object) -> None:
    with pytest.raises(InputError) as err:
        plan_van_routes(DEPOT, [stop("a", 100, 0)], [Van("v", 100)], start=START, **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field and err.value.row == row
