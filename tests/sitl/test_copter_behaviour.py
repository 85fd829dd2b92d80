"""Mission sequencing, auto-disarm, wind, mode messages, and the CLI, as a ground station sees them."""

from __future__ import annotations

import asyncio
import signal
import sys

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import SimCopterFleet, geo

from .conftest import CopterClient, item, upload

M = mavlink
HOME = (33.4484, -112.2590)


async def test_do_jump_repeats_and_mission_current_follows(copter_fleet: SimCopterFleet):
    copter_fleet.set_speedup(50)
    client = await CopterClient.connect(copter_fleet.tcp_ports[0])
    try:
        a, b = geo.offset(*HOME, 60, 0), geo.offset(*HOME, 60, 60)
        mission = [
            item(M.MAV_CMD_NAV_WAYPOINT, *HOME, 0),
            item(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 10),
            item(M.MAV_CMD_NAV_WAYPOINT, *a, 10),
            item(M.MAV_CMD_NAV_WAYPOINT, *b, 10),
            item(M.MAV_CMD_DO_JUMP, 0, 0, 0, 2, 1),  # back to item 2, once
            item(M.MAV_CMD_NAV_LAND, *HOME, 0),
        ]
        assert await upload(client, mission) == M.MAV_MISSION_ACCEPTED
        since = client.mark()
        assert await client.command(M.MAV_CMD_DO_SET_MODE, 1, 4) == M.MAV_RESULT_ACCEPTED
        assert await client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
        assert await client.command(M.MAV_CMD_MISSION_START) == M.MAV_RESULT_ACCEPTED
        copter = copter_fleet.vehicles[0]
        await copter.wait_for(lambda c: not c.armed, timeout=60)
        await client.expect("HEARTBEAT")
        reached = [m.seq for m in client.log[since:] if m.get_type() == "MISSION_ITEM_REACHED"]
        assert reached == [1, 2, 3, 2, 3, 5]
        current = [m.seq for m in client.log[since:] if m.get_type() == "MISSION_CURRENT"]
        assert current[:5] == [1, 2, 3, 2, 3] and current[-1] == 5
        assert geo.distance_m(copter.lat, copter.lon, *HOME) < 1.0
    finally:
        await client.close()


async def test_armed_on_the_ground_disarms_after_disarm_delay(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    copter = copter_fleet.vehicles[0]
    assert await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, 4) == M.MAV_RESULT_ACCEPTED
    assert await copter_client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    t0 = copter.time_s
    # Timed on the copter's own clock at the step it disarms (a heartbeat seen by the client comes up to a
    # period later, more on a loaded machine), then its heartbeat must say so.
    await copter.wait_for(lambda c: not c.armed, timeout=5)
    assert 9.5 <= copter.time_s - t0 <= 10.5  # DISARM_DELAY 10 s
    await copter_client.expect(
        "HEARTBEAT", lambda m: not m.base_mode & M.MAV_MODE_FLAG_SAFETY_ARMED, timeout=5
    )
    copter.params.set("DISARM_DELAY", 0)
    assert await copter_client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    t1 = copter.time_s
    await copter.wait_for(lambda c: c.time_s > t1 + 15, timeout=5)
    assert copter.armed


async def test_headwind_costs_energy_but_not_the_track():
    async with SimCopterFleet(2, base_port=0, speedup=50, boot_s=0) as fleet:
        calm, windy = fleet.vehicles
        windy.set_wind(10.0, from_deg=0.0)  # from the north, against the outbound leg
        dest = geo.offset(*HOME, 800, 0)
        mission = [
            item(M.MAV_CMD_NAV_WAYPOINT, *HOME, 0),
            item(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 30),
            item(M.MAV_CMD_NAV_WAYPOINT, *dest, 30),
            item(M.MAV_CMD_NAV_LAND, *dest, 0),
        ]
        for sysid, port in enumerate(fleet.tcp_ports, start=1):
            client = await CopterClient.connect(port)
            assert await upload(client, mission, target=sysid) == M.MAV_MISSION_ACCEPTED
            assert await client.command(M.MAV_CMD_DO_SET_MODE, 1, 4, target=sysid) == M.MAV_RESULT_ACCEPTED
            assert (
                await client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1, target=sysid) == M.MAV_RESULT_ACCEPTED
            )
            assert await client.command(M.MAV_CMD_MISSION_START, target=sysid) == M.MAV_RESULT_ACCEPTED
            await client.close()
        await asyncio.gather(*(v.wait_for(lambda c: not c.armed, timeout=60) for v in fleet.vehicles))
        for v in fleet.vehicles:
            assert geo.distance_m(v.lat, v.lon, *dest) < 1.0
            assert max(abs(geo.ne_of(*HOME, lat, lon)[1]) for lat, lon, _ in v.track) < 0.5  # no drift
        assert windy.energy_used_wh > calm.energy_used_wh * 1.05


async def test_set_mode_message_and_command_int_reposition(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    copter = copter_fleet.vehicles[0]
    copter_client.mav.set_mode_send(1, M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 4)
    ack = await copter_client.expect("COMMAND_ACK", lambda m: m.command == M.MAVLINK_MSG_ID_SET_MODE)
    assert ack.result == M.MAV_RESULT_ACCEPTED and copter.mode == "GUIDED"
    copter_client.mav.set_mode_send(1, M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 8)  # not a copter mode
    ack = await copter_client.expect("COMMAND_ACK", lambda m: m.command == M.MAVLINK_MSG_ID_SET_MODE)
    assert ack.result == M.MAV_RESULT_FAILED
    assert await copter_client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    assert await copter_client.command(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 15) == M.MAV_RESULT_ACCEPTED
    await copter.wait_for(lambda c: c.alt_m > 14.5, timeout=20)
    target = geo.offset(*HOME, -80, 40)
    copter_client.mav.command_int_send(
        1, 1, M.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, M.MAV_CMD_DO_REPOSITION, 0, 0, -1, 0, 0, 0,
        round(target[0] * 1e7), round(target[1] * 1e7), 20,
    )  # fmt: skip
    ack = await copter_client.expect("COMMAND_ACK", lambda m: m.command == M.MAV_CMD_DO_REPOSITION)
    assert ack.result == M.MAV_RESULT_ACCEPTED
    await copter.wait_for(
        lambda c: geo.distance_m(c.lat, c.lon, *target) < 0.5 and abs(c.alt_m - 20) < 0.3, 20
    )
    # MAVProxy's "guided" sends a MISSION_ITEM with current=2 (GCS_Common.cpp handle_mission_item)
    there = geo.offset(*HOME, 30, 30)
    guided = item(M.MAV_CMD_NAV_WAYPOINT, *there, 12)
    guided.current = 2
    copter_client.mav.send(guided)
    ack = await copter_client.expect("MISSION_ACK")
    assert ack.type == M.MAV_MISSION_ACCEPTED
    await copter.wait_for(
        lambda c: geo.distance_m(c.lat, c.lon, *there) < 0.5 and abs(c.alt_m - 12) < 0.3, 20
    )
    assert len(copter.missions.mission) == 1  # not stored as a mission item
    target = there
    assert await copter_client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 0) == M.MAV_RESULT_FAILED  # in flight
    assert await copter_client.command(M.MAV_CMD_NAV_LAND) == M.MAV_RESULT_ACCEPTED
    await copter.wait_for(lambda c: not c.armed, timeout=30)
    assert geo.distance_m(copter.lat, copter.lon, *target) < 0.5


async def test_cli_serves_copters_until_interrupted():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sitl.copter.cli", "--count", "2", "--base-port", "0", "--speedup", "5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 20)).decode() for _ in range(2)]
        assert lines[0].startswith("copter 1: tcp:127.0.0.1:") and "MAV_SYSID 2" in lines[1]
        for i, line in enumerate(lines):
            port = int(line.split()[2].rsplit(":", 1)[1])
            client = await CopterClient.connect(port)
            assert (await client.expect("HEARTBEAT")).get_srcSystem() == i + 1
            await client.close()
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 30) == 0  # seconds under load: it closes its links
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_smart_rtl_retraces_the_path_home(copter_fleet: SimCopterFleet, copter_client: CopterClient):
    copter = copter_fleet.vehicles[0]
    copter_fleet.set_speedup(50)
    # disarmed any mode is accepted, and SmartRTL is active since home was set (AP_SmartRTL::set_home)
    assert await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, 21) == M.MAV_RESULT_ACCEPTED
    assert await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, 4) == M.MAV_RESULT_ACCEPTED
    assert await copter_client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    assert await copter_client.command(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 20) == M.MAV_RESULT_ACCEPTED
    await copter.wait_for(lambda c: c.alt_m > 19.5, timeout=20)
    corner, far = geo.offset(*HOME, 0, 200), geo.offset(*HOME, 200, 200)
    for point in (corner, far):
        copter_client.mav.set_position_target_global_int_send(
            0, 1, 1, M.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, 0b0000111111111000,
            round(point[0] * 1e7), round(point[1] * 1e7), 20, 0, 0, 0, 0, 0, 0, 0, 0,
        )  # fmt: skip
        await copter.wait_for(lambda c, p=point: geo.distance_m(c.lat, c.lon, *p) < 0.5, timeout=20)
    assert len(copter.nav.srtl.path) <= 4  # two straight legs: home, corner, far
    turned = len(copter.track)
    assert await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, 21) == M.MAV_RESULT_ACCEPTED
    await copter.wait_for(lambda c: not c.armed, timeout=30)
    back = copter.track[turned:]
    assert min(geo.distance_m(lat, lon, *corner) for lat, lon, _ in back) < 15  # back the way it came
    mid_diagonal = geo.offset(*HOME, 100, 100)
    assert min(geo.distance_m(lat, lon, *mid_diagonal) for lat, lon, _ in back) > 50  # not straight home
    assert geo.distance_m(copter.lat, copter.lon, *HOME) < 1.0
