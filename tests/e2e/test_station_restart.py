"""`lastmile serve` killed mid-flight and started again: nothing lost, nothing delivered twice.

Three processes, as on a real station: the simulated drones (`python -m sitl.copter`), the controller
(`python -m controller serve`), and this test, which speaks HTTP to the controller only.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

STATION = (33.4400, -112.2560)
TOKEN = "restart-op"
SPEEDUP = 10
TERMINAL = {"delivered", "van"}


def free_port(span: int = 1) -> int:
    """A free TCP port p with p + 10*k free too for k < span (the simulator's port layout)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10 * span > 65000:
            continue
        try:
            for k in range(1, span):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + 10 * k))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port range")


def at(east_m: float, north_m: float) -> tuple[float, float]:
    return (STATION[0] + north_m / 111_320.0,
            STATION[1] + east_m / (111_320.0 * math.cos(math.radians(STATION[0]))))  # fmt: skip


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Until the process listens on `port` (it says nothing else we could wait on), bounded."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port} after {timeout_s} s")


@pytest.fixture
def copters() -> Iterator[int]:
    base = free_port(span=2)
    home = f"{STATION[0]},{STATION[1]},300,0"
    proc = subprocess.Popen([sys.executable, "-m", "sitl.copter", "--count", "2", "--base-port", str(base),
                             "--speedup", str(SPEEDUP), "--home", home],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_port(base + 10, proc, 30)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def write_station(tmp_path: Path, base: int, api_port: int) -> Path:
    station = tmp_path / "station.toml"
    station.write_text(
        f'name = "restart"\nlat = {STATION[0]}\nlon = {STATION[1]}\nalt_m = 300.0\ntick_s = 1.0\n'
        f"vehicle_speedup = {SPEEDUP}\n"
        f'store_url = "sqlite:///{tmp_path / "station.sqlite3"}"\n'
        f'[api]\nhost = "127.0.0.1"\nport = {api_port}\ntokens = {{ "{TOKEN}" = "operator" }}\n'
        f'[[fleet]]\nid = "d1"\nkind = "drone"\nurl = "tcp:127.0.0.1:{base}"\n'
        f'[[fleet]]\nid = "d2"\nkind = "drone"\nurl = "tcp:127.0.0.1:{base + 10}"\n'
    )
    return station


def start_serve(station: Path, api_port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with (station.parent / "serve.log").open("ab") as log:  # the child keeps its own copy of the handle
        proc = subprocess.Popen([sys.executable, "-m", "controller", "serve", "--station", str(station)],
                                stdout=subprocess.DEVNULL, stderr=log, env=env)  # fmt: skip
    wait_port(api_port, proc, 60)
    return proc


def packages(client: httpx.Client, ids: list[str]) -> dict[str, dict[str, Any]]:
    return {pid: client.get(f"/v1/packages/{pid}").json() for pid in ids}


def wait_until(
    client: httpx.Client, ids: list[str], done: Any, timeout_s: float
) -> dict[str, dict[str, Any]]:
    """Follow the controller's event feed until `done(states)` holds (bounded)."""
    deadline = time.monotonic() + timeout_s
    since = 0
    while True:
        states = packages(client, ids)
        if done(states):
            return states
        if time.monotonic() > deadline:
            raise TimeoutError(json.dumps({k: v["state"] for k, v in states.items()}))
        page = client.get("/v1/events/recent", params={"since": since}).json()
        since = page["last_seq"]
        time.sleep(0.25)


@pytest.mark.slow
def test_sigkill_mid_flight_loses_nothing_and_delivers_nothing_twice(tmp_path: Path, copters: int) -> None:
    api_port = free_port()
    station = write_station(tmp_path, copters, api_port)
    serve = start_serve(station, api_port)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers=headers, timeout=30) as client:
            batch = []
            for i, (east, north) in enumerate([(2500, 0), (0, 2500)]):
                lat, lon = at(east, north)
                batch.append({"key": f"restart-{i}", "weight": 1.0, "dest_lat": lat, "dest_lon": lon})
            r = client.post("/v1/packages", json={"packages": batch})
            assert r.status_code == 201, r.text
            ids = [p["id"] for p in r.json()["packages"]]
            wait_until(client, ids, lambda s: any(p["state"] == "en_route" for p in s.values()), 90)

        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        serve = start_serve(station, api_port)

        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers=headers, timeout=30) as client:
            final = wait_until(client, ids, lambda s: all(p["state"] in TERMINAL for p in s.values()), 240)
            for pkg in final.values():
                states = [e["to_state"] for e in pkg["history"]]
                assert states.count("delivered") <= 1, states
                assert pkg["state"] == "delivered" or pkg["state"] == "van", states
                if pkg["state"] == "van":
                    assert "flight_failed" in pkg["reasons"]
            assert any(p["state"] == "delivered" for p in final.values())
    finally:
        serve.terminate()
        serve.wait(15)
