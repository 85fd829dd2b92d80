"""Honest cancels and errors (issue 22), with the simulated robot through a real mosquitto.

Regressions pinned here: an operator's abort used to answer "ok" while the robot refused the cancel and drove
on, and the refusal (an error naming no order) was booked as "robot rejected the order", failing a delivery
the robot was still carrying out. Now an error counts against an order only when its errorReferences name
it, and an abort returns only once the robot confirms the cancel (else `CancelRefused` says why).
"""

from __future__ import annotations

import asyncio

import pytest

from controller.missions.robot import drive_delivery
from controller.service.carriers_robot import RobotCarrier
from geofences.frame import LocalFrame
from sitl.robot import RobotFleet, SimRobot
from tests.e2e.test_robot_delivery import SPEEDUP, STATION, sidewalk_plan
from tests.robot_fixtures import MANUFACTURER, broker, controller_link, robot_credentials, schema_tap  # noqa: F401
from vehicles.vda5050.errors import CancelRefused

pytestmark = pytest.mark.slow


async def test_a_cancel_the_robot_cannot_parse_is_reported_and_not_held_against_the_order(
    broker,  # noqa: F811
    schema_tap,  # noqa: F811
    controller_link,  # noqa: F811
):
    """The issue's case: a 2.0.0 robot addressed as 2.1.0 gets the cancel under `actions` and refuses it."""
    sim = SimRobot("r1", manufacturer=MANUFACTURER, version="2.0.0", factsheet_on_connect=False)
    robot = controller_link.add_robot("r1", manufacturer=MANUFACTURER, version="2.1.0")  # misconfigured
    async with RobotFleet(
        [sim], broker.host, broker.port, credentials=robot_credentials(broker, "r1"), speedup=SPEEDUP
    ):
        await robot.wait_until(lambda r: r.available, timeout_s=10)
        assert robot.factsheet is None  # no factsheet: nothing tells the controller it is wrong
        carrier = RobotCarrier("r1", robot, LocalFrame(*STATION))
        delivery = asyncio.create_task(drive_delivery(robot, sidewalk_plan("pkg-c1", "r1", [(60.0, 0.0)])))
        await robot.wait_until(lambda r: r.view is not None and r.view.driving, timeout_s=10)

        with pytest.raises(
            CancelRefused, match=r"refused: validationError: .*VDA 5050 2\.0\.0 calls it 'instantActions'"
        ):
            await carrier.abort()
        assert not delivery.done()  # the refusal named the cancel (actionId), not the order
        result = await asyncio.wait_for(delivery, 30)
        assert (result.delivered, result.returned, result.reason_code) == (True, True, None), result.reason
        errors = [e for e in result.events if e["kind"] == "robot_error"]
        assert errors and errors[0]["error_type"] == "validationError"
        assert errors[0]["references"]["topic"] == "instantActions" and "actionId" in errors[0]["references"]


async def test_an_error_naming_no_order_does_not_fail_the_delivery(broker, schema_tap, controller_link):  # noqa: F811
    sim = SimRobot("r1", manufacturer=MANUFACTURER)
    fleet = RobotFleet(
        [sim], broker.host, broker.port, credentials=robot_credentials(broker, "r1"), speedup=SPEEDUP
    )
    async with fleet:
        robot = controller_link.add_robot("r1", manufacturer=MANUFACTURER)
        await robot.wait_until(lambda r: r.available, timeout_s=10)
        delivery = asyncio.create_task(drive_delivery(robot, sidewalk_plan("pkg-c2", "r1", [(40.0, 0.0)])))
        await robot.wait_until(lambda r: r.view is not None and r.view.driving, timeout_s=10)
        sim.raise_error("validationError", "WARNING", "some message we could not read")  # no errorReferences
        fleet.poke("r1")
        await robot.wait_until(lambda r: bool(r.view and r.view.errors), timeout_s=10)
        result = await asyncio.wait_for(delivery, 30)
        assert (result.delivered, result.reason_code) == (True, None), result.reason


async def test_a_confirmed_cancel_aborts_and_a_refused_one_leaves_the_mission_running(
    broker,  # noqa: F811
    schema_tap,  # noqa: F811
    controller_link,  # noqa: F811
):
    sim = SimRobot("r1", manufacturer=MANUFACTURER, version="3.0.0", cancel_refusal="door open: handing over")
    async with RobotFleet(
        [sim], broker.host, broker.port, credentials=robot_credentials(broker, "r1"), speedup=SPEEDUP
    ):
        robot = controller_link.add_robot("r1", manufacturer=MANUFACTURER, version="3.0.0")
        await robot.wait_until(lambda r: r.available, timeout_s=10)
        carrier = RobotCarrier("r1", robot, LocalFrame(*STATION))
        delivery = asyncio.create_task(drive_delivery(robot, sidewalk_plan("pkg-c3", "r1", [(200.0, 0.0)])))
        await robot.wait_until(lambda r: r.view is not None and r.view.driving, timeout_s=10)

        with pytest.raises(CancelRefused, match="door open: handing over"):
            await carrier.abort()
        assert not delivery.done() and sim.order_active()

        sim.cancel_refusal = None  # the handover is over: now the robot takes the cancel
        await carrier.abort()
        result = await asyncio.wait_for(delivery, 20)
        assert (result.delivered, result.reason_code, result.returned) == (False, "aborted", True), (
            result.reason
        )
        assert not sim.order_active() and abs(sim.x) < 0.01 and abs(sim.y) < 0.01  # home, by its own path
        kinds = [e["kind"] for e in result.events]
        assert kinds.index("cancel") < kinds.index("return_home") < kinds.index("returned")


async def test_a_robots_factsheet_corrects_the_configured_version(broker, schema_tap, controller_link):  # noqa: F811
    """Configured as 2.1.0, the robot's factsheet says 2.0.0: the handle speaks 2.0.0 and the cancel works."""
    robot = controller_link.add_robot("r1", manufacturer=MANUFACTURER, version="2.1.0")
    sim = SimRobot("r1", manufacturer=MANUFACTURER, version="2.0.0")
    async with RobotFleet(
        [sim], broker.host, broker.port, credentials=robot_credentials(broker, "r1"), speedup=SPEEDUP
    ):
        await robot.wait_until(lambda r: r.available and r.factsheet is not None, timeout_s=10)
        assert robot.info.version == "2.0.0"
        delivery = asyncio.create_task(drive_delivery(robot, sidewalk_plan("pkg-c4", "r1", [(200.0, 0.0)])))
        await robot.wait_until(lambda r: r.view is not None and r.view.driving, timeout_s=10)
        await RobotCarrier("r1", robot, LocalFrame(*STATION)).abort()
        result = await asyncio.wait_for(delivery, 20)
        assert (result.delivered, result.reason_code, result.returned) == (False, "aborted", True), (
            result.reason
        )
    sent = [m for t, m in schema_tap.messages if t.endswith("/r1/order") or t.endswith("/r1/instantActions")]
    assert {m["version"] for m in sent} == {"2.0.0"}
    assert [list(m["instantActions"]) for t, m in schema_tap.messages if t.endswith("/r1/instantActions")]
