"""The hindsight decider of the day bench (bench/day_hindsight.py): it knows every order in advance but
keeps every rule the online deciders keep, so it is a fair anchor. Small on purpose (150 orders)."""

from __future__ import annotations

import itertools

import pytest

from bench import day_world as w
from bench.day_flight import SafetyCheck, below_reserve
from bench.day_hindsight import HindsightDay
from bench.day_sim import DayResult
from vehicles.spec import VehicleKind

# One 150-order day solved in hindsight and played: about 3 s (one fixture for the module).
N = 150
VAN_LIMIT_S = 10.0  # waves this small stop on PyVRP's no-improvement rule long before it


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return w.station()


@pytest.fixture(scope="module")
def solved(config) -> tuple[HindsightDay, DayResult]:  # type: ignore[no-untyped-def]
    day = HindsightDay(w.orders(N, 3, config), w.fleet_for(N), config, van_time_limit_s=VAN_LIMIT_S, seed=3)
    return day, day.run()


def test_every_order_ends_once_and_never_before_it_exists(solved) -> None:  # type: ignore[no-untyped-def]
    _, result = solved
    assert result.decider == "hindsight"
    assert set(result.outcomes) == {o.id for o in result.orders}
    by_id = {o.id: o for o in result.orders}
    flown = [t.order_id for t in result.trips]
    assert len(flown) == len(set(flown))
    for t in result.trips:
        assert t.launch_s >= by_id[t.order_id].t_s, "launched before the order arrived"
        assert result.outcomes[t.order_id].mode == str(t.kind)
    for oid, out in result.outcomes.items():
        if out.mode != "carried_over":
            assert out.delivered_s is not None and out.delivered_s >= by_id[oid].t_s


def test_knowing_the_future_breaks_no_rule(config, solved) -> None:  # type: ignore[no-untyped-def]
    _, result = solved
    drones = [t for t in result.trips if t.kind is VehicleKind.DRONE]
    assert drones, "a 150-order day flies some packages"
    assert not any(w.in_hold(t.launch_s) for t in drones), "a drone launched in the weather hold"
    assert SafetyCheck(config, w.DAY_END_S).zone_entries(result.trips) == 0
    assert below_reserve(result.trips) == 0
    # a vehicle is never on two trips at once
    by_vehicle: dict[str, list[tuple[float, float]]] = {}
    for t in result.trips:
        by_vehicle.setdefault(t.vehicle_id, []).append((t.launch_s, t.back_s))
    for spans in by_vehicle.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_the_solve_is_a_plan_for_the_whole_day(solved) -> None:  # type: ignore[no-untyped-def]
    day, result = solved
    # decided once at the start: every order either queued for a drone or robot, or listed for a van
    assert day.lp_bound_s == day.lp_bound_s and day.lp_bound_s > 0  # the LP was solved (not NaN)
    assert all(not q for q in day.assigned.values()), "the queues are played out by midnight"
    assert result.van_stops + len(result.trips) + sum(
        o.mode == "carried_over" for o in result.outcomes.values()
    ) == len(result.orders)
