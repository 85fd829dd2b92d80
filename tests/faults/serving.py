"""Helpers for the fault suite: `lastmile serve` processes on one station and store, and their `/healthz`.

Like tests/e2e/serving.py (whose simulated copters and station layout these reuse), the controllers run as
real processes and the tests speak HTTP to them; every wait polls with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from controller.store import Store
from controller.tokens import hash_tokens, toml_inline
from tests.e2e.serving import SPEEDUP, STATION, TOKEN, free_port, wait_port
from tests.faults.accounting import Accounting, account

T = TypeVar("T")
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
# A kill test runs twice: the leader's hot standby takes over (PostgreSQL, whose lease a standby waits on),
# or, with no standby, the same `lastmile serve` is started again (SQLite is enough: its lock dies with the
# process). `store_url_for` picks the store for each.
STANDBY_OR_RESTART = [
    pytest.param(True, id="standby", marks=pytest.mark.postgres),
    pytest.param(False, id="restart"),
]


def write_station(tmp_path: Path, store_url: str, copters: int | None = None, name: str = "faults") -> Path:
    """A station file on `store_url`, with the two simulated copters at port `copters` (and +10), if any."""
    station = tmp_path / "station.toml"
    text = (
        f'name = "{name}"\nlat = {STATION[0]}\nlon = {STATION[1]}\nalt_m = 300.0\ntick_s = 1.0\n'
        f'vehicle_speedup = {SPEEDUP}\nstore_url = "{store_url}"\n'
        f'[api]\nhost = "127.0.0.1"\nport = 8750\ntokens = {toml_inline(hash_tokens({TOKEN: "operator"}))}\n'
    )
    if copters is not None:
        text += (
            f'[[fleet]]\nid = "d1"\nkind = "drone"\nurl = "tcp:127.0.0.1:{copters}"\n'
            f'[[fleet]]\nid = "d2"\nkind = "drone"\nurl = "tcp:127.0.0.1:{copters + 10}"\n'
        )
    station.write_text(text)
    return station


def spawn(station: Path, api_port: int, log_name: str) -> subprocess.Popen[bytes]:
    """`lastmile serve` on `api_port`, its output in `<log_name>.log` beside the station file (no wait)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "400"}  # rich: one line per message
    with (station.parent / f"{log_name}.log").open("ab") as log:  # the child keeps its own handle
        return subprocess.Popen(
            [sys.executable, "-m", "controller", "serve", "--station", str(station), "--port", str(api_port)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip


def serve(station: Path, api_port: int, log_name: str, timeout_s: float = 60) -> subprocess.Popen[bytes]:
    """`spawn`, then until its API listens."""
    proc = spawn(station, api_port, log_name)
    try:
        wait_port(api_port, proc, timeout_s)
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return proc


def log_of(station: Path, log_name: str) -> str:
    """What a `spawn`ed controller said so far."""
    return (station.parent / f"{log_name}.log").read_text(errors="replace")


def health(api_port: int) -> dict[str, Any]:
    return httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=5).json()  # type: ignore[no-any-return]


def poll(fn: Callable[[], T | None], timeout_s: float, every_s: float = 0.05, what: str = "") -> T:
    """Call `fn` until it returns something truthy, at most `timeout_s`; its value."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = fn()
        except (httpx.TransportError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s} s: {what or fn}")
        time.sleep(every_s)


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """SIGTERM and wait; SIGKILL if it does not end."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def store_url_for(request: pytest.FixtureRequest, tmp_path: Path, standby: bool) -> str:
    """PostgreSQL (the `postgres_url` fixture) for a station with a standby, else a SQLite file."""
    if standby:
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'station.sqlite3'}"


class Controllers:
    """The `lastmile serve` processes of one station for a kill test, used as a context manager.

    On entry the leader runs with `vehicles` linked and, with `standby`, a hot standby waits beside it.
    `kill_leader` SIGKILLs the leader and returns once a controller leads again with every vehicle linked:
    the standby, or (no standby) the same serve started again on the same port, as a supervisor would.
    `port` and `client()` always name the controller leading now. On exit every process is stopped, so the
    store can be read for the accounting without a controller writing to it.
    """

    def __init__(self, station: Path, *, standby: bool, vehicles: int) -> None:
        self.station = station
        self.vehicles = vehicles
        self.port = free_port()
        self.standby_port = free_port() if standby else None
        self.procs: list[subprocess.Popen[bytes]] = []
        self.leader: subprocess.Popen[bytes] | None = None
        self.standby: subprocess.Popen[bytes] | None = None
        self.log_name = "leader"
        self.took: dict[str, Any] = {}  # the /healthz that said a controller leads again

    def __enter__(self) -> Controllers:
        try:
            self.leader = self._serve(self.port, "leader")
            poll(self._leading(self.port), 30, what="the leader links every vehicle")
            if (spare := self.standby_port) is not None:
                self.standby = self._serve(spare, "standby")
                seen = poll(lambda: (h := health(spare))["role"] == "standby" and h, 10, what="a standby")
                assert seen["epoch"] == 1 and seen["vehicles_linked"] == 0, seen  # it commands nothing
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for proc in self.procs:
            stop(proc)

    def _serve(self, port: int, log_name: str) -> subprocess.Popen[bytes]:
        proc = spawn(self.station, port, log_name)
        self.procs.append(proc)
        wait_port(port, proc, 60)
        return proc

    def _leading(self, port: int) -> Callable[[], dict[str, Any] | None]:
        def leading() -> dict[str, Any] | None:
            h = health(port)
            return h if h["role"] == "leader" and h["vehicles_linked"] == self.vehicles else None

        return leading

    def client(self) -> httpx.Client:
        """An operator's client of the controller leading now."""
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers=HEADERS, timeout=30)

    def log(self) -> str:
        """What the controller leading now said so far."""
        return log_of(self.station, self.log_name)

    def kill_leader(self, meanwhile: Callable[[], None] | None = None) -> float:
        """SIGKILL the leader; `meanwhile()` runs once it is dead, before anything else can lead. Returns
        the seconds from the kill until a controller leads with every vehicle linked (`took`: its /healthz).
        """
        assert self.leader is not None
        self.leader.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        self.leader.wait(10)
        if meanwhile is not None:
            meanwhile()
        if self.standby is not None and self.standby_port is not None:
            self.port, self.log_name, self.leader = self.standby_port, "standby", self.standby
            self.standby, self.standby_port = None, None
        else:
            self.log_name = "restarted"
            self.leader = self._serve(self.port, "restarted")
        self.took = poll(self._leading(self.port), 30, every_s=0.02, what="a controller leads again, linked")
        return time.monotonic() - killed


def accounting(store_url: str, keys: list[str], open_ok: Mapping[str, str] | None = None) -> Accounting:
    """The fault suite's accounting (tests/faults/accounting.py) of `keys` in the store at `store_url`,
    read once every controller of the station stopped."""
    with Store(store_url) as store:
        return account(store, keys, open_ok=open_ok)


def set_copter_params(port: int, sysid: int, params: Mapping[str, float], timeout_s: float = 5) -> None:
    """Set parameters on a simulated copter (its SERIAL0 at `port`, which takes several ground stations at
    once, as SITL's does) from a link of the test's own, each confirmed by the copter's PARAM_VALUE: what a
    technician at the pad would do with a ground station, beside the controller's link."""
    conn = mavutil.mavlink_connection(f"tcp:127.0.0.1:{port}", source_system=254, autoreconnect=False)
    try:
        for name, value in params.items():
            deadline = time.monotonic() + timeout_s
            conn.mav.param_set_send(sysid, 1, name.encode(), value, mavlink.MAV_PARAM_TYPE_REAL32)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"copter {sysid} did not confirm {name} = {value}")
                msg = conn.recv_match(type="PARAM_VALUE", blocking=True, timeout=left)
                if msg is not None and msg.get_srcSystem() == sysid and msg.param_id == name:
                    assert msg.param_value == value, (name, msg.param_value)
                    break
    finally:
        conn.close()


def copter_armed(port: int, sysid: int, timeout_s: float = 5) -> bool:
    """Whether the simulated copter at `port` says it is armed (its next HEARTBEAT, on a link of our own)."""
    conn = mavutil.mavlink_connection(f"tcp:127.0.0.1:{port}", source_system=254, autoreconnect=False)
    try:
        msg = conn.recv_match(type="HEARTBEAT", blocking=True, timeout=timeout_s)
        while msg is not None and msg.get_srcSystem() != sysid:
            msg = conn.recv_match(type="HEARTBEAT", blocking=True, timeout=timeout_s)
        if msg is None:
            raise TimeoutError(f"no HEARTBEAT from copter {sysid} at port {port}")
        return bool(msg.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED)
    finally:
        conn.close()


def vehicle_events(client: httpx.Client) -> list[dict[str, Any]]:
    """The vehicle events still in the controller's recent history (the event bus of this process)."""
    events = client.get("/v1/events/recent", params={"since": 0}).json()["events"]
    return [e for e in events if e.get("type") == "vehicle"]
