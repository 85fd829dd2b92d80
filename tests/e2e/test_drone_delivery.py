"""Done-when, drones: a package delivered around a no-fly zone, and ten deliveries at once (sitl.copter)."""

from __future__ import annotations

import asyncio
import math

import pytest
from shapely.geometry import LineString

from controller.missions.drone import DeliveryPlan, fence_from_zones, fly_delivery
from geofences.checks import ZoneIndex
from geofences.detours import DetourPlanner
from geofences.frame import LocalFrame
from geofences.zones import load_zones

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

STATION = (33.4484, -112.2590)


def _north_east(frame: LocalFrame, north_m: float, east_m: float) -> tuple[float, float]:
    lon, lat = frame.to_wgs84(east_m, north_m)
    return float(lat), float(lon)


def _zones(frame: LocalFrame):
    """A 300 m square no-fly zone centred 750 m north of the station, right on the straight line."""
    corners = [(600, -150), (600, 150), (900, 150), (900, -150), (600, -150)]
    ring = [[_north_east(frame, n, e)[1], _north_east(frame, n, e)[0]] for n, e in corners]
    return load_zones({
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                      "properties": {"id": "school", "kind": "no_fly"}}],
    })  # fmt: skip


def _plan_around(zones, frame, destination, vehicle_id="drone-1", package_id="pkg-1") -> DeliveryPlan:
    planner = DetourPlanner(ZoneIndex(zones, frame, "drone"), clearance_m=40.0)
    out = planner.route((STATION[1], STATION[0]), (destination[1], destination[0]))
    assert out is not None
    via = [(lat, lon) for lon, lat in out.waypoints[1:-1]]
    return DeliveryPlan(
        package_id=package_id, vehicle_id=vehicle_id, station=STATION, waypoints_out=via,
        destination=destination, waypoints_back=via[::-1], payload_kg=1.2, cruise_alt_m=60.0,
        fence=fence_from_zones(zones, ceiling_m=120.0), gcs_timeout_s=30.0,
    )  # fmt: skip


def _dist_m(a, b) -> float:
    lat = math.radians((a[0] + b[0]) / 2)
    return 6371000.0 * math.hypot(math.radians(b[0] - a[0]), math.radians(b[1] - a[1]) * math.cos(lat))


async def test_package_is_delivered_around_a_no_fly_zone(drone_fleet, drone_driver):
    frame = LocalFrame(*STATION)
    zones = _zones(frame)
    destination = _north_east(frame, 1500, 0)
    plan = _plan_around(zones, frame, destination)
    assert plan.waypoints_out, "the planner must have detoured"

    fleet = await drone_fleet(1)
    sim = fleet.vehicles[0]
    sim.set_payload(plan.payload_kg)
    drone = await drone_driver.add("drone-1", fleet.urls()[0])
    events = []
    result = await fly_delivery(drone, plan, on_event=events.append)

    assert result.delivered, result.reason
    assert result.reason_code is None and result.returned
    # Released at the destination (the simulator's truth, not what the driver believed).
    assert sim.payload_released_at is not None
    assert _dist_m(sim.payload_released_at, destination) < 5.0
    assert result.release_position is not None and _dist_m(result.release_position, destination) < 5.0
    # Never inside the zone: every segment of the flown track stays outside it.
    zone_xy = frame.geometry_to_local(zones[0].geometry)
    xs, ys = frame.to_local([p[1] for p in sim.track], [p[0] for p in sim.track])
    assert len(sim.track) > 20
    assert not LineString(list(zip(xs, ys, strict=True))).intersects(zone_xy)
    # Back home, on the ground, disarmed; the energy reported is what the battery gave.
    assert not sim.armed and _dist_m((sim.lat, sim.lon), STATION) < 15.0
    assert result.energy_used_wh == pytest.approx(sim.energy_used_wh, rel=0.1)
    assert any(e.get("phase") == "fence_upload" for e in events)


async def test_ten_drones_fly_ten_deliveries_at_once(drone_fleet, drone_driver):
    frame = LocalFrame(*STATION)
    fleet = await drone_fleet(10)
    drones = await asyncio.gather(
        *(drone_driver.add(f"drone-{i}", url) for i, url in enumerate(fleet.urls()))
    )
    plans = []
    for i in range(10):
        bearing = math.radians(36 * i)
        dest = _north_east(frame, 900 * math.cos(bearing), 900 * math.sin(bearing))
        fleet.vehicles[i].set_payload(1.0)
        plans.append(DeliveryPlan(
            package_id=f"pkg-{i}", vehicle_id=f"drone-{i}", station=STATION, waypoints_out=[],
            destination=dest, waypoints_back=[], payload_kg=1.0, cruise_alt_m=40.0 + 5 * i,
            gcs_timeout_s=30.0,
        ))  # fmt: skip
    results = await asyncio.gather(*(fly_delivery(d, p) for d, p in zip(drones, plans, strict=True)))

    assert [r.delivered for r in results] == [True] * 10, [r.reason for r in results]
    for sim, plan, result in zip(fleet.vehicles, plans, results, strict=True):
        assert _dist_m(sim.payload_released_at, plan.destination) < 5.0
        assert result.returned and result.energy_used_wh > 0


async def test_payload_place_lowers_the_package_to_the_ground_at_the_destination(drone_fleet, drone_driver):
    frame = LocalFrame(*STATION)
    destination = _north_east(frame, 400, 300)
    fleet = await drone_fleet(1)
    sim = fleet.vehicles[0]
    sim.set_payload(0.8)
    drone = await drone_driver.add("drone-1", fleet.urls()[0])
    plan = DeliveryPlan(
        package_id="pkg-2", vehicle_id="drone-1", station=STATION, waypoints_out=[], destination=destination,
        waypoints_back=[], payload_kg=0.8, cruise_alt_m=40.0, release="payload_place", gcs_timeout_s=30.0,
    )  # fmt: skip
    result = await fly_delivery(drone, plan)
    assert result.delivered and result.returned, result.reason
    assert sim.payload_released_at is not None and _dist_m(sim.payload_released_at, destination) < 5.0
    assert sim.payload_kg == 0.0
