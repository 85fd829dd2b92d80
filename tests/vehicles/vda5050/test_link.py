"""FleetLink over a real mosquitto: bad messages, headerId gaps, stale state, instant actions, re-sends."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiomqtt
import pytest

from sitl.broker import Broker, free_port
from sitl.robot import RobotFleet, SimRobot
from tests.robot_fixtures import MANUFACTURER, robot_credentials
from vehicles.vda5050 import Availability, BrokerUnavailable, FleetLink, OrderPlan, PlannedNode
from vehicles.vda5050 import link as link_module

STATE_TOPIC = f"uagv/v2/{MANUFACTURER}/r1/state"


def robot_client(broker: Broker, serial: str) -> aiomqtt.Client:
    user, password = broker.credentials(serial)
    return aiomqtt.Client(broker.host, broker.port, username=user, password=password)


def valid_state(serial: str, header_id: int, battery: float = 80.0) -> dict[str, Any]:
    sim = SimRobot(serial, manufacturer=MANUFACTURER, battery_percent=battery)
    sim.header_ids["state"] = header_id - 1
    return sim.state_message()


async def next_of(stream, kind: str, timeout_s: float = 5.0):
    async with asyncio.timeout(timeout_s):
        while True:
            event = await stream.get()
            if event.kind == kind:
                return event


async def test_malformed_messages_are_counted_and_change_nothing(broker):
    user, password = broker.controller_credentials()
    async with FleetLink(
        broker.host, broker.port, username=user, password=password, max_payload_bytes=8192
    ) as link:
        await link.wait_connected()
        robot = link.add_robot("r1", manufacturer=MANUFACTURER)
        with link.events() as events:
            async with robot_client(broker, "r1") as r1, robot_client(broker, "r2") as r2:
                await r1.publish(STATE_TOPIC, json.dumps(valid_state("r1", 0)))
                await robot.wait_until(lambda r: r.view is not None, timeout_s=5)
                before = robot.view

                missing_battery = valid_state("r1", 1)
                del missing_battery["batteryState"]
                wrong_serial = valid_state("r1", 1) | {"serialNumber": "r2"}
                foreign_major = valid_state("r1", 1) | {"version": "3.0.0"}  # on a 2.x robot's topic
                huge = valid_state("r1", 1) | {"information": [{"infoType": "x" * 9000, "infoLevel": "INFO"}]}
                garbage = [
                    (r1, STATE_TOPIC, b"{not json", "bad_json"),
                    (r1, STATE_TOPIC, json.dumps(missing_battery), "schema_invalid"),
                    (r1, STATE_TOPIC, json.dumps(huge), "oversized"),
                    (r1, STATE_TOPIC, json.dumps(wrong_serial), "header_mismatch"),
                    (r1, STATE_TOPIC, json.dumps(foreign_major), "version_mismatch"),
                    (r1, STATE_TOPIC, b"[1, 2]", "bad_json"),
                    (
                        r2,
                        f"uagv/v2/{MANUFACTURER}/r2/state",
                        json.dumps(valid_state("r2", 0)),
                        "unknown_robot",
                    ),
                ]
                for client, topic, payload, kind in garbage:
                    await client.publish(topic, payload)
                    event = await next_of(events, "malformed")
                    assert event.data["kind"] == kind, event.data
                assert robot.view is before and robot.view.battery_percent == 80.0
                assert dict(link.stats.malformed) == {
                    "bad_json": 2,
                    "schema_invalid": 1,
                    "oversized": 1,
                    "header_mismatch": 1,
                    "version_mismatch": 1,
                    "unknown_robot": 1,
                }
                # the link is still alive and applies the next good message
                await r1.publish(STATE_TOPIC, json.dumps(valid_state("r1", 1, battery=79.0)))
                await robot.wait_until(lambda r: r.view.battery_percent == 79.0, timeout_s=5)
        assert robot.available


async def test_header_gaps_and_stale_state_are_noticed(broker):
    user, password = broker.controller_credentials()
    async with FleetLink(
        broker.host, broker.port, username=user, password=password, stale_after_s=0.6
    ) as link:
        await link.wait_connected()
        robot = link.add_robot("r1", manufacturer=MANUFACTURER)
        with robot.events() as events:
            async with robot_client(broker, "r1") as r1:
                for header_id in (0, 1, 4):
                    await r1.publish(STATE_TOPIC, json.dumps(valid_state("r1", header_id)))
                gap = await next_of(events, "header_gap")
                assert gap.data == {"topic": "state", "expected": 2, "got": 4}
                assert robot.header_gaps == 1 and robot.available
                # silence: the watchdog marks the robot stale and unavailable
                stale = await next_of(events, "stale", timeout_s=5)
                assert stale.data["silent_s"] >= 0.6
                assert robot.availability is Availability.STALE
                await r1.publish(STATE_TOPIC, json.dumps(valid_state("r1", 5)))
                await robot.wait_until(lambda r: r.available, timeout_s=5)


@pytest.mark.parametrize("version", ["2.1.0", "3.0.0"])
async def test_instant_actions_reach_the_robot(broker, schema_tap, controller_link, version):
    robot = controller_link.add_robot("r1", manufacturer=MANUFACTURER, version=version)
    sim = SimRobot("r1", manufacturer=MANUFACTURER, version=version)
    creds = robot_credentials(broker, "r1")
    async with RobotFleet([sim], broker.host, broker.port, credentials=creds, speedup=5):
        await robot.wait_until(lambda r: r.available and r.factsheet is not None, timeout_s=10)
        plan = OrderPlan("o-1", [PlannedNode("a", 0, 0), PlannedNode("b", 500, 0)], map_id="station")
        await robot.send_order(plan, released_until=1)
        await robot.wait_until(lambda r: r.view.driving, timeout_s=5)
        assert robot.view.speed_mps == pytest.approx(sim.speed, rel=0.01)  # from the state's velocity

        action = await robot.pause()
        await robot.wait_until(lambda r: r.view.paused and r.view.action_states.get(action) == "FINISHED", 5)
        assert not robot.view.driving
        assert robot.view.speed_mps == 0.0
        await robot.resume()
        await robot.wait_until(lambda r: not r.view.paused and r.view.driving, timeout_s=5)

        robot.factsheet = None
        action = await robot.request_factsheet()
        await robot.wait_until(lambda r: r.factsheet is not None, timeout_s=5)
        action = await robot.request_state()
        await robot.wait_until(lambda r: r.view.action_states.get(action) == "FINISHED", timeout_s=5)

        action = await robot.cancel_order()
        await robot.wait_until(lambda r: r.view.action_states.get(action) == "FINISHED", timeout_s=5)
        assert robot.view.node_ids_left == [] and not robot.view.driving
    assert schema_tap.seen[(version, "instantActions")] == 5


async def test_order_sent_while_robot_offline_is_resent_when_it_connects(broker, schema_tap, controller_link):
    robot = controller_link.add_robot("r3", manufacturer=MANUFACTURER, version="3.0.0")
    plan = OrderPlan("o-late", [PlannedNode("a", 0, 0), PlannedNode("b", 5, 0)], map_id="station")
    await robot.send_order(plan, released_until=1)  # nobody is listening: QoS 0 and lost
    sim = SimRobot("r3", manufacturer=MANUFACTURER, version="3.0.0")
    async with RobotFleet(
        [sim], broker.host, broker.port, credentials=robot_credentials(broker, "r3"), speedup=10
    ):
        await robot.wait_until(
            lambda r: r.view is not None and r.view.order_id == "o-late" and r.view.last_node_id == "b",
            timeout_s=10,
        )
    assert controller_link.stats.orders_resent >= 1


async def test_bad_robot_registration_is_refused(controller_link):
    with pytest.raises(ValueError, match="serial_number='a/b'"):
        controller_link.add_robot("a/b", manufacturer=MANUFACTURER)
    with pytest.raises(ValueError, match=r"version='9\.9\.9'"):
        controller_link.add_robot("ok", manufacturer=MANUFACTURER, version="9.9.9")
    controller_link.add_robot("twice", manufacturer=MANUFACTURER)
    with pytest.raises(ValueError, match="already registered"):
        controller_link.add_robot("twice", manufacturer=MANUFACTURER)
    with pytest.raises(KeyError, match="nobody"):
        controller_link.robot("nobody")


async def test_a_broker_that_stays_away_is_warned_about_once_then_each_minute(caplog, monkeypatch):
    port = free_port()  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="lastmile.vehicles.vda5050"):
        async with FleetLink("127.0.0.1", port, reconnect_max_s=0.05) as link:
            with pytest.raises(BrokerUnavailable):
                await link.wait_connected(1.0)  # a second of reconnecting, every 50 ms at most
    warnings = [r.getMessage() for r in caplog.records if f":{port}" in r.getMessage()]
    assert len(warnings) == 1, warnings  # not one per attempt

    caplog.clear()
    monkeypatch.setattr(link_module, "BROKER_REMINDER_S", 0.3)
    with caplog.at_level(logging.WARNING, logger="lastmile.vehicles.vda5050"):
        async with FleetLink("127.0.0.1", port, reconnect_max_s=0.05) as link:
            with pytest.raises(BrokerUnavailable):
                await link.wait_connected(1.0)
    warnings = [r.getMessage() for r in caplog.records if f":{port}" in r.getMessage()]
    assert 2 <= len(warnings) <= 5, warnings  # a reminder every 0.3 s while it stays away
    assert all("still, after" in w and "attempts" in w for w in warnings[1:]), warnings
