"""Helpers for the fault suite: `lastmile serve` processes on one station and store, and their `/healthz`.

Like tests/e2e/serving.py (whose simulated copters and station layout these reuse), the controllers run as
real processes and the tests speak HTTP to them; every wait polls with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from controller.tokens import hash_tokens, toml_inline
from tests.e2e.serving import SPEEDUP, STATION, TOKEN, wait_port

T = TypeVar("T")
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


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
