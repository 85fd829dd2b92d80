"""Done-when, drones: mission upload through 20 % packet loss each way, and MAVLink 2 signing."""

from __future__ import annotations

import asyncio
import socket

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from controller.missions.drone import DeliveryPlan, build_mission
from vehicles.mavlink import DroneDriver, key_from_passphrase

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

STATION = (33.4484, -112.2590)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_mission_upload_survives_20_percent_loss_both_ways(drone_fleet, lossy_relay):
    driver_port = _free_udp_port()
    relay, relay_port = await lossy_relay(driver_port, loss=0.2, seed=7)
    # The simulator sends to the relay (udpout); the relay forwards to the driver (udpin) and back.
    fleet = await drone_fleet(1, udp_out=[f"127.0.0.1:{relay_port}"])
    sim = fleet.vehicles[0]
    waypoints = [(STATION[0] + 0.001 * i, STATION[1] + 0.0005 * (i % 3)) for i in range(1, 24)]
    plan = DeliveryPlan(
        package_id="pkg-1", vehicle_id="drone-1", station=STATION, waypoints_out=waypoints,
        destination=(STATION[0] + 0.03, STATION[1]), waypoints_back=[], payload_kg=1.0,
    )  # fmt: skip
    items = build_mission(plan).items
    assert len(items) == 30

    async with DroneDriver(heartbeat_period_s=0.1, link_timeout_s=3.0) as driver:
        drone = await driver.add("drone-1", f"udpin:127.0.0.1:{driver_port}", set_rates=False)
        drone.missions.timeout_s, drone.missions.retries = 0.3, 30
        await asyncio.wait_for(drone.upload_mission(items), 90)

    stored = sim.missions.mission
    assert len(stored) == len(items)
    assert [(it.command, it.x, it.y) for it in stored[1:]] == [
        (it.command, round(it.lat * 1e7), round(it.lon * 1e7)) for it in items[1:]
    ]
    assert relay.dropped > 20  # loss really happened, in both directions
    assert relay.forwarded > relay.dropped


async def test_with_a_key_provisioned_an_unsigned_command_from_another_client_is_refused(
    drone_fleet, drone_driver
):
    fleet = await drone_fleet(1)
    sim = fleet.vehicles[0]
    key = key_from_passphrase("station-7 secret")
    drone = await drone_driver.add("drone-1", fleet.urls()[0])
    await drone.provision_signing(key)
    await drone.set_mode("GUIDED")  # signed: obeyed
    assert sim.mode == "GUIDED"

    # Another ground station on the telemetry link (SERIAL1), without the key. (On SERIAL0, MAVLink channel 0,
    # ArduPilot accepts unsigned messages even with a key: GCS_Signing.cpp accept_unsigned_callback.)
    telemetry_port = int(fleet.telemetry_urls()[0].rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", telemetry_port)
    other = mavlink.MAVLink(None, srcSystem=254, srcComponent=190)
    received: list = []
    got = asyncio.Event()

    async def read() -> None:
        while data := await reader.read(65536):
            received.extend(m for m in other.parse_buffer(data) or () if m.get_type() != "BAD_DATA")
            got.set()

    reading = asyncio.create_task(read())
    try:
        writer.write(
            other.command_long_encode(1, 1, mavlink.MAV_CMD_DO_SET_MODE, 0, 1, 5, 0, 0, 0, 0, 0).pack(other)
        )
        # Then a *signed* request on the same connection: once it is answered, the unsigned one was handled.
        other.seq += 1
        other.signing.secret_key, other.signing.sign_outgoing = key, True
        other.signing.allow_unsigned_callback = lambda *_: True
        from vehicles.mavlink.signing import signing_timestamp

        other.signing.link_id, other.signing.timestamp = 1, signing_timestamp()
        writer.write(other.param_request_read_encode(1, 1, b"MAV_SYSID", -1).pack(other))
        async with asyncio.timeout(5):
            while not any(m.get_type() == "PARAM_VALUE" for m in received):
                got.clear()
                await got.wait()
    finally:
        reading.cancel()
        writer.close()

    assert sim.mode == "GUIDED"  # the unsigned LOITER command was ignored
    assert not any(
        m.get_type() == "COMMAND_ACK" and m.command == mavlink.MAV_CMD_DO_SET_MODE for m in received
    )
