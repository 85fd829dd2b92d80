"""Connect a station's fleet: one MAVLink driver for all drones, one MQTT link for all robots.

Used by `lastmile serve` (real vehicles or separately started simulators, as the station file names them)
and by `controller.simstation` (simulators it starts itself). A vehicle that cannot be reached at start
is left out and shown offline; the rest of the station runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlparse

from controller.service.carriers import Carrier
from controller.service.carriers_drone import DroneCarrier
from controller.service.carriers_robot import RobotCarrier
from controller.station import StationConfig
from vehicles.errors import VehicleError
from vehicles.mavlink import DroneDriver
from vehicles.spec import VehicleKind
from vehicles.vda5050 import BrokerUnavailable, FleetLink, RobotHandle

log = logging.getLogger("lastmile.service.runtime")


def drone_timing(speedup: float) -> dict[str, float]:
    """Link timings for drones whose clock runs `speedup` times faster than ours (1 for real drones).

    The drones count FS_GCS_TIMEOUT and DISARM_DELAY in their own time, but our heartbeats and our pauses
    (a busy event loop, a slow disk) happen in wall time. So: heartbeat often enough that a healthy link
    never trips the drone's GCS failsafe (5 s of drone time for real drones, at least 2 s of wall time for
    simulators), and notice a dead link within a few drone seconds.
    """
    return {
        "heartbeat_period_s": min(1.0, 2.0 / speedup),
        "link_timeout_s": min(3.0, max(1.0, 20.0 / speedup)),
        "gcs_timeout_s": max(5.0, 2.0 * speedup),
    }


async def connect_fleet(
    config: StationConfig,
    stack: contextlib.AsyncExitStack,
    *,
    robot_wait_s: float = 20.0,
    broker_wait_s: float = 10.0,
) -> dict[str, Carrier]:
    """Carriers for every online vehicle of the station that answered; the links close with `stack`.

    Robots get carriers even when the broker is down at start: they show offline, and the link keeps
    reconnecting, so they join when the broker comes back without a restart of the station.
    """
    timing = drone_timing(config.vehicle_speedup)
    heartbeat_period_s, link_timeout_s = timing["heartbeat_period_s"], timing["link_timeout_s"]
    gcs_timeout_s = timing["gcs_timeout_s"]
    carriers: dict[str, Carrier] = {}
    drones = [v for v in config.fleet if v.kind is VehicleKind.DRONE and v.online and v.url]
    if drones:
        driver = DroneDriver(heartbeat_period_s=heartbeat_period_s, link_timeout_s=link_timeout_s)
        await stack.enter_async_context(driver)
        for vehicle in drones:
            try:
                drone = await driver.add(vehicle.id, vehicle.url or "")
            except (VehicleError, OSError, TimeoutError) as exc:
                log.warning("drone %s at %s not reachable: %s", vehicle.id, vehicle.url, exc)
                continue
            carriers[vehicle.id] = DroneCarrier(
                vehicle.id,
                drone,
                vehicle.vehicle_spec(),
                config.zones,
                ceiling_m=config.altitude_ceiling_m,
                gcs_timeout_s=gcs_timeout_s,
            )
    robots = [v for v in config.fleet if v.kind is VehicleKind.ROBOT and v.online]
    if robots and config.broker is not None:
        broker = urlparse(config.broker.url)
        link = FleetLink(
            broker.hostname or "127.0.0.1",
            broker.port or 1883,
            username=config.broker.username or broker.username,
            password=config.broker.password or broker.password,
        )
        await stack.enter_async_context(link)
        try:
            await link.wait_connected(broker_wait_s)
        except BrokerUnavailable:
            log.warning(
                "MQTT broker %s not reachable yet; robots stay offline until it is", config.broker.url
            )
        for vehicle in robots:
            handle = link.add_robot(
                vehicle.url or vehicle.id,
                manufacturer=config.broker.manufacturer,
                version=config.broker.version,
                battery_wh=vehicle.vehicle_spec().battery_wh,
            )
            carriers[vehicle.id] = RobotCarrier(vehicle.id, handle, config.frame)
        if link.connected.is_set():  # robots that are up say so within a state interval: wait together
            await asyncio.gather(*(_available(link.robot(v.url or v.id), robot_wait_s) for v in robots))
    return carriers


async def _available(robot: RobotHandle, timeout_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await robot.wait_until(lambda r: r.available, timeout_s=timeout_s)
