"""The assignment engine: every reason code, detours, deadlines, queues, and optimal (not greedy) matching."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.assignment import Decision, Demand, Planner
from controller.fleet import FleetVehicle
from controller.reasons import REASON_ORDER, Reason, sort_reasons
from controller.station import StationConfig
from geofences import LocalFrame, ZoneIndex, load_zones
from geofences.checks import zone_geometry_xy
from vehicles.energy import drone_trip_energy
from vehicles.spec import DRONE_DEFAULT, ROBOT_DEFAULT, VehicleKind

STATION = (33.4400, -112.2560)
FRAME = LocalFrame(*STATION)
AT = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


def at_xy(x: float, y: float) -> tuple[float, float]:
    """(lat, lon) of a point x m east, y m north of the station."""
    lon, lat = FRAME.to_wgs84(x, y)
    return float(lat), float(lon)


def circle_feature(
    zone_id: str, x: float, y: float, radius: float, kind: str = "no_fly", **props: object
) -> dict:
    lat, lon = at_xy(x, y)
    return {
        "type": "Feature",
        "id": zone_id,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"name": zone_id, "kind": kind, "radius_m": radius, **props},
    }


def box_feature(zone_id: str, x0: float, y0: float, x1: float, y1: float, kind: str, **props: object) -> dict:
    corners = [at_xy(x0, y0), at_xy(x1, y0), at_xy(x1, y1), at_xy(x0, y1), at_xy(x0, y0)]
    ring = [[lon, lat] for lat, lon in corners]
    return {
        "type": "Feature",
        "id": zone_id,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"name": zone_id, "kind": kind, **props},
    }


def make_station(
    tmp_path: Path, features: list[dict], *, wind: float = 0.0, wind_from: float = 0.0
) -> StationConfig:
    zones = tmp_path / "zones.geojson"
    zones.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return StationConfig(
        name="test",
        lat=STATION[0],
        lon=STATION[1],
        zones_file=zones,
        weather={"wind_speed_mps": wind, "wind_from_deg": wind_from},
    )


def drone(vid: str, charge: float = 1.0, online: bool = True) -> FleetVehicle:
    return FleetVehicle(vid, VehicleKind.DRONE, DRONE_DEFAULT, charge=charge, online=online)


def robot(vid: str, charge: float = 1.0) -> FleetVehicle:
    return FleetVehicle(vid, VehicleKind.ROBOT, ROBOT_DEFAULT, charge=charge)


def pkg(pid: str, kg: float, x: float, y: float, **kw: object) -> Demand:
    lat, lon = at_xy(x, y)
    return Demand(pid, kg, lat, lon, **kw)  # type: ignore[arg-type]


def plan(station: StationConfig, packages: list[Demand], fleet: list[FleetVehicle]) -> dict[str, Decision]:
    return {d.package_id: d for d in Planner(station, at=AT).plan(packages, fleet)}


@pytest.fixture
def open_sky(tmp_path: Path) -> StationConfig:
    return make_station(tmp_path, [])


def test_light_near_package_goes_by_drone_now(open_sky: StationConfig) -> None:
    d = plan(open_sky, [pkg("p", 1.0, 5000, 0)], [drone("d1"), robot("r1")])["p"]
    assert (d.status, d.mode, d.vehicle_id) == ("assigned", "drone", "d1")
    assert d.energy_wh and d.margin_wh and d.margin_wh > 0
    assert d.eta and AT < d.eta < AT + timedelta(minutes=10)


def test_heavy_package_in_robot_range_goes_by_robot(open_sky: StationConfig) -> None:
    d = plan(open_sky, [pkg("p", 4.0, 1000, 500)], [drone("d1"), robot("r1")])["p"]
    assert (d.mode, d.vehicle_id) == ("robot", "r1")


def test_overweight(open_sky: StationConfig) -> None:
    d = plan(open_sky, [pkg("p", 5.8 * 0.45359237, 5000, 0)], [drone("d1"), robot("r1")])["p"]
    assert d.mode == "van"
    assert d.reasons == [Reason.OVERWEIGHT, Reason.OUT_OF_RANGE]
    assert d.hints["drone"]["overweight"] == "0.8 lb over the drone limit (under 5.0 lb)"
    assert "beyond the robot radius" in d.hints["robot"]["out_of_range"]


@pytest.mark.parametrize(
    ("pounds", "hint"),
    [
        (4.9999, None),  # under 5 lb: it flies
        (5.0, "5.0 lb: drone packages must weigh under 5.0 lb"),  # the limit itself goes by van
        (5.0001, "0.0001 lb over the drone limit (under 5.0 lb)"),  # never "0.0 lb over"
        (5.04, "0.04 lb over the drone limit (under 5.0 lb)"),
    ],
)
def test_drones_carry_packages_under_5_lb(open_sky: StationConfig, pounds: float, hint: str | None) -> None:
    d = plan(open_sky, [pkg("p", pounds * 0.45359237, 3000, 0)], [drone("d1")])["p"]
    if hint is None:
        assert (d.status, d.mode) == ("assigned", "drone"), d
    else:
        assert d.mode == "van" and d.reasons == [Reason.OVERWEIGHT]
        assert d.hints["drone"]["overweight"] == hint


def test_out_of_range(open_sky: StationConfig) -> None:
    d = plan(open_sky, [pkg("p", 1.0, 0, 20000)], [drone("d1")])["p"]
    assert d.reasons == [Reason.OUT_OF_RANGE]
    assert d.hints["drone"]["out_of_range"].startswith("2.4 mi beyond the drone radius")


def test_exclusion_zone_around_destination(tmp_path: Path) -> None:
    station = make_station(tmp_path, [circle_feature("airport", 8000, 0, 1500)])
    d = plan(station, [pkg("p", 1.0, 8000, 200)], [drone("d1")])["p"]
    assert d.reasons == [Reason.EXCLUSION_ZONE]
    assert "airport" in d.hints["drone"]["exclusion_zone"]


def test_outside_operating_area(tmp_path: Path) -> None:
    station = make_station(
        tmp_path, [box_feature("sidewalks", -1000, -1000, 1000, 1000, "operating_area", applies_to="robot")]
    )
    d = plan(station, [pkg("p", 4.0, 2000, 0)], [drone("d1"), robot("r1")])["p"]
    assert d.reasons == [Reason.OVERWEIGHT, Reason.OUTSIDE_OPERATING_AREA]


def test_insufficient_battery_names_the_vehicle_and_the_missing_charge(open_sky: StationConfig) -> None:
    d = plan(open_sky, [pkg("p", 2.0, 15000, 0)], [drone("d3", charge=0.5)])["p"]
    assert d.reasons == [Reason.INSUFFICIENT_BATTERY]
    need = drone_trip_energy(
        DRONE_DEFAULT, 2.0, 15000.0, 15000.0, out_bearing_deg=90.0, back_bearing_deg=270.0
    ).energy_wh.item()
    missing = need / DRONE_DEFAULT.battery_wh - (0.5 - DRONE_DEFAULT.reserve_fraction)
    assert (
        d.hints["drone"]["insufficient_battery"]
        == f"needs {missing * 100:.0f} % more charge than drone d3 has"
    )


def test_a_charged_drone_takes_what_a_flat_one_cannot(open_sky: StationConfig) -> None:
    d = plan(open_sky, [pkg("p", 2.0, 15000, 0)], [drone("d3", charge=0.5), drone("d4", charge=1.0)])["p"]
    assert d.vehicle_id == "d4"


def test_wind_above_the_drone_limit(tmp_path: Path) -> None:
    station = make_station(tmp_path, [], wind=DRONE_DEFAULT.max_wind_mps + 2.0, wind_from=270.0)
    d = plan(station, [pkg("p", 1.0, 6000, 0)], [drone("d1")])["p"]
    assert d.reasons == [Reason.WIND]
    assert "above the drone limit of 12.0 m/s" in d.hints["drone"]["wind"]


def test_headwind_costs_energy(tmp_path: Path) -> None:
    calm = plan(make_station(tmp_path, []), [pkg("p", 1.0, 10000, 0)], [drone("d1")])["p"]
    windy = plan(
        make_station(tmp_path, [], wind=8.0, wind_from=90.0), [pkg("p", 1.0, 10000, 0)], [drone("d1")]
    )["p"]
    assert windy.energy_wh > calm.energy_wh  # type: ignore[operator]


def test_deadline_that_no_vehicle_can_meet(open_sky: StationConfig) -> None:
    d = plan(open_sky, [pkg("p", 1.0, 15000, 0, deadline=AT + timedelta(minutes=5))], [drone("d1")])["p"]
    assert d.reasons == [Reason.DEADLINE]
    assert "after the deadline" in d.hints["drone"]["deadline"]


def test_no_vehicle_available_when_the_only_drone_is_offline(open_sky: StationConfig) -> None:
    d = plan(open_sky, [pkg("p", 1.0, 5000, 0)], [drone("d1", online=False)])["p"]
    assert d.reasons == [Reason.NO_VEHICLE_AVAILABLE]


def test_detour_around_a_zone_that_blocks_the_straight_line(tmp_path: Path) -> None:
    station = make_station(tmp_path, [circle_feature("tfr", 5000, 0, 1500)])
    d = plan(station, [pkg("p", 1.0, 10000, 0)], [drone("d1")])["p"]
    assert d.mode == "drone" and d.detoured and d.route is not None
    zone = load_zones(station.zones_file)[0]  # type: ignore[arg-type]
    index = ZoneIndex([zone], FRAME, "drone")
    assert index.paths_clear([d.route, d.route[::-1]]).all()
    x, y = FRAME.to_local([p[0] for p in d.route], [p[1] for p in d.route])
    assert not shapely.LineString(np.column_stack([x, y])).intersects(zone_geometry_xy(zone, FRAME))
    straight = plan(make_station(tmp_path, []), [pkg("p", 1.0, 10000, 0)], [drone("d1")])["p"]
    assert d.energy_wh > straight.energy_wh  # type: ignore[operator]


def test_reachable_only_by_detour_is_refused_when_the_detour_exceeds_the_battery(tmp_path: Path) -> None:
    wall = box_feature("wall", 3000, -9000, 3500, 9000, "no_fly")
    station = make_station(tmp_path, [wall])
    d = plan(station, [pkg("p", 2.2, 14000, 0)], [drone("d1", charge=0.6)])["p"]
    assert d.mode == "van" and Reason.INSUFFICIENT_BATTERY in d.reasons
    d = plan(station, [pkg("p", 0.5, 6000, 0)], [drone("d1")])["p"]
    assert d.mode == "drone" and d.detoured


def test_matching_is_globally_better_than_greedy(open_sky: StationConfig) -> None:
    """Greedy (near package first, fastest drone) strands the far one; the optimal matching carries both."""
    near = pkg("near", 1.0, 2000, 0, priority=1)
    far = pkg("far", 2.0, 15000, 0)
    fleet = [drone("full", charge=1.0), drone("low", charge=0.45)]
    decisions = plan(open_sky, [near, far], fleet)
    assert decisions["near"].vehicle_id == "low"
    assert decisions["far"].vehicle_id == "full"
    assert all(d.status == "assigned" for d in decisions.values())


def test_priority_wins_the_only_drone(open_sky: StationConfig) -> None:
    packages = [pkg("normal", 1.0, 3000, 0), pkg("urgent", 1.0, 6000, 0, priority=5)]
    decisions = plan(open_sky, packages, [drone("d1")])
    assert decisions["urgent"].status == "assigned"
    assert decisions["normal"].status == "queued"
    assert decisions["normal"].eta > decisions["urgent"].eta  # type: ignore[operator]


def test_queue_gives_honest_etas_and_sends_the_late_ones_by_van(open_sky: StationConfig) -> None:
    deadline = AT + timedelta(minutes=25)
    packages = [pkg(f"p{i}", 1.0, 8000, 0, deadline=deadline) for i in range(4)]
    decisions = plan(open_sky, packages, [drone("d1")])
    statuses = sorted(d.status for d in decisions.values())
    assert statuses.count("assigned") == 1
    for d in decisions.values():
        if d.status != "van":
            assert d.eta <= deadline  # type: ignore[operator]
    vans = [d for d in decisions.values() if d.status == "van"]
    assert vans and all(d.reasons == [Reason.DEADLINE] for d in vans)


def test_earliest_window_delays_the_launch(open_sky: StationConfig) -> None:
    earliest = AT + timedelta(hours=2)
    d = plan(open_sky, [pkg("p", 1.0, 5000, 0, earliest=earliest)], [drone("d1")])["p"]
    assert d.status == "queued" and d.eta >= earliest  # type: ignore[operator]


def test_no_fleet_means_van(open_sky: StationConfig) -> None:
    d = plan(open_sky, [pkg("p", 1.0, 5000, 0)], [])["p"]
    assert d.reasons == [Reason.NO_VEHICLE_AVAILABLE]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    weights=st.lists(st.floats(0.1, 12.0), min_size=1, max_size=25),
    xs=st.lists(st.floats(-18000, 18000), min_size=25, max_size=25),
    ys=st.lists(st.floats(-18000, 18000), min_size=25, max_size=25),
    charges=st.lists(st.floats(0.2, 1.0), min_size=1, max_size=6),
)
def test_no_assignment_exceeds_payload_energy_or_zones(
    tmp_path: Path, weights: list[float], xs: list[float], ys: list[float], charges: list[float]
) -> None:
    station = make_station(
        tmp_path,
        [circle_feature("c", 4000, 4000, 2500), box_feature("b", -6000, -3000, -5000, 3000, "no_fly")],
    )
    packages = [pkg(f"p{i}", w, xs[i], ys[i]) for i, w in enumerate(weights)]
    fleet = [drone(f"d{i}", c) for i, c in enumerate(charges)] + [robot("r1", 0.5)]
    decisions = Planner(station, at=AT).plan(packages, fleet)
    assert len(decisions) == len(packages)
    index = ZoneIndex(station.zones, FRAME, "drone", altitude_m=60.0)
    charge_of = {v.id: v.charge for v in fleet}
    for d, p in zip(decisions, packages, strict=True):
        if d.mode == "van":
            assert d.reasons
            continue
        spec = DRONE_DEFAULT if d.mode == "drone" else ROBOT_DEFAULT
        assert p.weight_kg <= spec.max_payload_kg
        assert d.margin_wh is not None and d.margin_wh >= 0.0
        if d.status == "assigned":  # launching now, on the vehicle's present charge
            usable = spec.battery_wh * (charge_of[d.vehicle_id] - spec.reserve_fraction)  # type: ignore[index]
            assert d.energy_wh <= usable + 1e-9  # type: ignore[operator]
        if d.mode == "drone":
            assert d.route is not None
            assert index.paths_clear([d.route, d.route[::-1]]).all()


def test_vectorized_plan_handles_thousands(open_sky: StationConfig) -> None:
    rng = np.random.default_rng(1)
    packages = [
        pkg(f"p{i}", float(w), float(x), float(y))
        for i, (w, x, y) in enumerate(
            zip(
                rng.uniform(0.2, 6, 2000),
                rng.uniform(-15000, 15000, 2000),
                rng.uniform(-15000, 15000, 2000),
                strict=True,
            )
        )
    ]
    fleet = [drone(f"d{i}") for i in range(150)] + [robot(f"r{i}") for i in range(50)]
    decisions = Planner(open_sky, at=AT).plan(packages, fleet)
    assert sum(d.status == "assigned" for d in decisions) == 200
    assert len({d.vehicle_id for d in decisions if d.status == "assigned"}) == 200


def test_next_tick_reuses_routes_until_a_time_limited_zone_comes_into_force(tmp_path: Path) -> None:
    window = {
        "active_from": (AT + timedelta(hours=2)).isoformat(),
        "active_until": (AT + timedelta(hours=4)).isoformat(),
    }
    station = make_station(tmp_path, [circle_feature("tfr", 5000, 0, 1500, **window)])
    packages, fleet = [pkg("p", 1.0, 10000, 0)], [drone("d1")]
    first = Planner(station, at=AT)
    assert not first.plan(packages, fleet)[0].detoured
    same = Planner(station, at=AT + timedelta(minutes=5), previous=first)
    assert not same.plan(packages, fleet)[0].detoured
    router = same.router(VehicleKind.DRONE, DRONE_DEFAULT.max_range_m, 60.0)
    assert router is first.router(VehicleKind.DRONE, DRONE_DEFAULT.max_range_m, 60.0)
    # Launching 30 min before the TFR starts: the drone would still be out when it does, so it goes around.
    before = Planner(station, at=AT + timedelta(hours=1, minutes=30), previous=same)
    assert before.plan(packages, fleet)[0].detoured
    during = Planner(station, at=AT + timedelta(hours=3), previous=before)
    assert during.plan(packages, fleet)[0].detoured
    after = Planner(station, at=AT + timedelta(hours=4), previous=during)
    assert not after.plan(packages, fleet)[0].detoured


@given(st.lists(st.sampled_from(list(Reason)), max_size=12))
def test_reasons_are_reported_most_fundamental_first_each_once(reasons: list[Reason]) -> None:
    ordered = sort_reasons(reasons)
    assert set(ordered) == set(reasons) and len(ordered) == len(set(reasons))
    assert ordered == [r for r in REASON_ORDER if r in reasons]
    if Reason.OVERWEIGHT in reasons:  # what a dispatcher must read first about a 30 kg parcel
        assert ordered[0] is Reason.OVERWEIGHT


@pytest.mark.parametrize("idle", ["offline drone", "robot suited to nothing"])
def test_a_vehicle_that_can_take_nothing_leaves_the_horizon_alone(open_sky: StationConfig, idle: str) -> None:
    """One drone for 200 parcels 4 km out: it can fly a few within the 2 h horizon; the rest go to the
    vans at once. An offline drone, or a robot that can carry none of them (all beyond its radius), is free
    at 0 for ever: it once kept the look-ahead going until every parcel had a trip days ahead."""
    extra = drone("d9", online=False) if idle == "offline drone" else robot("r1")
    parcels = [pkg(f"p{i}", 1.0, 4000, 0) for i in range(200)]  # beyond the robot's 3 km
    decisions = Planner(open_sky, at=AT, horizon_s=2 * 3600.0).plan(parcels, [drone("d1"), extra])
    by = {d.package_id: d for d in decisions}
    flown = [d for d in decisions if d.mode == "drone"]
    vans = [d for d in decisions if d.mode == "van"]
    assert 0 < len(flown) < 200 and len(flown) + len(vans) == 200
    last = max(d.eta for d in flown if d.eta is not None)
    assert last - AT < timedelta(hours=2, minutes=30), last - AT  # the horizon, plus the last trip
    assert Reason.NO_VEHICLE_AVAILABLE in by[vans[0].package_id].reasons


@pytest.mark.parametrize("max_rounds", [None, 1])
def test_a_package_that_cannot_arrive_within_the_horizon_goes_by_van_at_once(
    open_sky: StationConfig, max_rounds: int | None
) -> None:
    """Its window opens after the horizon: a van now, with the reason, not a promise (nor a queue place) for
    tomorrow; a full look-ahead and a busy tick's one round say the same. The other package still flies."""
    packages = [pkg("tomorrow", 1.0, 5000, 0, earliest=AT + timedelta(hours=3)), pkg("now", 1.0, 5000, 0)]
    planner = Planner(open_sky, at=AT, horizon_s=2 * 3600.0)
    by = {d.package_id: d for d in planner.plan(packages, [drone("d1"), drone("d2")], max_rounds=max_rounds)}
    assert (by["tomorrow"].status, by["tomorrow"].reasons) == ("van", [Reason.NO_VEHICLE_AVAILABLE])
    assert by["tomorrow"].hints["drone"]["no_vehicle_available"] == (
        "no drone could be at the door within the 2 h planning horizon"
    )
    assert (by["now"].status, by["now"].mode) == ("assigned", "drone")


def test_no_eta_past_the_horizon(open_sky: StationConfig) -> None:
    """A long queue for two drones: every promised ETA is within the horizon; the rest are vans, at once."""
    parcels = [pkg(f"p{i}", 1.0, 3000 + 20 * i, 0) for i in range(120)]
    decisions = Planner(open_sky, at=AT, horizon_s=3600.0).plan(parcels, [drone("d1"), drone("d2")])
    etas = [d.eta for d in decisions if d.mode == "drone"]
    assert len(etas) > 4 and all(eta <= AT + timedelta(hours=1) for eta in etas if eta is not None)
    vans = [d for d in decisions if d.mode == "van"]
    assert len(vans) + len(etas) == 120 and all(Reason.NO_VEHICLE_AVAILABLE in d.reasons for d in vans)
