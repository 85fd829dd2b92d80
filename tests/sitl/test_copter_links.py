"""Links as a ground station sees them: heartbeats, streams on request, params, reconnection, signing."""

from __future__ import annotations

import asyncio
import time

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import SimCopterFleet

from .conftest import CopterClient

M = mavlink
KEY = bytes(range(32))


async def test_heartbeat_identifies_an_arducopter_quad_and_streams_start_only_on_request(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    hb = await copter_client.expect("HEARTBEAT")
    assert (hb.type, hb.autopilot) == (M.MAV_TYPE_QUADROTOR, M.MAV_AUTOPILOT_ARDUPILOTMEGA)
    assert hb.custom_mode == 0 and hb.system_status == M.MAV_STATE_STANDBY
    assert hb.base_mode & M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
    assert hb.get_srcSystem() == 1 and hb.get_srcComponent() == 1
    since = copter_client.mark()
    await copter_client.expect("HEARTBEAT", since=since)
    await copter_client.expect("HEARTBEAT", since=copter_client.mark())
    assert not [m for m in copter_client.log[since:] if m.get_type() == "GLOBAL_POSITION_INT"]

    assert await copter_client.command(M.MAV_CMD_SET_MESSAGE_INTERVAL, 33, 200_000) == M.MAV_RESULT_ACCEPTED
    copter = copter_fleet.vehicles[0]
    first = await copter_client.expect("GLOBAL_POSITION_INT")
    t0 = copter.time_s
    for _ in range(5):
        await copter_client.expect("GLOBAL_POSITION_INT")
    rate = 5 / (copter.time_s - t0)
    assert 4.0 <= rate <= 6.0  # 5 Hz of simulated time
    assert abs(first.lat / 1e7 - 33.4484) < 1e-6 and first.relative_alt == 0

    assert await copter_client.command(M.MAV_CMD_SET_MESSAGE_INTERVAL, 32, 500_000) == M.MAV_RESULT_ACCEPTED
    local = await copter_client.expect("LOCAL_POSITION_NED")
    assert (local.x, local.y, local.z) == (0.0, 0.0, 0.0)
    assert await copter_client.command(M.MAV_CMD_SET_MESSAGE_INTERVAL, 46, 1e6) == M.MAV_RESULT_ACCEPTED
    assert await copter_client.command(M.MAV_CMD_SET_MESSAGE_INTERVAL, 11030, 1e6) == M.MAV_RESULT_FAILED
    copter_client.mav.request_data_stream_send(1, 1, M.MAV_DATA_STREAM_EXTRA3, 2, 1)
    batt = await copter_client.expect("BATTERY_STATUS")
    assert batt.battery_remaining == 100 and batt.voltages[0] == 4200
    assert await copter_client.command(M.MAV_CMD_REQUEST_MESSAGE, 242) == M.MAV_RESULT_ACCEPTED
    home = await copter_client.expect("HOME_POSITION", since=copter_client.mark() - 5)
    assert home.altitude == 300_000


async def test_parameters_list_read_and_set(copter_fleet: SimCopterFleet, copter_client: CopterClient):
    since = copter_client.mark()
    copter_client.mav.param_request_list_send(1, 1)
    first = await copter_client.expect("PARAM_VALUE", since=since)
    names = set()
    async with asyncio.timeout(5):
        while len(names) < first.param_count:
            m = await copter_client.expect("PARAM_VALUE", since=since)
            since = copter_client.log.index(m, since) + 1
            names.add(m.param_id)
    needed = ["BATT_CAPACITY", "BATT_LOW_VOLT", "BATT_FS_LOW_ACT", "FENCE_ENABLE", "FENCE_ACTION"]
    needed += ["FS_GCS_ENABLE", "FS_GCS_TIMEOUT", "RTL_ALT", "WPNAV_SPEED", "MAV_SYSID", "SIM_SPEEDUP"]
    for name in needed:
        assert name in names
    copter_client.mav.param_request_read_send(1, 1, b"WPNAV_SPEED", -1)
    speed = await copter_client.expect("PARAM_VALUE", lambda m: m.param_id == "WPNAV_SPEED")
    assert speed.param_value == 2200 and speed.param_type == M.MAV_PARAM_TYPE_REAL32
    copter_client.mav.param_set_send(1, 1, b"RTL_ALT", 3000, M.MAV_PARAM_TYPE_INT32)
    echo = await copter_client.expect("PARAM_VALUE", lambda m: m.param_id == "RTL_ALT")
    assert echo.param_value == 3000 and echo.param_type == M.MAV_PARAM_TYPE_INT32
    assert copter_fleet.vehicles[0].params["RTL_ALT"] == 3000


async def test_fleet_ports_sysids_and_reconnection():
    async with SimCopterFleet(3, base_port=0, speedup=10) as fleet:
        assert len(set(fleet.tcp_ports)) == 3
        assert fleet.urls()[2] == f"tcp:127.0.0.1:{fleet.tcp_ports[2]}"
        for i, port in enumerate(fleet.tcp_ports):
            c = await CopterClient.connect(port)
            hb = await c.expect("HEARTBEAT")
            assert hb.get_srcSystem() == i + 1
            await c.close()
        # the same port takes a new connection after a client left, and two at once
        a = await CopterClient.connect(fleet.tcp_ports[0])
        b = await CopterClient.connect(fleet.tcp_ports[0])
        await asyncio.gather(a.expect("HEARTBEAT"), b.expect("HEARTBEAT"))
        assert await a.command(M.MAV_CMD_DO_SET_MODE, 1, 4) == M.MAV_RESULT_ACCEPTED
        hb = await b.expect("HEARTBEAT", lambda m: m.custom_mode == 4)
        assert hb.base_mode & M.MAV_MODE_FLAG_GUIDED_ENABLED
        await a.close()
        await b.close()


def sign(client: CopterClient, key: bytes) -> None:
    client.mav.signing.secret_key = key
    client.mav.signing.link_id = 1
    client.mav.signing.sign_outgoing = True
    client.mav.signing.timestamp = int((time.time() - 1420070400) * 100_000)


async def test_signing_refuses_unsigned_and_badly_signed_commands(copter_fleet: SimCopterFleet):
    """On a telemetry link (SERIAL1) a signed copter drops unsigned and badly signed packets without a word;
    SERIAL0, MAVLink channel 0, stays trusted (GCS_Signing.cpp accept_unsigned_callback)."""
    copter = copter_fleet.vehicles[0]
    assert copter_fleet.telemetry_urls() == [f"tcp:127.0.0.1:{copter_fleet.telemetry_ports[0]}"]
    copter_client = await CopterClient.connect(copter_fleet.telemetry_ports[0])
    copter_client.mav.setup_signing_send(1, 1, KEY, int((time.time() - 1420070400) * 100_000))
    sign(copter_client, KEY)
    assert await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, 4) == M.MAV_RESULT_ACCEPTED
    hb = await copter_client.expect("HEARTBEAT")
    assert hb.get_signed()  # the vehicle signs what it sends

    intruder = await CopterClient.connect(copter_fleet.telemetry_ports[0], sysid=250)
    forger = await CopterClient.connect(copter_fleet.telemetry_ports[0], sysid=251)
    console = await CopterClient.connect(copter_fleet.tcp_ports[0], sysid=252)  # channel 0, unsigned
    sign(forger, bytes(32 - 1) + b"\x01")
    try:
        for bad in (intruder, forger):
            bad.mav.command_long_send(1, 1, M.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 0, 0, 0, 0, 0, 0)
            bad.mav.setup_signing_send(1, 1, bytes(32), 0)  # an attempt to switch signing off
        # the signed GCS's next command is answered; the others never were, and nothing armed
        assert await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, 5) == M.MAV_RESULT_ACCEPTED
        assert not any(m.get_type() == "COMMAND_ACK" for m in intruder.log + forger.log)
        assert not copter.armed and copter.mode == "LOITER"
        assert sum(link.rx_rejected for link in copter.outlets) >= 4  # they arrived, and were refused
        assert copter.signing.secret_key == KEY
        assert await console.command(M.MAV_CMD_DO_SET_MODE, 1, 4) == M.MAV_RESULT_ACCEPTED  # trusted
        assert await copter_client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    finally:
        for c in (intruder, forger, console, copter_client):
            await c.close()
