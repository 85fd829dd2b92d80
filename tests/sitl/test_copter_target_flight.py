"""A short AUTO flight judged only on the wire, against the selected copter target.

With `ARDUPILOT_SITL` set this flies the real ArduPilot SITL (the run's header says so); otherwise the
built-in simulator. Nothing here reads simulator internals, so the same assertions hold for both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.ardupilot import copter_target, open_copters
from sitl.copter import geo

from .conftest import CopterClient, item, upload

pytestmark = [pytest.mark.ardupilot, pytest.mark.timeout(240)]

M = mavlink
HOME = (33.4484, -112.2590, 300.0, 0.0)


async def arm_when_ready(client: CopterClient) -> None:
    """Arm as a GCS does: retry while pre-arm checks (GPS lock, EKF) still fail."""
    while await client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) != M.MAV_RESULT_ACCEPTED:
        await client.expect("HEARTBEAT")  # next second of vehicle time, then try again


async def upload_when_ready(client: CopterClient, mission: list) -> None:
    """Upload as a GCS does: a booting ArduPilot answers NO_SPACE ("Only 0 items are supported") until its
    mission storage is up (libraries/GCS_MAVLink/MissionItemProtocol.cpp)."""
    while (result := await upload(client, mission)) == M.MAV_MISSION_NO_SPACE:
        await client.expect("HEARTBEAT")  # next second of vehicle time, then try again
    assert result == M.MAV_MISSION_ACCEPTED


async def test_auto_flight_out_and_back_on_the_selected_target():
    target = copter_target()
    async with open_copters(1, home=HOME, speedup=20, target=target) as copters:
        client = await CopterClient.connect(copters.tcp_ports[0])
        try:
            await client.expect("HEARTBEAT", timeout=30)
            client.mav.request_data_stream_send(1, 1, M.MAV_DATA_STREAM_ALL, 4, 1)
            dest = geo.offset(HOME[0], HOME[1], 120.0, 60.0)
            mission = [
                item(M.MAV_CMD_NAV_WAYPOINT, HOME[0], HOME[1], 0),
                item(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 15),
                item(M.MAV_CMD_NAV_WAYPOINT, *dest, 20),
                item(M.MAV_CMD_NAV_RETURN_TO_LAUNCH),
            ]
            async with asyncio.timeout(60):
                await upload_when_ready(client, mission)
            assert await client.command(M.MAV_CMD_DO_SET_MODE, 1, 4) == M.MAV_RESULT_ACCEPTED
            async with asyncio.timeout(120):
                await arm_when_ready(client)
            since = client.mark()
            assert await client.command(M.MAV_CMD_MISSION_START) == M.MAV_RESULT_ACCEPTED
            over = await client.expect("MISSION_ITEM_REACHED", lambda m: m.seq == 2, since=since, timeout=120)
            assert over.seq == 2
            pos = await client.expect("GLOBAL_POSITION_INT", timeout=10)
            assert geo.distance_m(pos.lat / 1e7, pos.lon / 1e7, *dest) < 5.0
            assert abs(pos.relative_alt / 1000 - 20) < 2.0
            await client.expect(
                "HEARTBEAT",
                lambda m: not m.base_mode & M.MAV_MODE_FLAG_SAFETY_ARMED,
                since=since,
                timeout=180,
            )
            pos = await client.expect("GLOBAL_POSITION_INT", timeout=10)
            assert geo.distance_m(pos.lat / 1e7, pos.lon / 1e7, HOME[0], HOME[1]) < 5.0
            assert pos.relative_alt < 1000
        finally:
            await client.close()


@pytest.mark.slow
async def test_a_timed_wait_runs_out_by_itself_and_starts_again_when_set_current():
    """The holding point's wait (controller.missions.drone.hold_item): NAV_LOITER_TIME counts from the
    copter's arrival and then moves on to the next item by itself (ModeAuto::verify_loiter_time), and
    MISSION_SET_CURRENT to it while it runs starts it again (AP_Mission::set_current_cmd). Times are the
    copter's own (time_boot_ms), so the speed-up does not matter."""
    wait_s = 20.0
    async with open_copters(1, home=HOME, speedup=20, target=copter_target()) as copters:
        client = await CopterClient.connect(copters.tcp_ports[0])
        try:
            await client.expect("HEARTBEAT", timeout=30)
            client.mav.request_data_stream_send(1, 1, M.MAV_DATA_STREAM_ALL, 4, 1)
            hold = geo.offset(HOME[0], HOME[1], 60.0, 0.0)
            pad = geo.offset(HOME[0], HOME[1], 0.0, 10.0)
            mission = [
                item(M.MAV_CMD_NAV_WAYPOINT, HOME[0], HOME[1], 0),
                item(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 15),
                item(M.MAV_CMD_NAV_LOITER_TIME, *hold, 15, wait_s),
                item(M.MAV_CMD_NAV_LAND, *pad, 0),
            ]
            async with asyncio.timeout(60):
                await upload_when_ready(client, mission)
            assert await client.command(M.MAV_CMD_DO_SET_MODE, 1, 4) == M.MAV_RESULT_ACCEPTED
            async with asyncio.timeout(120):
                await arm_when_ready(client)
            since = client.mark()
            assert await client.command(M.MAV_CMD_MISSION_START) == M.MAV_RESULT_ACCEPTED

            def at(point: tuple[float, float], within_m: float) -> Callable[[M.MAVLink_message], bool]:
                return lambda m: geo.distance_m(m.lat / 1e7, m.lon / 1e7, *point) < within_m

            arrived = await client.expect("GLOBAL_POSITION_INT", at(hold, 1.0), since=since, timeout=120)
            renew_at = arrived.time_boot_ms + wait_s * 1000 / 2
            half = await client.expect(
                "GLOBAL_POSITION_INT", lambda m: m.time_boot_ms >= renew_at, timeout=60
            )
            assert await client.command(M.MAV_CMD_DO_SET_MISSION_CURRENT, 2) == M.MAV_RESULT_ACCEPTED
            mark = client.mark()
            moved_on = await client.expect("MISSION_CURRENT", lambda m: m.seq == 3, since=mark, timeout=120)
            left = await client.expect("GLOBAL_POSITION_INT", since=client.mark(), timeout=10)
            waited_s = (left.time_boot_ms - arrived.time_boot_ms) / 1000
            after_renewal_s = (left.time_boot_ms - half.time_boot_ms) / 1000
            assert moved_on.seq == 3
            assert wait_s - 2 <= after_renewal_s <= wait_s + 5, after_renewal_s  # the timer started again
            assert waited_s >= 1.4 * wait_s, waited_s  # ... so it waited longer than one wait in all
            await client.expect(
                "HEARTBEAT", lambda m: not m.base_mode & M.MAV_MODE_FLAG_SAFETY_ARMED, since=mark, timeout=180
            )
            pos = await client.expect("GLOBAL_POSITION_INT", timeout=10)
            assert geo.distance_m(pos.lat / 1e7, pos.lon / 1e7, *pad) < 3.0  # landed on the next item's pad
        finally:
            await client.close()
