"""A station whose MQTT broker is down when it starts: it runs, and its robots join once the broker is up."""

from __future__ import annotations

import contextlib
import time

import pytest

from controller.service.carriers_robot import RobotCarrier
from controller.service.runtime import connect_fleet
from controller.station import BrokerConfig, StationConfig
from sitl.broker import Broker, free_port
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
