"""sitl.robot.SimRobot without MQTT: VDA 5050 order rules, driving, actions, battery and errors.

Every message the simulator produces here is checked against the official schemas of its version.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from sitl.robot import WALKING_SPEED, SimRobot
from sitl.robot.inbox import Refusal, read_message
from tests.robot_fixtures import schema_errors

VERSIONS = ["2.1.0", "3.0.0"]


def order(
    robot: SimRobot,
    order_id: str,
    update: int,
    nodes: list[tuple[str, int, float, float, bool]],
    drop_at: str | None = None,
) -> dict[str, Any]:
    """An order message built by hand from (nodeId, sequenceId, x, y, released) tuples."""
    out_nodes, edges = [], []
    for i, (node_id, seq, x, y, released) in enumerate(nodes):
        actions = []
        if node_id == drop_at:
            actions = [
                {
                    "actionId": f"drop-{order_id}",
                    "actionType": "drop",
                    "blockingType": "HARD",
                    "actionParameters": [{"key": "loadId", "value": "pkg"}],
                }
            ]
        out_nodes.append(
            {
                "nodeId": node_id,
                "sequenceId": seq,
                "released": released,
                "actions": actions,
                "nodePosition": {"x": x, "y": y, "mapId": "station"},
            }
        )
        if i + 1 < len(nodes):
            nxt = nodes[i + 1]
            edge = {"edgeId": f"{node_id}-{nxt[0]}", "sequenceId": seq + 1, "released": nxt[4], "actions": []}
            if robot.version.startswith("2"):
                edge |= {"startNodeId": node_id, "endNodeId": nxt[0]}
            edges.append(edge)
    message = {
        "headerId": 0,
        "timestamp": "2026-11-21T23:00:00.000Z",
        "version": robot.version,
        "manufacturer": robot.manufacturer,
        "serialNumber": robot.serial,
        "orderId": order_id,
        "orderUpdateId": update,
        "nodes": out_nodes,
        "edges": edges,
    }
    assert schema_errors(robot.version, "order", message) == []
    return message


def run(robot: SimRobot, seconds: float, dt: float = 0.1) -> None:
    for _ in range(round(seconds / dt)):
        robot.step(dt)


def state(robot: SimRobot) -> dict[str, Any]:
    message = robot.state_message()
    assert schema_errors(robot.version, "state", message) == []
    return message


@pytest.mark.parametrize("version", VERSIONS)
def test_drives_released_nodes_and_stops_before_the_horizon(version):
    r = SimRobot("s1", version=version)
    r.handle_order(order(r, "o1", 0, [("a", 0, 0, 0, True), ("b", 2, 17, 0, True), ("c", 4, 17, 17, False)]))
    assert r.last_node_id == "a"  # standing on the first node counts as traversing it
    run(r, 9.0)  # 17 m at 1.7 m/s takes 10 s
    assert r.driving and 0 < r.x < 17
    run(r, 5.0)
    assert (r.x, r.y) == (17, 0) and r.last_node_id == "b" and not r.driving  # waits: c is horizon
    s = state(r)
    assert [n["nodeId"] for n in s["nodeStates"]] == ["c"] and s["nodeStates"][0]["released"] is False
    assert s["lastNodeSequenceId"] == 2


@pytest.mark.parametrize("version", VERSIONS)
def test_stitched_update_releases_the_rest(version):
    r = SimRobot("s1", version=version)
    r.handle_order(
        order(r, "o1", 0, [("a", 0, 0, 0, True), ("b", 2, 10, 0, True), ("c", 4, 10, 10, False)], "b")
    )
    run(r, 15)
    assert r.actions["drop-o1"].status == "FINISHED" and r.loads == []
    r.handle_order(order(r, "o1", 1, [("b", 2, 10, 0, True), ("c", 4, 10, 10, True)]))
    assert r.order_update_id == 1 and r.errors == []
    run(r, 7)
    assert r.last_node_id == "c" and not r.order_active()
    assert state(r)["orderUpdateId"] == 1


def test_drop_action_blocks_driving_while_it_runs():
    r = SimRobot("s1")
    r.handle_order(
        order(r, "o1", 0, [("a", 0, 0, 0, True), ("b", 2, 1.7, 0, True), ("c", 4, 3.4, 0, True)], "b")
    )
    run(r, 1.0)
    assert r.last_node_id == "b" and r.actions["drop-o1"].status == "RUNNING"
    run(r, 3.0)  # the drop-off takes 5 simulated seconds; a HARD action forbids driving
    assert (r.x, r.y) == (1.7, 0) and not r.driving
    assert state(r)["loads"] == [{"loadId": "pkg"}]
    run(r, 3.0)
    assert r.actions["drop-o1"].status == "FINISHED" and r.x > 1.7


@pytest.mark.parametrize(
    ("setup", "message_args", "error_type"),
    [
        ("far", ("o1", 0, [("a", 0, 50, 50, True)]), "noRouteError"),  # not standing at the first node
        ("busy", ("o2", 0, [("a", 0, 0, 0, True)]), "orderError"),  # another order still running
        (
            "busy",
            ("o1", 1, [("x", 8, 0, 0, True)]),
            "orderUpdateError",
        ),  # update not stitched at the base end
    ],
)
def test_orders_that_break_the_rules_are_rejected(setup, message_args, error_type):
    r = SimRobot("s1")
    if setup == "busy":
        r.handle_order(order(r, "o1", 0, [("a", 0, 0, 0, True), ("b", 2, 100, 0, True)]))
    r.handle_order(order(r, *message_args))
    s = state(r)
    assert [e["errorType"] for e in s["errors"]] == [error_type]
    assert s["errors"][0]["errorLevel"] == "WARNING"
    assert s["orderId"] == ("" if setup == "far" else "o1")


def test_duplicate_update_is_ignored_and_older_update_rejected():
    r = SimRobot("s1")
    first = order(r, "o1", 0, [("a", 0, 0, 0, True), ("b", 2, 100, 0, True)])
    r.handle_order(first)
    r.handle_order(first)  # re-sent after a reconnect: VDA 5050 says ignore
    assert r.errors == [] and r.order_update_id == 0
    r.handle_order(order(r, "o1", 1, [("b", 2, 100, 0, True)]))
    r.handle_order(order(r, "o1", 0, [("a", 0, 0, 0, True)]))
    assert [e["errorType"] for e in r.errors] == ["orderUpdateError"]


@pytest.mark.parametrize("version", VERSIONS)
def test_battery_drains_with_distance_and_warns_when_low(version):
    r = SimRobot("s1", version=version, battery_wh=500, wh_per_km=20)
    r.handle_order(order(r, "o1", 0, [("a", 0, 0, 0, True), ("b", 2, 170, 0, True)]))
    run(r, 101)
    assert r.odometer_m == pytest.approx(170)
    assert r.battery_percent == pytest.approx(100 - 100 * 0.170 * 20 / 500)  # 3.4 Wh of 500 Wh
    r.set_battery(10)
    s = state(r)
    battery = s["batteryState" if version == "2.1.0" else "powerSupply"]
    assert battery["batteryCharge" if version == "2.1.0" else "stateOfCharge"] == 10
    assert [(e["errorType"], e["errorLevel"]) for e in s["errors"]] == [("lowBattery", "WARNING")]


def test_fatal_error_stops_the_robot_until_cleared():
    r = SimRobot("s1")
    r.handle_order(order(r, "o1", 0, [("a", 0, 0, 0, True), ("b", 2, 100, 0, True)]))
    run(r, 1)
    r.raise_error("blockedPath", "FATAL", "fallen tree")
    x = r.x
    run(r, 5)
    assert r.x == x and not r.driving
    r.clear_error("blockedPath")
    run(r, 1)
    assert r.x == pytest.approx(x + WALKING_SPEED)


@pytest.mark.parametrize("version", VERSIONS)
def test_instant_actions(version):
    r = SimRobot("s1", version=version)
    r.handle_order(order(r, "o1", 0, [("a", 0, 0, 0, True), ("b", 2, 100, 0, True)]))

    def instant(kind: str) -> dict[str, Any]:
        message = {
            "headerId": 0,
            "timestamp": "2026-11-21T23:00:00.000Z",
            "version": version,
            "manufacturer": "lastmile",
            "serialNumber": "s1",
            "actions": [{"actionId": f"i-{kind}", "actionType": kind, "blockingType": "NONE"}],
        }
        assert schema_errors(version, "instantActions", message) == []
        r.handle_instant_actions(message)
        s = state(r)
        found = s["instantActionStates"] if version == "3.0.0" else s["actionStates"]
        return {a["actionId"]: a["actionStatus"] for a in found}

    assert instant("startPause")["i-startPause"] == "FINISHED" and r.paused
    x = r.x
    run(r, 2)
    assert r.x == x
    instant("stopPause")
    run(r, 1)
    assert r.x > x
    assert instant("factsheetRequest")["i-factsheetRequest"] == "FINISHED" and r.wants_factsheet
    assert schema_errors(version, "factsheet", r.factsheet_message()) == []
    assert instant("cancelOrder")["i-cancelOrder"] == "FINISHED" and not r.order_active()
    assert instant("cancelOrder")["i-cancelOrder"] == "FAILED"  # nothing left to cancel
    assert instant("dance")["i-dance"] == "FAILED"


@pytest.mark.parametrize("version", VERSIONS)
def test_connection_messages_per_version(version):
    r = SimRobot("s1", version=version)
    will = r.connection_message("broken")
    assert will["connectionState"] == ("CONNECTIONBROKEN" if version == "2.1.0" else "CONNECTION_BROKEN")
    for message in (will, r.connection_message("ONLINE"), r.connection_message("OFFLINE")):
        assert schema_errors(version, "connection", message) == []
    assert [r.connection_message("ONLINE")["headerId"] for _ in range(2)] == [3, 4]  # per topic, +1 each


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match=r"version=.1\.1\.0."):
        SimRobot("s1", version="1.1.0")
    with pytest.raises(ValueError, match="speed=0"):
        SimRobot("s1", speed=0)
    assert math.isfinite(SimRobot("s1").battery_percent)


@pytest.mark.parametrize("version", VERSIONS)
def test_state_velocity_is_the_speed_driven_on_the_edge(version):
    r = SimRobot("s1", version=version, speed=1.5)
    message = order(r, "o1", 0, [("a", 0, 0, 0, True), ("b", 2, 0, 100, True)])
    message["edges"][0]["maxSpeed" if version == "2.1.0" else "maximumSpeed"] = 0.8  # a slow stretch
    assert schema_errors(version, "order", message) == []
    r.handle_order(message)
    run(r, 2)
    velocity = state(r)["velocity"]
    assert (velocity["vx"], velocity["vy"]) == pytest.approx((0.0, 0.8), abs=1e-3)  # northward, at the limit
    pause = {"actionId": "p", "actionType": "startPause", "blockingType": "HARD"}
    r.handle_instant_actions({"actions": [pause]})
    assert state(r)["velocity"]["vy"] == 0.0


# ---- what the robot does with a message it cannot use (sitl.robot.inbox), and 2.0.0 ----------------------
def _refusal(robot: SimRobot, topic: str, body: Any) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(Refusal) as caught:
        read_message(robot.wire, robot.serial, topic, raw)
    robot.report_refusal(caught.value.error)
    assert schema_errors(robot.version, "state", robot.state_message()) == []
    return caught.value.error


def _refs(error: dict[str, Any]) -> dict[str, str]:
    return {r["referenceKey"]: r["referenceValue"] for r in error["errorReferences"]}


def test_a_2_1_0_cancel_to_a_2_0_0_robot_is_refused_naming_the_key_and_the_action():
    r = SimRobot("s1", version="2.0.0")
    head = {
        "headerId": 7,
        "timestamp": "2026-01-01T00:00:00.000Z",
        "manufacturer": "lastmile",
        "serialNumber": "s1",
    }
    cancel = {"actionId": "c-1", "actionType": "cancelOrder", "blockingType": "NONE"}
    error = _refusal(r, "instantActions", {**head, "version": "2.1.0", "actions": [cancel]})
    assert error["errorType"] == "validationError"
    assert "VDA 5050 2.0.0 calls it 'instantActions', not 'actions'" in error["errorDescription"]
    assert _refs(error) == {"topic": "instantActions", "headerId": "7", "actionId": "c-1"}
    body = read_message(
        r.wire, "s1", "instantActions", json.dumps({**head, "version": "2.0.0", "instantActions": [cancel]})
    )
    r.handle_instant_actions(body)
    refused = next(e for e in r.errors if e["errorType"] == "noOrderToCancel")
    assert _refs(refused) == {
        "topic": "instantActions",
        "headerId": "7",
        "actionId": "c-1",
        "actionType": "cancelOrder",
    }


@pytest.mark.parametrize("version", ["2.0.0", *VERSIONS])
def test_a_foreign_major_version_and_schema_violations_are_refused_with_the_reason(version):
    r = SimRobot("s1", version=version)
    foreign = "3.0.0" if version.startswith("2") else "2.1.0"
    head = {
        "headerId": 3,
        "timestamp": "2026-01-01T00:00:00.000Z",
        "manufacturer": "lastmile",
        "serialNumber": "s1",
    }
    error = _refusal(
        r,
        "order",
        {**head, "version": foreign, "orderId": "o-9", "orderUpdateId": 0, "nodes": [], "edges": []},
    )
    assert f"field version: '{foreign}' is not VDA 5050 {version[0]}.x" in error["errorDescription"]
    assert _refs(error) == {"topic": "order", "headerId": "3", "orderId": "o-9", "orderUpdateId": "0"}
    error = _refusal(r, "order", {**head, "version": version, "orderId": "o-9", "orderUpdateId": "x"})
    assert (
        "field orderUpdateId:" in error["errorDescription"]
        or "required property" in error["errorDescription"]
    )
    assert _refs(error)["orderId"] == "o-9"
    error = _refusal(r, "order", b"{not json")
    assert _refs(error) == {"topic": "order"} and "not JSON" in error["errorDescription"]
    assert len([e for e in r.errors if e["errorType"] == "validationError"]) == 1  # the latest per topic


def test_a_2_0_0_robot_speaks_2_0_0():
    r = SimRobot("s1", version="2.0.0")
    r.handle_order(order(r, "o-1", 0, [("a", 0, 0, 0, True), ("b", 2, 10, 0, True)], drop_at="b"))
    message = r.state_message()
    assert message["version"] == "2.0.0" and isinstance(message["batteryState"]["reach"], int)
    assert all("nodePosition" not in n for n in message["nodeStates"])  # no theta given: 2.0.0 needs one
    for topic, body in (
        ("state", message),
        ("factsheet", r.factsheet_message()),
        ("connection", r.connection_message("broken")),
    ):
        assert schema_errors("2.0.0", topic, body) == [], topic
    assert r.wire.topic("lastmile", "s1", "state") == "uagv/v2/lastmile/s1/state"
