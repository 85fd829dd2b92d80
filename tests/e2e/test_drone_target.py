"""A delivery judged only on the wire, against the selected copter target.

With `ARDUPILOT_SITL` set this flies the real ArduPilot SITL (`sitl.ardupilot`); otherwise the built-in
simulator. Nothing here reads simulator internals: the assertions use what the driver heard, so the same
test holds for both.
"""

from __future__ import annotations

import math

import pytest

from controller.missions.drone import DeliveryPlan, FencePlan, fly_delivery
from sitl.ardupilot import copter_target, open_copters
from vehicles.mavlink import DroneDriver

pytestmark = [pytest.mark.ardupilot, pytest.mark.slow, pytest.mark.timeout(240)]

HOME = (33.4484, -112.2590, 300.0, 0.0)


def _dist_m(a, b) -> float:
    lat = math.radians((a[0] + b[0]) / 2)
    return 6371000.0 * math.hypot(math.radians(b[0] - a[0]), math.radians(b[1] - a[1]) * math.cos(lat))


async def test_delivery_on_the_selected_copter_target():
    station = HOME[:2]
    destination = (station[0] + 350 / 111_320, station[1])
    plan = DeliveryPlan(
        package_id="pkg-t", vehicle_id="drone-t", station=station, waypoints_out=[], destination=destination,
        waypoints_back=[], payload_kg=0.5, cruise_alt_m=30.0, gcs_timeout_s=30.0,
        fence=FencePlan(exclusion_circles=[((station[0], station[1] + 400 / 93_000), 60.0)], ceiling_m=100.0),
    )  # fmt: skip
    async with (
        open_copters(1, home=HOME, speedup=20, target=copter_target()) as copters,
        DroneDriver(heartbeat_period_s=0.1, link_timeout_s=2.0, connect_timeout_s=60.0) as driver,
    ):
        drone = await driver.add("drone-t", copters.urls()[0])
        result = await fly_delivery(drone, plan, ready_timeout_s=120.0)

    assert result.delivered and result.returned, result.reason
    assert result.release_position is not None and _dist_m(result.release_position, destination) < 5.0
    assert result.energy_used_wh is not None and result.energy_used_wh > 0
    reached = [e["seq"] for e in result.events if e["event"] == "MissionItemReached"]
    assert reached == sorted(reached) and len(reached) >= 4
