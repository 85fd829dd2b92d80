"""What a drone delivery says at its end (issue 20, "words an operator can trust"): nothing alarming after a
normal one, and a warning when the drone really left its mission for a reason nobody knows (sitl.copter)."""

from __future__ import annotations

import asyncio

import pytest

from controller.missions.drone import DeliveryPlan, fly_delivery
from geofences.frame import LocalFrame

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

STATION = (33.4484, -112.2590)


def _plan(package_id: str) -> DeliveryPlan:
    lon, lat = LocalFrame(*STATION).to_wgs84(80.0, 120.0)
    return DeliveryPlan(
        package_id=package_id, vehicle_id="drone-1", station=STATION, waypoints_out=[],
        destination=(float(lat), float(lon)), waypoints_back=[], payload_kg=1.0, cruise_alt_m=40.0,
        gcs_timeout_s=30.0,
    )  # fmt: skip


async def test_a_second_delivery_ends_without_a_warning(drone_fleet, drone_driver):
    """The first mission leaves the drone in AUTO; arming for the next one switches it to GUIDED (as
    ArduCopter wants): that is the controller's own doing, not an unexplained mode change."""
    fleet = await drone_fleet(1)
    sim = fleet.vehicles[0]
    drone = await drone_driver.add("drone-1", fleet.urls()[0])
    for package in ("pkg-1", "pkg-2"):
        sim.set_payload(1.0)
        result = await fly_delivery(drone, _plan(package))
        assert result.delivered and result.returned, result.reason
        assert (result.reason, result.reason_code) == (None, None), f"{package}: {result.reason}"
        assert drone.state.mode == "AUTO"  # where the next flight starts from


async def test_leaving_auto_for_no_known_reason_is_still_told(drone_fleet, drone_driver):
    fleet = await drone_fleet(1)
    fleet.vehicles[0].set_payload(1.0)
    drone = await drone_driver.add("drone-1", fleet.urls()[0])
    released = asyncio.Event()

    def on_event(event: dict) -> None:
        if event.get("event") == "released":
            released.set()

    flight = asyncio.create_task(fly_delivery(drone, _plan("pkg-1"), on_event=on_event))
    async with asyncio.timeout(60):
        await released.wait()
    await drone.set_mode("RTL")  # someone else's ground station, say: no failsafe, no abort of ours
    result = await flight
    assert result.delivered and result.returned, result.reason
    assert result.reason == "left AUTO for RTL without a known failsafe"
