"""The mission protocol against a scripted vehicle: odd request orders, errors, silence, loss, read-back."""

from __future__ import annotations

import asyncio
import time

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from vehicles.mavlink import (
    FENCE,
    MISSION,
    DroneDriver,
    LinkError,
    MissionError,
    MissionItem,
    MissionMismatchError,
)
from vehicles.mavlink.missions import with_home

WP = mavlink.MAV_CMD_NAV_WAYPOINT


def _mission(n: int) -> list[MissionItem]:
    items = [MissionItem(mavlink.MAV_CMD_NAV_TAKEOFF, alt=30.0)]
    items += [
        MissionItem(WP, 33.4 + i * 1e-4, -112.3 - i * 1e-4, 60.0 + i, param1=i % 3) for i in range(n - 3)
    ]
    return with_home([*items, MissionItem(mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH)])


@pytest.mark.parametrize(
    ("duplicate", "reverse"), [(False, False), (True, False), (False, True), (True, True)]
)
async def test_upload_answers_duplicate_and_out_of_order_requests(peer, duplicate, reverse):
    async with peer() as server, DroneDriver() as driver:
        v = server.vehicle
        v.options.duplicate_requests, v.options.reverse_order = duplicate, reverse
        drone = await driver.add("d1", server.url, set_rates=False)
        items = _mission(12)
        got = await drone.upload_mission(items)
        assert [it.command for it in got] == [it.command for it in items]
        assert [m.x for m in v.stored[MISSION]][1:] == [round(it.lat * 1e7) for it in items][1:]
        if reverse:
            assert v.item_requests[0] == len(items) - 1


async def test_fence_upload_uses_the_fence_mission_type(peer):
    async with peer() as server, DroneDriver() as driver:
        drone = await driver.add("d1", server.url, set_rates=False)
        fence = [
            MissionItem(mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION, 33.0 + d, -112.0, param1=3,
                        frame=mavlink.MAV_FRAME_GLOBAL)
            for d in (0.0, 0.001, 0.002)
        ] + [MissionItem(mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION, 33.01, -112.01, param1=50.0,
                         frame=mavlink.MAV_FRAME_GLOBAL)]  # fmt: skip
        await drone.upload_fence(fence)
        assert len(server.vehicle.stored[FENCE]) == 4
        assert server.vehicle.stored[MISSION] == []


async def test_ack_error_is_surfaced_with_its_result(peer):
    async with peer() as server, DroneDriver() as driver:
        server.vehicle.options.final_ack = mavlink.MAV_MISSION_NO_SPACE
        drone = await driver.add("d1", server.url, set_rates=False)
        with pytest.raises(MissionError) as err:
            await drone.missions.upload(_mission(5))
        assert err.value.result == mavlink.MAV_MISSION_NO_SPACE
        assert "MAV_MISSION_NO_SPACE" in str(err.value.result_name)


async def test_a_silent_vehicle_is_a_link_error_after_the_retries(peer):
    async with peer() as server, DroneDriver() as driver:
        server.vehicle.options.silent_missions = True
        drone = await driver.add("d1", server.url, set_rates=False)
        drone.missions.timeout_s, drone.missions.retries = 0.1, 3
        started = time.monotonic()
        with pytest.raises(LinkError, match="stalled after 0/5"):
            await drone.missions.upload(_mission(5))
        assert time.monotonic() - started < 2
        counts = [m for m in server.vehicle.received if m.get_type() == "MISSION_COUNT"]
        assert len(counts) == 4  # first try plus three resends


async def test_a_lost_final_ack_is_settled_by_the_read_back(peer):
    async with peer() as server, DroneDriver() as driver:
        server.vehicle.options.lose_final_ack = True
        drone = await driver.add("d1", server.url, set_rates=False)
        drone.missions.timeout_s = 0.1
        items = _mission(6)
        assert await drone.missions.upload(items) is False  # not acknowledged: unknown from the upload alone
        got = await drone.missions.upload_verified(items)  # ... but the read-back shows it arrived
        assert len(got) == 6 and len(server.vehicle.stored[MISSION]) == 6


async def test_read_back_mismatch_names_the_item(peer):
    async with peer() as server, DroneDriver() as driver:
        server.vehicle.options.corrupt_readback = True
        drone = await driver.add("d1", server.url, set_rates=False)
        with pytest.raises(MissionMismatchError) as err:
            await drone.missions.upload_verified(_mission(4), attempts=2)
        assert err.value.differences[0].startswith("item 1: position")


@pytest.mark.slow  # 5 s
async def test_upload_and_read_back_survive_20_percent_loss_both_ways(peer, lossy_relay):
    async with peer("udp") as server, DroneDriver(link_timeout_s=5) as driver:
        upstream = int(server.url.rsplit(":", 1)[1])
        relay, port = await lossy_relay(upstream, loss=0.2, seed=42)
        drone = await driver.add("d1", f"udpout:127.0.0.1:{port}", set_rates=False)
        server.vehicle.options.rerequest_s = 0.1
        drone.missions.timeout_s, drone.missions.retries = 0.15, 30
        items = _mission(30)
        got = await asyncio.wait_for(drone.upload_mission(items), 60)
        assert len(got) == 30
        assert [m.x for m in server.vehicle.stored[MISSION]][1:] == [round(i.lat * 1e7) for i in items][1:]
        assert relay.dropped > 10  # the loss really happened
