"""Helpers for end-to-end tests against a real `lastmile serve` process and simulated drones in another.

Three processes, as on a real station: the simulated drones (`python -m sitl.copter`), the controller
(`python -m controller serve`), and the test, which speaks HTTP (and the CLI) to the controller only.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.tokens import hash_tokens, toml_inline

STATION = (33.4400, -112.2560)
TOKEN = "restart-op"
SPEEDUP = 20
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
def served_copters() -> Iterator[int]:
    """Two simulated copters in their own process; yields the first one's TCP port."""
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
        f'[api]\nhost = "127.0.0.1"\nport = {api_port}\n'
        f'tokens = {toml_inline(hash_tokens({TOKEN: "operator"}))}\n'
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
