"""A package delivered by a simulated sidewalk robot, through a real mosquitto, in both VDA 5050 versions.

Every message on the broker is checked against the official schemas by `schema_tap`.
"""

from __future__ import annotations

import asyncio

import pytest

from controller.missions.robot import RobotDeliveryPlan, drive_delivery
from geofences.frame import LocalFrame, geodesic_distance_m
from sitl.robot import RobotFleet, SimRobot
from tests.robot_fixtures import MANUFACTURER, broker, controller_link, robot_credentials, schema_tap  # noqa: F401
from vehicles.vda5050 import Availability

pytestmark = pytest.mark.slow

STATION = (52.5200, 13.4050)
SPEEDUP = 25.0


def sidewalk_plan(package_id: str, vehicle_id: str, corners: list[tuple[float, float]]) -> RobotDeliveryPlan:
    """A path along local (x east, y north) corners in metres, starting and ending at the station."""
    frame = LocalFrame(*STATION)
    xs = [0.0] + [c[0] for c in corners]
    ys = [0.0] + [c[1] for c in corners]
    lons, lats = frame.to_wgs84(xs, ys)
    out = [(float(lat), float(lon)) for lat, lon in zip(lats, lons, strict=True)]
    return RobotDeliveryPlan(package_id, vehicle_id, STATION, out, list(reversed(out)), payload_kg=2.5)


@pytest.mark.parametrize("version", ["2.1.0", "3.0.0"])
async def test_robot_delivers_and_returns(broker, schema_tap, controller_link, version):  # noqa: F811
    robot = controller_link.add_robot("r1", manufacturer=MANUFACTURER, version=version, battery_wh=500.0)
    sim = SimRobot("r1", manufacturer=MANUFACTURER, version=version)
    plan = sidewalk_plan("pkg-1", "r1", [(40.0, 0.0), (40.0, 30.0)])
    async with RobotFleet(
        [sim], broker.host, broker.port, credentials=robot_credentials(broker, "r1"), speedup=SPEEDUP
    ):
        await robot.wait_until(lambda r: r.available, timeout_s=10)
        seen: list[str] = []
        result = await drive_delivery(robot, plan, on_event=lambda e: seen.append(e["kind"]), timeout_s=60)

    assert result.delivered, result.reason
    assert result.returned and result.reason_code is None
    # released at the destination, not anywhere else
    dest_lat, dest_lon = plan.destination
    assert result.release_position is not None
    assert (
        float(geodesic_distance_m(result.release_position[1], result.release_position[0], dest_lon, dest_lat))
        < 1.0
    )
    # 140 m at 20 Wh/km = 2.8 Wh drained by the simulator, reported through the battery percentage
    assert result.energy_used_wh == pytest.approx(2.8, abs=0.05)
    assert abs(sim.x) < 0.01 and abs(sim.y) < 0.01 and not sim.loads
    # drop-off finished before the way back was released
    assert seen.index("drop_off") < seen.index("return_released") < seen.index("returned")
    orders = [m for t, m in schema_tap.messages if t.endswith("/order")]
    assert [o["orderUpdateId"] for o in orders] == [0, 1]
    assert orders[1]["nodes"][0]["nodeId"] == orders[0]["nodes"][2]["nodeId"]  # stitched at the destination
    for topic in ("order", "state", "connection", "factsheet"):
        assert schema_tap.seen[(version, topic)] > 0, topic


async def test_blocked_path_fails_with_vehicle_error(broker, schema_tap, controller_link):  # noqa: F811
    robot = controller_link.add_robot("r1", manufacturer=MANUFACTURER, version="2.1.0")
    plan = sidewalk_plan("pkg-2", "r1", [(200.0, 0.0)])
    async with RobotFleet(
        [SimRobot("r1", manufacturer=MANUFACTURER)],
        broker.host,
        broker.port,
        credentials=robot_credentials(broker, "r1"),
        speedup=SPEEDUP,
    ) as fleet:
        await robot.wait_until(lambda r: r.available, timeout_s=10)
        delivery = asyncio.create_task(drive_delivery(robot, plan, timeout_s=60))
        await robot.wait_until(lambda r: r.view is not None and r.view.driving, timeout_s=10)
        fleet.sim("r1").raise_error("blockedPath", "FATAL", "construction site across the sidewalk")
        fleet.poke("r1")
        result = await asyncio.wait_for(delivery, 10)
        assert robot.availability is Availability.ERROR  # the controller will not give it more work
    assert not result.delivered
    assert result.reason_code == "vehicle_error"
    assert "blockedPath" in (result.reason or "")
    # the robot went OFFLINE in order when the fleet stopped, which the controller also sees
    assert robot.availability is Availability.OFFLINE


async def test_rejected_orders_fail_fast_every_time(broker, schema_tap, controller_link):  # noqa: F811
    """A robot standing away from the station refuses each order (noRouteError): no waiting for a timeout."""
    robot = controller_link.add_robot("r3", manufacturer=MANUFACTURER, version="3.0.0")
    sim = SimRobot("r3", manufacturer=MANUFACTURER, version="3.0.0", x=120.0, y=-40.0)
    async with RobotFleet(
        [sim], broker.host, broker.port, credentials=robot_credentials(broker, "r3"), speedup=SPEEDUP
    ):
        await robot.wait_until(lambda r: r.available, timeout_s=10)
        for package in ("pkg-a", "pkg-b"):  # the second refusal is noticed although one is still listed
            result = await asyncio.wait_for(
                drive_delivery(robot, sidewalk_plan(package, "r3", [(50.0, 0.0)])), 10
            )
            assert not result.delivered
            assert result.reason_code == "vehicle_error"
            assert "noRouteError" in (result.reason or "")
            assert robot.order is None  # the refused order is not re-sent behind the station's back
    assert (sim.x, sim.y) == (120.0, -40.0)


def test_bad_plans_name_the_field():
    good = sidewalk_plan("pkg-x", "r1", [(10.0, 0.0)])
    with pytest.raises(ValueError, match="payload_kg=-1"):
        RobotDeliveryPlan("p", "r1", STATION, good.path_out, good.path_back, payload_kg=-1)
    with pytest.raises(ValueError, match="path_out: needs at least 2 points"):
        RobotDeliveryPlan("p", "r1", STATION, good.path_out[:1], good.path_back, payload_kg=1)
    with pytest.raises(ValueError, match=r"path_back\[1\]=\(95\.0, 13\.4\)"):
        RobotDeliveryPlan("p", "r1", STATION, good.path_out, [good.path_back[0], (95.0, 13.4)], payload_kg=1)
    with pytest.raises(ValueError, match="package_id"):
        RobotDeliveryPlan("", "r1", STATION, good.path_out, good.path_back, payload_kg=1)
