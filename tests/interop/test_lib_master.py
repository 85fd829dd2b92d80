"""A master we did not write: vda-5050-lib's MasterController drives `lastmile sitl robot --version 2.0.0`.

The robot runs as its own process (the CLI), through a real mosquitto; the lib validates every state,
connection and factsheet it receives with its 2.0 validators (a message it drops fails the test), and
`schema_tap` checks them against the official 2.0.0 schemas. Issue 22 found the robot's 2.1.0 messages
dropped by this master and its cancel refused without errorReferences; these pin the fixes down.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sitl.broker import Broker
from tests.interop.conftest import MAP_ID, OUR_ROBOT, peer_config
from tests.interop.peer import Peer
from tests.robot_fixtures import schema_tap  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def sitl_robot(broker: Broker) -> AsyncIterator[asyncio.subprocess.Process]:
    """`lastmile sitl robot` (its CLI module) as a 2.0.0 robot on the lib's map, until the block ends."""
    user, password = broker.credentials(OUR_ROBOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sitl.robot.cli",
        "--version",
        "2.0.0",
        "--map-id",
        MAP_ID,
        "--broker",
        f"mqtt://{user}:{password}@{broker.host}:{broker.port}",
        "--speedup",
        "10",
        "--state-interval",
        "0.5",
        "--keepalive",
        "2",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.startswith(b"ready 1 robots"), line
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def order(order_id: str, far_x: float, with_drop: bool) -> dict[str, Any]:
    """A two-node order as a 2.0.0 master writes it (the lib adds the header)."""
    drop = {
        "actionId": f"{order_id}-drop",
        "actionType": "drop",
        "blockingType": "HARD",
        "actionParameters": [{"key": "loadId", "value": "parcel-7"}],
    }
    return {
        "orderId": order_id,
        "orderUpdateId": 0,
        "nodes": [
            {"nodeId": "n0", "sequenceId": 0, "released": True, "actions": [],
             "nodePosition": {"x": 0.0, "y": 0.0, "mapId": MAP_ID}},
            {"nodeId": "n1", "sequenceId": 2, "released": True, "actions": [drop] if with_drop else [],
             "nodePosition": {"x": far_x, "y": 0.0, "mapId": MAP_ID}},
        ],
        "edges": [
            {"edgeId": "e1", "sequenceId": 1, "released": True, "startNodeId": "n0", "endNodeId": "n1",
             "actions": []},
        ],
    }  # fmt: skip


def cancel(action_id: str) -> dict[str, Any]:
    return {"actionId": action_id, "actionType": "cancelOrder", "blockingType": "HARD"}


def connection_is(state: str):
    return lambda e: (
        e["event"] == "connection" and e["serialNumber"] == OUR_ROBOT and e["connectionState"] == state
    )


async def test_the_lib_drives_our_robot_to_a_drop_and_sees_its_last_will(broker, schema_tap):  # noqa: F811
    async with Peer(peer_config(broker, "master")) as master, sitl_robot(broker) as robot:
        await master.expect(connection_is("ONLINE"))
        factsheet = await master.expect(lambda e: e["event"] == "factsheet")
        drop = next(a for a in factsheet["agvActions"] if a["actionType"] == "drop")
        assert {p["key"] for p in drop["actionParameters"]} == {"loadId", "loadType", "weight"}

        await master.send({"cmd": "order", "serialNumber": OUR_ROBOT, "order": order("o-1", 6.0, True)})
        done = await master.expect(lambda e: e["event"] == "order_processed")
        assert (done["error"], done["byCancelation"]) == (None, False), done
        await master.expect(
            lambda e: e["event"] == "action" and e["actionId"] == "o-1-drop" and e["status"] == "FINISHED"
        )
        await master.expect(lambda e: e["event"] == "node_traversed" and e["nodeId"] == "n1")

        robot.kill()  # no DISCONNECT: the broker publishes the robot's retained last will
        await master.expect(connection_is("CONNECTIONBROKEN"))
        assert not master.problems(), master.problems()  # nothing our robot sent was dropped by the lib
        assert schema_tap.seen[("2.0.0", "state")] >= 3 and schema_tap.seen[("2.0.0", "factsheet")] >= 1


async def test_the_libs_cancel_works_and_a_refused_one_names_its_action(broker, schema_tap):  # noqa: F811
    async with Peer(peer_config(broker, "master")) as master, sitl_robot(broker):
        await master.expect(connection_is("ONLINE"))
        await master.send({"cmd": "order", "serialNumber": OUR_ROBOT, "order": order("o-2", 400.0, False)})
        await master.expect(lambda e: e["event"] == "state" and e["orderId"] == "o-2" and e["driving"])

        await master.send({"cmd": "instant", "serialNumber": OUR_ROBOT, "actions": [cancel("cancel-1")]})
        done = await master.expect(lambda e: e["event"] == "action" and e["actionId"] == "cancel-1")
        assert done["status"] == "FINISHED", done
        processed = await master.expect(lambda e: e["event"] == "order_processed")
        assert processed["byCancelation"] is True, processed

        # Nothing left to cancel: refused, and the error's errorReferences tie it to the lib's action.
        await master.send({"cmd": "instant", "serialNumber": OUR_ROBOT, "actions": [cancel("cancel-2")]})
        refused = await master.expect(lambda e: e["event"] == "action" and e["actionId"] == "cancel-2")
        assert refused["status"] == "FAILED" and refused["error"] is not None, refused
        assert refused["error"]["errorType"] == "noOrderToCancel"
        references = {r["referenceKey"]: r["referenceValue"] for r in refused["error"]["errorReferences"]}
        assert references["actionId"] == "cancel-2" and references["topic"] == "instantActions"
        assert not master.problems(), master.problems()
