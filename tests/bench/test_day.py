"""The simulated delivery day (bench/day_*.py): deterministic by seed, safe under the controller, and
every order ends somewhere. Small on purpose (150 orders): the benchmark itself runs the big days."""

from __future__ import annotations

import numpy as np
import pytest

from bench import day_world as w
from bench.day_flight import SafetyCheck, Trip, below_reserve, fly, route_xy
from bench.day_sim import DayResult, simulate
from vehicles.spec import VehicleKind, default_spec

N = 150
# Generous: waves this small stop on PyVRP's own no-improvement rule long before it, so runs repeat.
VAN_LIMIT_S = 10.0


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return w.station()


@pytest.fixture(scope="module")
def day(config) -> DayResult:  # type: ignore[no-untyped-def]
    orders = w.orders(N, 3, config)
    return simulate("controller", orders, w.fleet_for(N), config, van_time_limit_s=VAN_LIMIT_S, seed=3)


def _summary(result: DayResult) -> list[tuple[str, str, float | None, str | None]]:
    return sorted((k, o.mode, o.delivered_s, o.vehicle_id) for k, o in result.outcomes.items())


def test_orders_are_deterministic_by_seed(config) -> None:  # type: ignore[no-untyped-def]
    assert w.orders(N, 3, config) == w.orders(N, 3, config)
    assert w.orders(N, 3, config) != w.orders(N, 4, config)


def test_the_day_repeats_with_the_same_seed(config, day: DayResult) -> None:  # type: ignore[no-untyped-def]
    again = simulate(
        "controller", w.orders(N, 3, config), w.fleet_for(N), config, van_time_limit_s=VAN_LIMIT_S, seed=3
    )
    assert _summary(again) == _summary(day)
    assert again.van_km == pytest.approx(day.van_km)


def test_every_order_ends_somewhere(day: DayResult) -> None:
    assert set(day.outcomes) == {o.id for o in day.orders}
    by_id = {o.id: o for o in day.orders}
    for oid, out in day.outcomes.items():
        assert out.mode in {"drone", "robot", "van", "carried_over"}
        if out.mode == "carried_over":
            assert out.delivered_s is None
        else:
            assert out.delivered_s is not None and out.delivered_s >= by_id[oid].t_s
    flown = [t.order_id for t in day.trips]
    assert len(flown) == len(set(flown))  # no order is carried twice
    assert {t.order_id for t in day.trips} == {
        k for k, o in day.outcomes.items() if o.mode in {"drone", "robot"}
    }
    assert any(o.mode == "drone" for o in day.outcomes.values())
    assert any(o.mode == "van" for o in day.outcomes.values())


def test_the_controller_day_is_safe(config, day: DayResult) -> None:  # type: ignore[no-untyped-def]
    safety = SafetyCheck(config, w.DAY_END_S)
    assert safety.zone_entries(day.trips) == 0
    assert below_reserve(day.trips) == 0
    for trip in day.trips:  # a vehicle is never on two trips at once
        later = [t for t in day.trips if t.vehicle_id == trip.vehicle_id and t.launch_s > trip.launch_s]
        assert all(t.launch_s >= trip.back_s for t in later)


def test_the_safety_checks_see_violations(config) -> None:  # type: ignore[no-untyped-def]
    """A flight straight across Sky Harbor's class B, and one that drains into the reserve, are counted."""
    spec = default_spec(VehicleKind.DRONE)
    lon, lat = config.frame.to_wgs84(np.array([0.0, 15_000.0]), np.array([0.0, -600.0]))
    xy = route_xy(config, list(zip(lon.tolist(), lat.tolist(), strict=True)))
    trip = fly("x", "d01", spec, 1.0, xy, 3600.0, 100.0)
    assert SafetyCheck(config, w.DAY_END_S).zone_entries([trip]) == 1
    drained = Trip("y", "d01", VehicleKind.DRONE, 0.0, 1.0, 2.0, xy, 400.0, 460.0, spec)
    assert below_reserve([drained]) == 1


def test_measured_flight_energy_is_in_the_predictors_range(config) -> None:  # type: ignore[no-untyped-def]
    """The simulator's power model gives a plausible flight: tens to hundreds of Wh (docs/energy.md)."""
    spec = default_spec(VehicleKind.DRONE)
    lon, lat = config.frame.to_wgs84(np.array([0.0, 0.0]), np.array([0.0, 8000.0]))
    xy = route_xy(config, list(zip(lon.tolist(), lat.tolist(), strict=True)))
    trip = fly("z", "d01", spec, 2.0, xy, 0.0, 0.0)
    assert 80.0 < trip.measured_wh < 250.0
    assert trip.drop_s < trip.back_s


def test_a_zone_that_starts_during_the_trip_is_avoided(config) -> None:  # type: ignore[no-untyped-def]
    from controller.assignment import Demand, Planner

    launch_s = 43 * 60.0
    planner = Planner(config, at=w.at(launch_s))
    fleet = w.Fleet(drones=1, robots=0, vans=0).vehicles()
    # Inside the TFR's circle, which comes into force during the trip: refused, not flown into.
    lon, lat = config.frame.to_wgs84(np.array([-3074.0]), np.array([9991.0]))
    (inside,) = planner.plan([Demand("in", 1.0, float(lat[0]), float(lon[0]))], fleet, max_rounds=1)
    assert inside.status == "van" and "exclusion_zone" in inside.reasons
    # Beyond it: flown around it, though it is not in force yet at launch.
    lon, lat = config.frame.to_wgs84(np.array([-600.0]), np.array([14500.0]))
    (d,) = planner.plan([Demand("p", 1.0, float(lat[0]), float(lon[0]))], fleet, max_rounds=1)
    assert d.status == "assigned" and d.route is not None and d.energy_wh is not None
    assert d.detoured
    trip = fly("p", "d01", fleet[0].spec, 1.0, route_xy(config, d.route), launch_s, d.energy_wh)
    assert trip.back_s > 3600.0  # still flying when the TFR becomes active
    assert SafetyCheck(config, w.DAY_END_S).zone_entries([trip]) == 0
