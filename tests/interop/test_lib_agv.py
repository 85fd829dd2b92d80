"""The project as master, a robot it did not write: vda-5050-lib's AgvController + VirtualAgvAdapter (2.0.0).

Through a real mosquitto, every message checked by `schema_tap` against the official schemas (2.0.0 for both
sides here) and, on the lib's side, by the lib's own 2.0 validators. What issue 22 found and these pin down:
the controller speaks 2.0.0 to a 2.0 robot (header version, `instantActions`, `allowedDeviationXy`), sends
the robot's own drop action (checked against its factsheet first), books only errors that name its order,
and reports a cancel the robot refuses instead of answering "ok" while the robot drives on.
"""

from __future__ import annotations

import asyncio

import pytest

from controller.missions.robot import DropAction, RobotDeliveryPlan, drive_delivery
from controller.service.carriers_robot import RobotCarrier
from geofences.frame import LocalFrame
from tests.interop.conftest import LIB_AGV, MANUFACTURER, MAP_ID, peer_config
from tests.interop.peer import Peer
from tests.robot_fixtures import schema_tap  # noqa: F401 (a fixture)
from vehicles.vda5050 import Availability, ConnectionState, FleetLink, RobotHandle
from vehicles.vda5050.errors import CancelRefused

pytestmark = pytest.mark.slow

STATION = (48.1372, 11.5755)
# The lib's virtual AGV takes these (its drop: stationType "floor...", loadType "EPAL"; duration in s).
LIB_DROP = DropAction(
    "drop", {"stationType": "floor", "loadType": "EPAL", "duration": 1, "loadId": "{package_id}"}
)


def plan(package_id: str, corners: list[tuple[float, float]]) -> RobotDeliveryPlan:
    """Out along local (x east, y north) corners in metres from the station, and back the same way."""
    frame = LocalFrame(*STATION)
    xs, ys = [0.0, *(c[0] for c in corners)], [0.0, *(c[1] for c in corners)]
    lons, lats = frame.to_wgs84(xs, ys)
    out = [(float(lat), float(lon)) for lat, lon in zip(lats, lons, strict=True)]
    return RobotDeliveryPlan(package_id, LIB_AGV, STATION, out, out[::-1], payload_kg=1.5)


def add_lib_robot(link: FleetLink) -> RobotHandle:
    return link.add_robot(LIB_AGV, manufacturer=MANUFACTURER, version="2.0.0", map_id=MAP_ID)


def assert_clean(link: FleetLink, agv: Peer, schema_tap) -> None:  # noqa: F811
    assert not link.stats.malformed, (
        f"the controller dropped messages of the lib's robot: {link.stats.malformed}"
    )
    assert not agv.problems(), agv.problems()
    assert schema_tap.seen[("2.0.0", "order")] >= 2 and schema_tap.seen[("2.0.0", "state")] >= 3


async def test_delivery_with_the_robots_own_drop_action_then_its_last_will(broker, link, schema_tap):  # noqa: F811
    robot = add_lib_robot(link)
    async with Peer(peer_config(broker, "agv", LIB_AGV)) as agv:
        await robot.wait_until(lambda r: r.available, timeout_s=15)
        await robot.request_factsheet()
        await robot.wait_until(lambda r: r.factsheet is not None, timeout_s=10)

        # Our default drop (loadId, loadType "parcel", weight) is not this robot's: refused before any order.
        refused = await drive_delivery(robot, plan("pkg-1", [(12.0, 0.0), (12.0, 8.0)]))
        assert (refused.delivered, refused.reason_code) == (False, "vehicle_error")
        assert "parameter weight is not in the robot's factsheet" in (refused.reason or "")
        assert schema_tap.seen[("2.0.0", "order")] == 0

        result = await drive_delivery(
            robot, plan("pkg-1", [(12.0, 0.0), (12.0, 8.0)]), drop_action=LIB_DROP, timeout_s=60
        )
        assert (result.delivered, result.returned, result.reason_code) == (True, True, None), result.reason
        kinds = [e["kind"] for e in result.events]
        assert "return_released" in kinds and kinds[-1] == "returned"
        drops = [e["status"] for e in result.events if e["kind"] == "drop_off"]
        assert drops[-1] == "FINISHED"
        sent = [m for t, m in schema_tap.messages if t.endswith(f"/{LIB_AGV}/order")]
        assert [m["orderUpdateId"] for m in sent] == [0, 1] and {m["version"] for m in sent} == {"2.0.0"}
        node = sent[0]["nodes"][2]
        assert node["nodePosition"]["allowedDeviationXy"] == 0.5 and node["nodePosition"]["mapId"] == MAP_ID
        assert {p["key"]: p["value"] for p in node["actions"][0]["actionParameters"]} == {
            "stationType": "floor",
            "loadType": "EPAL",
            "duration": 1,
            "loadId": "pkg-1",
        }
        assert_clean(link, agv, schema_tap)

        agv.kill()  # no DISCONNECT: the broker publishes the lib's retained last will
        await robot.wait_until(lambda r: r.connection is ConnectionState.CONNECTION_BROKEN, timeout_s=10)
        assert robot.availability is Availability.CONNECTION_BROKEN


async def test_a_cancel_the_robot_confirms_ends_the_delivery_as_aborted(broker, link, schema_tap):  # noqa: F811
    robot = add_lib_robot(link)
    async with Peer(peer_config(broker, "agv", LIB_AGV, timeLapse=1)) as agv:
        await robot.wait_until(lambda r: r.available, timeout_s=15)
        carrier = RobotCarrier(LIB_AGV, robot, LocalFrame(*STATION), drop_action=LIB_DROP)
        delivery = asyncio.create_task(
            drive_delivery(robot, plan("pkg-2", [(60.0, 0.0)]), drop_action=LIB_DROP, timeout_s=60)
        )
        # some way out (the virtual AGV reports its pose every state), so the way home is a real drive
        await robot.wait_until(
            lambda r: r.view is not None and (r.view.position or (0,))[0] > 5.0, timeout_s=10
        )
        await carrier.abort()  # returns only once the robot reports the cancelOrder FINISHED
        result = await asyncio.wait_for(delivery, 20)
        assert (result.delivered, result.reason_code, result.returned) == (False, "aborted", True), (
            result.reason
        )
        view = robot.view
        assert view is not None and not view.node_ids_left and not view.driving
        assert (
            view.position is not None and abs(view.position[0]) < 0.6 and abs(view.position[1]) < 0.6
        )  # home
        assert [m["orderUpdateId"] for t, m in schema_tap.messages if t.endswith("/order")] == [
            0,
            0,
        ]  # + home
        cancels = [m for t, m in schema_tap.messages if t.endswith(f"/{LIB_AGV}/instantActions")]
        assert [a["actionType"] for a in cancels[0]["instantActions"]] == ["cancelOrder"]
        assert "actions" not in cancels[0]  # the 2.1.0 key the lib refused in issue 22
        assert not link.stats.malformed and not agv.problems(), agv.problems()


async def test_a_refused_cancel_is_reported_and_the_delivery_goes_on(broker, link, schema_tap):  # noqa: F811
    """The robot refuses the cancel (errorReferences: topic instantActions, actionId): the abort raises, the
    error is not booked against the order, and the package is delivered by the robot that still has it."""
    robot = add_lib_robot(link)
    async with Peer(peer_config(broker, "agv", LIB_AGV, refuseCancel=True)) as agv:
        await robot.wait_until(lambda r: r.available, timeout_s=15)
        carrier = RobotCarrier(LIB_AGV, robot, LocalFrame(*STATION), drop_action=LIB_DROP)
        delivery = asyncio.create_task(
            drive_delivery(robot, plan("pkg-3", [(30.0, 0.0)]), drop_action=LIB_DROP, timeout_s=60)
        )
        await robot.wait_until(lambda r: r.view is not None and r.view.driving, timeout_s=10)
        with pytest.raises(CancelRefused, match=r"refused: instantActionError: .*handover in progress"):
            await carrier.abort()
        await agv.expect(lambda e: e["event"] == "cancel_refused")
        result = await asyncio.wait_for(delivery, 30)
        assert (result.delivered, result.returned, result.reason_code) == (True, True, None), result.reason
        errors = [e for e in result.events if e["kind"] == "robot_error"]
        assert [e["error_type"] for e in errors] == ["instantActionError"]  # seen, and not held against it
        assert not link.stats.malformed and not agv.problems(), agv.problems()
