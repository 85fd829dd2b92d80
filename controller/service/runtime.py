"""Connect a station's fleet: one MAVLink driver for all drones, one MQTT link for all robots.

Used by `lastmile serve` (real vehicles or separately started simulators, as the station file names them)
and by `controller.simstation` (simulators it starts itself). A vehicle that cannot be reached at start
is shown offline and the rest of the station runs; robots join when their broker comes up or when they
first report, and drones when they answer (`keep_trying`, as `lastmile serve` runs). Start-up never waits
long for a vehicle that does not answer: a controller restart (or a standby's takeover) must relink the
drones in the air well within their FS_GCS_TIMEOUT (docs/drones.md, "Controller changes").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from controller.service.carriers import Carrier
from controller.service.carriers_drone import DroneCarrier, SecurityEvents, drone_signing
from controller.service.carriers_robot import RobotCarrier
from controller.station import StationConfig, VehicleConfig
from vehicles.errors import VehicleError
from vehicles.mavlink import Drone, DroneDriver
from vehicles.spec import VehicleKind
from vehicles.vda5050 import BrokerUnavailable, ConnectionState, FleetLink, RobotHandle

log = logging.getLogger("lastmile.service.runtime")

DRONE_RETRY_S = (5.0, 60.0)  # a drone that did not answer: first wait before trying again, and the longest
# How long start-up gives robots that are up to report their first state (they say so at once when they
# connect; the broker hands over their retained `connection` topic with the subscription). A robot that does
# not report by then is not waited for: it shows offline and joins when its state arrives. One whose
# `connection` says it is gone is not waited for at all, nor, after RETAINED_GRACE_S, one never heard of.
ROBOT_WAIT_S = 2.0
RETAINED_GRACE_S = 1.0
_GONE = frozenset({ConnectionState.OFFLINE, ConnectionState.HIBERNATING, ConnectionState.CONNECTION_BROKEN})


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
    robot_wait_s: float = ROBOT_WAIT_S,
    broker_wait_s: float = 10.0,
    keep_trying: bool = False,
    retry_s: tuple[float, float] = DRONE_RETRY_S,
    security: SecurityEvents | None = None,
) -> dict[str, Carrier]:
    """Carriers for every online vehicle of the station that answered; the links close with `stack`.

    Robots get carriers even when the broker is down at start: they show offline, and the link keeps
    reconnecting, so they join when the broker comes back without a restart of the station. With
    `keep_trying`, a drone that does not answer at start (still powered off, out of radio range) is tried
    again in the background, `retry_s` apart (first, longest), and added to the returned mapping when it
    answers: a `StationService` given that mapping plans for it from then on. Robots that are up (their
    retained `connection` says ONLINE) are waited for at most `robot_wait_s`; one that says it is gone
    (offline, hibernating, its last will) not at all, and one the broker holds nothing of (never connected)
    at most RETAINED_GRACE_S: they join the planning whenever their state arrives. Keyed drones are linked
    signed (`drone_signing`); what their links refuse goes to `security` (`SecurityEvents.attach` it to
    the service's bus).
    """
    timing = drone_timing(config.vehicle_speedup)
    heartbeat_period_s, link_timeout_s = timing["heartbeat_period_s"], timing["link_timeout_s"]
    carriers: dict[str, Carrier] = {}
    drones = [v for v in config.fleet if v.kind is VehicleKind.DRONE and v.online and v.url]
    if drones:
        driver = DroneDriver(heartbeat_period_s=heartbeat_period_s, link_timeout_s=link_timeout_s)
        await stack.enter_async_context(driver)

        def carrier(vehicle: VehicleConfig, drone: Drone) -> DroneCarrier:
            return DroneCarrier(
                vehicle.id,
                drone,
                vehicle.vehicle_spec(),
                config.zones,
                ceiling_m=config.altitude_ceiling_m,
                gcs_timeout_s=timing["gcs_timeout_s"],
                rally=[(r.lat, r.lon, r.alt_m) for r in config.airspace.rally],
                continue_without_gcs=config.drones_continue_without_controller,
                security=security,
            )

        async def connect(vehicle: VehicleConfig) -> None:
            try:
                drone = await driver.add(vehicle.id, vehicle.url or "", **drone_signing(config, vehicle))
            except (VehicleError, OSError, TimeoutError) as exc:
                log.warning("drone %s at %s not reachable: %s", vehicle.id, vehicle.url, exc)
                if keep_trying:

                    def join(drone: Drone) -> None:
                        carriers[vehicle.id] = carrier(vehicle, drone)

                    _background(stack, _retry(vehicle, driver, join, retry_s, drone_signing(config, vehicle)))
                return
            carriers[vehicle.id] = carrier(vehicle, drone)

        await asyncio.gather(*(connect(v) for v in drones))  # an unreachable drone costs its timeout once
    robots = [v for v in config.fleet if v.kind is VehicleKind.ROBOT and v.online]
    if robots and config.broker is not None:
        link = FleetLink(**config.broker.link_options())  # mqtts:// gives a TLS context (BrokerConfig)
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
                version=vehicle.vda5050_version or config.broker.version,
                map_id=vehicle.map_id or "station",
                battery_wh=vehicle.vehicle_spec().battery_wh,
            )
            carriers[vehicle.id] = RobotCarrier(
                vehicle.id,
                handle,
                config.frame,
                drop_action=vehicle.robot_drop_action(),
                broker_grace_s=config.broker.grace_s,
            )
        if link.connected.is_set():  # robots that are up report at once: give them a moment, together
            await asyncio.gather(*(_available(link.robot(v.url or v.id), robot_wait_s) for v in robots))
    return carriers


def _background(stack: contextlib.AsyncExitStack, work: Coroutine[Any, Any, None]) -> None:
    """Run `work` until it ends or `stack` closes."""
    task = asyncio.create_task(work)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)


async def _retry(
    vehicle: VehicleConfig,
    driver: DroneDriver,
    joined: Callable[[Drone], None],
    retry_s: tuple[float, float],
    signing: dict[str, Any],
) -> None:
    """Try a drone again, with backoff, until it answers; then hand it over."""
    delay, longest = retry_s
    while True:
        await asyncio.sleep(delay)
        try:
            drone = await driver.add(vehicle.id, vehicle.url or "", **signing)
        except (VehicleError, OSError, TimeoutError):
            delay = min(delay * 2, longest)
            continue
        joined(drone)
        log.warning("drone %s at %s answered; it joins the fleet", vehicle.id, vehicle.url)
        return


async def _available(robot: RobotHandle, timeout_s: float) -> None:
    """Until the robot is available or says it is gone (its retained `connection`), at most `timeout_s`;
    at most RETAINED_GRACE_S for a robot of which the broker holds nothing (never connected)."""
    with contextlib.suppress(TimeoutError):
        await robot.wait_until(
            lambda r: r.available or r.connection is not ConnectionState.UNKNOWN,
            timeout_s=min(timeout_s, RETAINED_GRACE_S),
        )
    if robot.connection is not ConnectionState.ONLINE:
        return
    with contextlib.suppress(TimeoutError):
        await robot.wait_until(lambda r: r.available or r.connection in _GONE, timeout_s=timeout_s)
