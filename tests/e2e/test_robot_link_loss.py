"""Link trouble during a robot delivery: a robot cut off from the broker, and a broker restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys

import pytest

from controller.missions.robot import drive_delivery
from sitl.broker import Broker
from sitl.robot import RobotFleet, SimRobot
from tests.e2e.test_robot_delivery import SPEEDUP, sidewalk_plan
from tests.robot_fixtures import MANUFACTURER, broker, controller_link, robot_credentials, schema_tap  # noqa: F401
from vehicles.vda5050 import Availability, ConnectionState, FleetLink

pytestmark = pytest.mark.slow
KEEPALIVE = 2  # s; the broker gives up on a silent client after 1.5 x keepalive and sends its last will
# mosquitto 2.0 sweeps for expired keepalives about every 5 s (measured: 5.2-5.3 s for keepalives of 1-3 s)
BROKER_SWEEP_S = 5.5


@pytest.mark.parametrize("cut", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "frozen"])
async def test_cut_off_robot_shows_connection_broken_within_keepalive(tmp_path, cut):
    """A robot process killed (socket closed) or frozen (socket open, silent) mid-delivery: the broker's
    last will tells the controller, the delivery fails as connection_broken and the package is not lost."""
    async with Broker(robots=["r001"], manufacturer=MANUFACTURER, kind="mosquitto") as b:
        creds = tmp_path / "credentials.json"
        creds.write_text(json.dumps({"r001": b.credentials("r001")[1]}))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sitl.robot.cli",
            "--count",
            "1",
            "--prefix",
            "r",
            "--broker",
            b.url,
            "--credentials",
            str(creds),
            "--speedup",
            "10",
            "--keepalive",
            str(KEEPALIVE),
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line.startswith(b"ready 1 robots"), line
            user, password = b.controller_credentials()
            async with FleetLink(b.host, b.port, username=user, password=password) as link:
                robot = link.add_robot("r001", manufacturer=MANUFACTURER)
                await robot.wait_until(lambda r: r.available, timeout_s=10)
                delivery = asyncio.create_task(
                    drive_delivery(robot, sidewalk_plan("pkg-cut", "r001", [(500.0, 0.0)]))
                )
                await robot.wait_until(lambda r: r.view is not None and r.view.driving, timeout_s=10)

                os.kill(proc.pid, cut)
                loop = asyncio.get_running_loop()
                cut_at = loop.time()
                await robot.wait_until(
                    lambda r: r.availability is Availability.CONNECTION_BROKEN, timeout_s=10
                )
                detected_s = loop.time() - cut_at
                result = await asyncio.wait_for(delivery, 5)

            # the last will, not the controller's 30 s stale-state watchdog, told us
            assert detected_s <= 1.5 * KEEPALIVE + BROKER_SWEEP_S, detected_s
            assert detected_s < link.stale_after_s
            assert not result.delivered
            assert result.reason_code == "connection_broken"
            assert result.release_position is None  # the package is still on the robot: reassign or van

            # the will is retained: a controller that starts now also sees the robot as cut off
            async with FleetLink(b.host, b.port, username=user, password=password) as fresh:
                again = fresh.add_robot("r001", manufacturer=MANUFACTURER)
                await again.wait_until(
                    lambda r: r.connection is ConnectionState.CONNECTION_BROKEN, timeout_s=10
                )
                assert not again.available
        finally:
            with contextlib.suppress(ProcessLookupError):  # already gone when the test killed it
                proc.kill()
            await proc.wait()


async def test_broker_restart_mid_delivery_completes(broker, schema_tap, controller_link):  # noqa: F811
    robot = controller_link.add_robot("r2", manufacturer=MANUFACTURER, version="3.0.0")
    sim = SimRobot("r2", manufacturer=MANUFACTURER, version="3.0.0")
    plan = sidewalk_plan("pkg-restart", "r2", [(60.0, 0.0), (60.0, 60.0)])
    async with RobotFleet(
        [sim], broker.host, broker.port, credentials=robot_credentials(broker, "r2"), speedup=SPEEDUP
    ) as fleet:
        await robot.wait_until(lambda r: r.available, timeout_s=10)
        delivery = asyncio.create_task(drive_delivery(robot, plan, timeout_s=60))
        await robot.wait_until(
            lambda r: r.view is not None and r.view.last_node_id.endswith("out1"), timeout_s=20
        )
        epoch = controller_link.epoch

        await asyncio.to_thread(broker.restart)  # same port, no persistence: sessions and retained lost

        result = await asyncio.wait_for(delivery, 60)
        assert controller_link.epoch > epoch, (
            result.reason,
            result.events[-6:],
        )  # the driver reconnected ...
        assert fleet.clients["r2"].connects >= 2  # ... and so did the robot
    assert result.delivered, result.reason
    assert result.returned
    assert abs(sim.x) < 0.01 and abs(sim.y) < 0.01


async def test_restarted_controller_adopts_the_running_order(broker, schema_tap):  # noqa: F811
    """The controller dies mid-delivery; a new one calls drive_delivery again and follows the same order."""
    user, password = broker.controller_credentials()
    sim = SimRobot("r1", manufacturer=MANUFACTURER)
    plan = sidewalk_plan("pkg-adopt", "r1", [(50.0, 0.0), (50.0, 40.0)])
    async with RobotFleet(
        [sim], broker.host, broker.port, credentials=robot_credentials(broker, "r1"), speedup=SPEEDUP
    ):
        async with FleetLink(broker.host, broker.port, username=user, password=password) as first:
            robot = first.add_robot("r1", manufacturer=MANUFACTURER)
            await robot.wait_until(lambda r: r.available, timeout_s=10)
            crashed = asyncio.create_task(drive_delivery(robot, plan, timeout_s=60))
            await robot.wait_until(lambda r: r.view is not None and r.view.last_node_id.endswith("out1"), 10)
            crashed.cancel()  # the controller process goes away; the robot keeps driving
        order_id = sim.order_id
        async with FleetLink(broker.host, broker.port, username=user, password=password) as second:
            robot = second.add_robot("r1", manufacturer=MANUFACTURER)
            await robot.wait_until(lambda r: r.available, timeout_s=10)
            result = await asyncio.wait_for(drive_delivery(robot, plan, timeout_s=60), 60)
    assert result.delivered and result.returned, result.reason
    assert any(e["kind"] == "order_adopted" for e in result.events)
    orders = [m for t, m in schema_tap.messages if t.endswith("/order")]
    assert {o["orderId"] for o in orders} == {order_id}  # no second order: the running one was followed
    assert [o["orderUpdateId"] for o in orders] == [0, 1]


async def test_a_drop_during_a_long_broker_outage_is_a_delivery(broker, schema_tap, controller_link):  # noqa: F811
    """The broker goes away just before the robot reaches the door and stays away longer than the grace:
    the robot drops the parcel meanwhile; when the broker is back its own state (the drop FINISHED) decides:
    delivered, and the way back is released (before, the delivery was given up as connection_broken after
    the grace and the package handed to a van, while the robot waited at the door with nothing on board)."""
    robot = controller_link.add_robot("r3", manufacturer=MANUFACTURER)
    sim = SimRobot("r3", manufacturer=MANUFACTURER)
    plan = sidewalk_plan("pkg-outage", "r3", [(60.0, 0.0)])
    async with RobotFleet(
        [sim], broker.host, broker.port, credentials=robot_credentials(broker, "r3"), speedup=SPEEDUP
    ):
        await robot.wait_until(lambda r: r.available, timeout_s=10)
        grace = 5.0  # once the broker is back, the robot's will stands until it reconnects: seconds
        delivery = asyncio.create_task(drive_delivery(robot, plan, timeout_s=90, broker_grace_s=grace))
        await robot.wait_until(lambda r: r.view is not None and r.view.driving, timeout_s=10)
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(broker.stop)
        stopped = loop.time()
        try:
            # The robot drives on and drops the parcel unseen; the broker stays away longer than the grace.
            async with asyncio.timeout(30):
                while sim.loads or loop.time() - stopped < grace + 1.0:  # noqa: ASYNC110 (the robot moves alone)
                    await asyncio.sleep(0.05)
            assert not delivery.done()  # the grace is gone: nothing concluded without the broker
        finally:
            await asyncio.to_thread(broker.start)
        result = await asyncio.wait_for(delivery, 60)
    assert result.delivered and result.reason_code is None, (result.reason, result.events[-6:])
    assert result.returned and abs(sim.x) < 0.01 and abs(sim.y) < 0.01  # home again
