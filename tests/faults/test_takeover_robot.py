"""A leader and a hot standby on PostgreSQL with a simulated sidewalk robot (VDA 5050 over a real mosquitto):
SIGKILL the leader while the robot drives its order, and the standby takes over, follows the same order
(the robot's own state: order id, nodes, loads) and records the package delivered, exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sitl.broker import Broker
from tests.e2e.serving import TERMINAL, at, free_port, wait_until
from tests.faults.serving import HEADERS, health, log_of, poll, serve, stop, write_station

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
@pytest.mark.postgres
def test_sigkill_of_the_leader_mid_drive_the_standby_follows_the_robot_to_one_delivery(
    tmp_path: Path, postgres_url: str, broker: Broker, robot: subprocess.Popen[bytes]
) -> None:
    station = write_station(tmp_path, postgres_url)
    with station.open("a") as f:
        f.write(
            f'[broker]\nurl = "{broker.url}"\nusername = "controller"\npassword = "{CONTROLLER_PASSWORD}"\n'
            f'[[fleet]]\nid = "r1"\nkind = "robot"\nurl = "{ROBOT}"\n'
        )
    leader_port, standby_port = free_port(), free_port()
    leader = serve(station, leader_port, "leader")
    standby = None
    try:
        linked = poll(
            lambda: (h := health(leader_port))["vehicles_linked"] == 1 and h, 20, what="robot linked"
        )
        assert linked["broker"] == "connected", linked
        standby = serve(station, standby_port, "standby")
        seen = poll(lambda: (h := health(standby_port))["role"] == "standby" and h, 10, what="a standby")
        assert seen["broker"] == "not linked" and seen["vehicles_linked"] == 0, seen

        with httpx.Client(base_url=f"http://127.0.0.1:{leader_port}", headers=HEADERS, timeout=30) as client:
            lat, lon = at(0, 300)
            r = client.post(
                "/v1/packages", json={"key": "walk", "weight": 2.0, "dest_lat": lat, "dest_lon": lon}
            )
            assert r.status_code == 201 and r.json()["decision"]["decision"] == "robot", r.text
            pid = r.json()["id"]
            wait_until(client, [pid], lambda s: s[pid]["state"] == "en_route", 30)

        leader.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        leader.wait(10)
        poll(
            lambda: (h := health(standby_port))["role"] == "leader" and h["vehicles_linked"] == 1,
            30, every_s=0.02, what="the standby leads with the robot linked",
        )  # fmt: skip
        print(
            f"\nrobot takeover: {time.monotonic() - killed:.2f} s from SIGKILL to leading, the robot linked"
        )

        with httpx.Client(base_url=f"http://127.0.0.1:{standby_port}", headers=HEADERS, timeout=30) as client:
            final = wait_until(client, [pid], lambda s: s[pid]["state"] in TERMINAL, 90)[pid]
            states = [e["to_state"] for e in final["history"]]
            assert final["state"] == "delivered", (states, log_of(station, "standby"))
            assert states.count("delivered") == 1 and states.count("launching") == 1, states
            assert "failed" not in states, states
    finally:
        stop(leader)
        if standby is not None:
            stop(standby)
