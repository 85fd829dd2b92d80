"""A robot described in the station file (issue 22): its VDA 5050 version, mapId and its own drop action.

`connect_fleet` must hand all three to the robot's link and carrier, and a bad value must be refused at load
with the field named. The robot here is the simulator speaking 2.0.0 on a map called "yard".
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from controller.errors import InputError
from controller.missions.robot import DropAction, drive_delivery
from controller.service.carriers_robot import RobotCarrier
from controller.service.runtime import connect_fleet
from controller.station import BrokerConfig, StationConfig, load_station
from sitl.broker import Broker
from sitl.robot import RobotFleet, SimRobot
from tests.e2e.test_robot_delivery import sidewalk_plan
from tests.robot_fixtures import MANUFACTURER, robot_credentials

pytestmark = pytest.mark.slow


async def test_the_station_file_sets_version_map_and_drop_action_per_robot() -> None:
    async with Broker(robots=["r1", "r2"], manufacturer=MANUFACTURER, kind="mosquitto") as broker:
        user, password = broker.controller_credentials()
        config = StationConfig(
            name="robots of two kinds",
            lat=52.52,
            lon=13.405,
            fleet=[
                {
                    "id": "r1",
                    "kind": "robot",
                    "vda5050_version": "2.0.0",
                    "map_id": "yard",
                    "drop_action_type": "drop",
                    "drop_action_parameters": {"loadId": "{package_id}", "loadType": "box"},
                },
                {"id": "r2", "kind": "robot"},  # the defaults: broker.version, map "station", our drop
            ],
            broker=BrokerConfig(url=broker.url, username=user, password=password, manufacturer=MANUFACTURER),
        )
        sims = [
            SimRobot("r1", manufacturer=MANUFACTURER, version="2.0.0", map_id="yard"),
            SimRobot("r2", manufacturer=MANUFACTURER),
        ]
        fleet = RobotFleet(
            sims, broker.host, broker.port, credentials=robot_credentials(broker, "r1", "r2"), speedup=25
        )
        async with fleet, contextlib.AsyncExitStack() as stack:
            carriers = await connect_fleet(config, stack, robot_wait_s=10.0)
            r1, r2 = carriers["r1"], carriers["r2"]
            assert isinstance(r1, RobotCarrier) and isinstance(r2, RobotCarrier)
            assert (r1.robot.info.version, r1.robot.map_id) == ("2.0.0", "yard")
            assert (r2.robot.info.version, r2.robot.map_id) == ("2.1.0", "station")
            assert r1.drop_action == DropAction("drop", {"loadId": "{package_id}", "loadType": "box"})
            assert r2.drop_action == DropAction()
            assert r1.snapshot().online and r2.snapshot().online  # 2.0.0 states accepted, on map "yard"

            with r1.robot.events() as events:
                result = await drive_delivery(
                    r1.robot,
                    sidewalk_plan("pkg-9", "r1", [(8.0, 0.0)]),
                    drop_action=r1.drop_action,
                    timeout_s=30,
                )
                assert result.delivered and result.returned, result.reason
                assert any(e.kind == "order_sent" for e in iter(events.get_nowait, None))
            sent = fleet.sim("r1")
            drop = next(a for a in sent.actions.values() if a.action_type == "drop")
            assert drop.params == {"loadId": "pkg-9", "loadType": "box"}  # no weight: it is optional
            assert DropAction().parameters_for("pkg-9", 2.5) == {
                "loadId": "pkg-9",
                "loadType": "parcel",
                "weight": 2.5,
            }


@pytest.mark.parametrize(
    ("vehicle", "complaint"),
    [
        ('{ id = "r1", kind = "robot", vda5050_version = "1.1.0" }', "fleet.0.vda5050_version"),
        ('{ id = "r1", kind = "robot", map_id = "" }', "fleet.0.map_id"),
        ('{ id = "d1", kind = "drone", drop_action_type = "drop" }', "drop_action_type is for robots"),
        (
            '{ id = "r1", kind = "robot", drop_action_parameters = { "" = 1 } }',
            "drop_action_parameters has an empty key",
        ),
        (
            '{ id = "r1", kind = "robot", drop_action_parameters = { a = { b = 1 } } }',
            "fleet.0.drop_action_parameters.a",
        ),
    ],
)
def test_bad_robot_fields_are_refused_naming_the_field(tmp_path: Path, vehicle: str, complaint: str) -> None:
    station = tmp_path / "station.toml"
    station.write_text(f'name = "s"\nlat = 52.52\nlon = 13.405\nfleet = [ {vehicle} ]\n')
    with pytest.raises(InputError) as caught:
        load_station(station)
    assert complaint in f"{caught.value.field}: {caught.value}", (caught.value.field, str(caught.value))
