"""Done-when, drones: battery failsafe, fence breach and link loss, each judged on the simulator's truth."""

from __future__ import annotations

import asyncio
import math

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from controller.missions.drone import DeliveryPlan, FencePlan, abort_delivery, fly_delivery
from vehicles.mavlink import FenceBreach

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

STATION = (33.4484, -112.2590)
M_PER_DEG = 111_320.0


def _north(m: float) -> tuple[float, float]:
    return STATION[0] + m / M_PER_DEG, STATION[1]


def _dist_m(a, b) -> float:
    lat = math.radians((a[0] + b[0]) / 2)
    return 6371000.0 * math.hypot(math.radians(b[0] - a[0]), math.radians(b[1] - a[1]) * math.cos(lat))


def _plan(destination, **kw) -> DeliveryPlan:
    kw.setdefault("gcs_timeout_s", 30.0)
    return DeliveryPlan(
        package_id="pkg-1", vehicle_id="drone-1", station=STATION, waypoints_out=[], destination=destination,
        waypoints_back=[], payload_kg=1.0, **kw,
    )  # fmt: skip


async def test_too_little_charge_triggers_the_battery_failsafe_and_the_drone_returns(
    drone_fleet, drone_driver
):
    # 27 % charge against a 25 % reserve: enough to arm, not enough for a 3 km trip.
    fleet = await drone_fleet(1, batteries=[0.27])
    sim = fleet.vehicles[0]
    sim.set_payload(1.0)
    drone = await drone_driver.add("drone-1", fleet.urls()[0])
    result = await fly_delivery(drone, _plan(_north(3000)))

    assert not result.delivered
    assert result.reason_code == "battery_failsafe"
    assert "Battery 1 is low" in result.reason
    assert sim.payload_released_at is None and sim.payload_kg == pytest.approx(1.0)  # package still aboard
    assert result.returned and not sim.armed and _dist_m((sim.lat, sim.lon), STATION) < 15.0
    assert any(e["event"] == "ModeChanged" and e["new"] == "RTL" for e in result.events)


async def test_prearm_refusal_is_reported_with_the_vehicles_reason(drone_fleet, drone_driver):
    fleet = await drone_fleet(1, batteries=[0.2])  # below the 25 % reserve: ArduPilot refuses to arm
    drone = await drone_driver.add("drone-1", fleet.urls()[0])
    result = await fly_delivery(drone, _plan(_north(500)))
    assert (result.delivered, result.reason_code) == (False, "prearm_refused")
    assert "PreArm" in result.reason and "Battery" in result.reason
    assert not fleet.vehicles[0].armed


async def test_a_drone_commanded_into_an_exclusion_zone_is_stopped_by_its_fence(drone_fleet, drone_driver):
    fleet = await drone_fleet(1)
    sim = fleet.vehicles[0]
    drone = await drone_driver.add("drone-1", fleet.urls()[0])
    await drone.wait_ready(30)  # a freshly booted copter: "Arm: System not initialised" until then
    centre, radius = _north(400), 120.0
    fence = FencePlan(exclusion_circles=[(centre, radius)], ceiling_m=120.0)
    await drone.set_params({"FENCE_TYPE": fence.fence_type, "FENCE_ACTION": 1, "FENCE_ALT_MAX": 120})
    await drone.upload_fence(fence.to_items())
    await drone.params.set("FENCE_ENABLE", 1)

    with drone.telemetry.subscribe() as events:
        await drone.set_mode("GUIDED")
        await drone.arm()
        await drone.commands.command_long(mavlink.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 30)
        await sim.wait_for(lambda v: v.alt_m > 25, timeout=30)
        await drone.commands.goto(*centre, 30.0)  # straight into the zone: the planner is bypassed
        breach = await asyncio.wait_for(_next(events, FenceBreach), 30)
    assert breach.breach_count >= 1
    assert drone.state.fence_breached  # FENCE_STATUS.breach_status
    await sim.wait_for(lambda v: v.mode == "RTL", timeout=10)
    # Stopped at the edge: the drone never got near the centre of the zone.
    closest = min(_dist_m((lat, lon), centre) for lat, lon, _ in sim.track)
    assert closest > radius - 40.0
    await sim.wait_for(lambda v: not v.armed, timeout=60)
    assert _dist_m((sim.lat, sim.lon), STATION) < 15.0


async def test_link_loss_triggers_fs_gcs_and_the_controller_reattaches(
    drone_fleet, drone_driver, drone_tcp_relay
):
    fleet = await drone_fleet(1)
    sim = fleet.vehicles[0]
    sim.set_payload(1.0)
    relay = await drone_tcp_relay(fleet.tcp_ports[0])
    drone = await drone_driver.add("drone-1", relay.url)
    flight = asyncio.create_task(fly_delivery(drone, _plan(_north(2000), gcs_timeout_s=10.0)))

    await sim.wait_for(lambda v: v.mode == "AUTO" and v.alt_m > 50, timeout=60)
    relay.cut()  # the controller's link is gone; the drone keeps flying its mission until FS_GCS fires
    await sim.wait_for(lambda v: v.mode == "RTL", timeout=30)
    assert any("GCS Failsafe" in text for text in sim.statustexts)
    relay.restore()
    result = await asyncio.wait_for(flight, 120)

    assert not result.delivered and result.reason_code == "link_lost"
    assert "RTL" in result.reason  # what the drone did on its own while we were cut off
    reattached = [e for e in result.events if e["event"] == "reattached"]
    assert reattached and reattached[0]["mode"] == "RTL"
    assert result.returned and not sim.armed
    assert sim.payload_released_at is None
    assert relay.connections >= 2  # the driver reconnected by itself


async def test_an_operator_abort_brings_the_drone_home_and_is_reported(drone_fleet, drone_driver):
    fleet = await drone_fleet(1)
    sim = fleet.vehicles[0]
    sim.set_payload(1.0)
    drone = await drone_driver.add("drone-1", fleet.urls()[0])
    flight = asyncio.create_task(fly_delivery(drone, _plan(_north(1500))))
    await sim.wait_for(lambda v: v.mode == "AUTO" and v.alt_m > 50, timeout=60)
    await abort_delivery(drone)
    result = await asyncio.wait_for(flight, 120)
    assert (result.delivered, result.reason_code, result.returned) == (False, "aborted", True)
    assert sim.payload_released_at is None and not sim.armed


async def _next(queue, kind):
    while True:
        ev = await queue.get()
        if isinstance(ev, kind):
            return ev
