"""SIGKILL the leading `lastmile serve` while a simulated sidewalk robot (VDA 5050 over a real mosquitto)
drives its order. With a hot standby (PostgreSQL) the standby takes over; without one (SQLite) the same
serve is started again. Either way the next leader follows the same order (the robot's own state: order id,
nodes, loads): it adopts that orderId and sends no second order, and records the package delivered, exactly
once. The test ends with the fault suite's accounting (tests/faults/accounting.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sitl.broker import Broker
from tests.e2e.serving import TERMINAL, at, wait_until
from tests.faults.serving import (
    STANDBY_OR_RESTART,
    Controllers,
    accounting,
    health,
    poll,
    store_url_for,
    vehicle_events,
    write_station,
)

ROBOT = "robot-001"
ROBOT_PASSWORD = "robot-pw"
CONTROLLER_PASSWORD = "controller-pw"


@pytest.fixture
def broker() -> Iterator[Broker]:
    with Broker(robots=[ROBOT], robot_password=ROBOT_PASSWORD, controller_password=CONTROLLER_PASSWORD) as b:
        yield b


@pytest.fixture
def robot(broker: Broker) -> Iterator[subprocess.Popen[bytes]]:
    """`lastmile sitl robot` at the station, 20 times walking pace, in its own process."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "sitl", "robot", "--count", "1", "--broker", broker.url,
         "--password", ROBOT_PASSWORD, "--speedup", "20"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    yield proc
    proc.terminate()
    proc.wait(10)


@pytest.mark.slow
@pytest.mark.parametrize("standby", STANDBY_OR_RESTART)
def test_sigkill_of_the_leader_mid_drive_the_next_leader_follows_the_same_order_to_one_delivery(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    broker: Broker,
    robot: subprocess.Popen[bytes],
    standby: bool,
) -> None:
    store_url = store_url_for(request, tmp_path, standby)
    station = write_station(tmp_path, store_url)
    with station.open("a") as f:
        f.write(
            f'[broker]\nurl = "{broker.url}"\nusername = "controller"\npassword = "{CONTROLLER_PASSWORD}"\n'
            f'[[fleet]]\nid = "r1"\nkind = "robot"\nurl = "{ROBOT}"\n'
        )
    with Controllers(station, standby=standby, vehicles=1) as ctl:
        assert health(ctl.port)["broker"] == "connected"
        if ctl.standby_port is not None:
            seen = health(ctl.standby_port)
            assert seen["broker"] == "not linked" and seen["vehicles_linked"] == 0, seen

        with ctl.client() as client:
            lat, lon = at(0, 300)
            r = client.post(
                "/v1/packages", json={"key": "walk", "weight": 2.0, "dest_lat": lat, "dest_lon": lon}
            )
            assert r.status_code == 201 and r.json()["decision"]["decision"] == "robot", r.text
            pid = r.json()["id"]
            wait_until(client, [pid], lambda s: s[pid]["state"] == "en_route", 30)
            sent = poll(
                lambda: [e["order_id"] for e in vehicle_events(client) if e.get("kind") == "order_sent"],
                10, what="the leader's order_sent event",
            )  # fmt: skip
            order = sent[0]

        took_s = ctl.kill_leader()
        how = "the standby leading" if standby else "the same serve leading again"
        print(f"\nrobot: {took_s:.2f} s from SIGKILL to {how}, the robot linked")

        with ctl.client() as client:
            final = wait_until(client, [pid], lambda s: s[pid]["state"] in TERMINAL, 90)[pid]
            states = [e["to_state"] for e in final["history"]]
            assert final["state"] == "delivered", (states, ctl.log())
            assert states.count("delivered") == 1 and states.count("launching") == 1, states
            assert "failed" not in states, states
            # The same order followed, no second one: the new leader adopted the robot's orderId, and every
            # order it speaks of for this package (an update releasing the way back included) is that one.
            events = vehicle_events(client)
            adopted = [e["order_id"] for e in events if e.get("kind") == "order_adopted"]
            assert adopted == [order], (order, events)
            orders = {e["order_id"] for e in events if str(e.get("order_id", "")).startswith(f"{pid}~")}
            assert orders == {order}, (order, events)
    accounting(store_url, ["walk"]).check()
