"""Vehicles that are not there when the station starts (a broker down, a drone powered off): the station
runs without them, and they join when they come up, with no restart."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from controller.service import StationService
from controller.service.carriers_robot import RobotCarrier
from controller.service.runtime import connect_fleet
from controller.station import BrokerConfig, StationConfig
from controller.store import Store
from sitl.broker import Broker, free_port
from sitl.copter import SimCopterFleet
from sitl.robot import RobotFleet, SimRobot
from tests.robot_fixtures import MANUFACTURER, robot_credentials


@pytest.mark.slow
async def test_robots_join_when_the_broker_comes_up_after_the_station() -> None:
    port = free_port("127.0.0.1")
    password = "controller-pw"
    broker = Broker(
        robots=["r1"], manufacturer=MANUFACTURER, port=port, kind="mosquitto", controller_password=password
    )
    config = StationConfig(
        name="broker late",
        lat=33.44,
        lon=-112.256,
        fleet=[{"id": "r1", "kind": "robot"}],
        broker=BrokerConfig(
            url=f"mqtt://127.0.0.1:{port}",
            username="controller",
            password=password,
            manufacturer=MANUFACTURER,
        ),
    )
    async with contextlib.AsyncExitStack() as stack:
        started = time.monotonic()
        carriers = await connect_fleet(config, stack, broker_wait_s=1.0, robot_wait_s=20.0)
        assert time.monotonic() - started < 10  # no waiting for robots behind a broker that is not there
        robot = carriers["r1"]  # a carrier shown offline, rather than a station that does not start
        assert isinstance(robot, RobotCarrier) and not robot.snapshot().online
        sims = RobotFleet([SimRobot("r1", manufacturer=MANUFACTURER)], broker.host, broker.port,
                          credentials=robot_credentials(broker, "r1"))  # fmt: skip
        async with broker, sims:
            await robot.robot.wait_until(lambda r: r.available, timeout_s=30)  # the link kept reconnecting
            assert robot.snapshot().online and robot.snapshot().charge is not None


@pytest.mark.slow
async def test_a_drone_that_answers_after_the_start_joins_the_fleet(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    config = StationConfig(
        name="drone late",
        lat=33.4484,
        lon=-112.2590,
        fleet=[{"id": "d1", "kind": "drone", "url": f"tcp:127.0.0.1:{port}"}],
    )
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(store.close)
        carriers = await connect_fleet(config, stack, keep_trying=True, retry_s=(0.2, 1.0))
        assert carriers == {}  # nothing listens there yet: left out, and the station runs
        service = await stack.enter_async_context(StationService(config, store, carriers=carriers))
        assert [v["online"] for v in service.fleet_status()] == [False]
        async with SimCopterFleet(1, base_port=port, speedup=20):  # powered on
            async with asyncio.timeout(30):
                while not service.fleet_status()[0]["online"]:  # noqa: ASYNC110 (tried again each second)
                    await asyncio.sleep(0.05)
