"""Operator flows through the `lastmile` CLI against a running `lastmile serve` with simulated drones.

Ground the fleet (nothing launches), unground (missions wait for an operator: `launch = "operator"`),
launch all waiting missions from the CLI (the drones take off), watch them on the dashboard (each mission's
progress, each drone's battery and position), abort one (the drone returns, the package is not lost).
"""

from __future__ import annotations

import itertools
import math
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.serving import TOKEN, at, free_port, start_serve, wait_until, write_station


def lastmile(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "controller", *args, "--url", f"http://127.0.0.1:{port}", "--token", TOKEN]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={"COLUMNS": "200"})


@pytest.fixture
def served(tmp_path: Path, served_copters: int) -> Iterator[tuple[int, httpx.Client]]:
    api_port = free_port()
    station = write_station(tmp_path, served_copters, api_port)
    station.write_text(station.read_text().replace("tick_s = 1.0\n", 'tick_s = 1.0\nlaunch = "operator"\n'))
    serve = start_serve(station, api_port)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers=headers, timeout=30) as client:
            yield api_port, client
    finally:
        serve.terminate()
        serve.wait(15)


def missions(client: httpx.Client) -> list[dict[str, Any]]:
    body = client.get("/v1/missions").json()
    return body["missions"] if isinstance(body, dict) else body


def track_m(client: httpx.Client, mission_id: str) -> float:
    """How far the server has seen the mission's vehicle go (its track on the station map)."""
    (mission,) = [m for m in client.get("/v1/map").json()["missions"] if m["id"] == mission_id]
    pts = mission["track"]
    return sum(math.dist(a, b) for a, b in itertools.pairwise(pts))


@pytest.mark.slow
def test_ground_launch_watch_and_abort_from_the_console(served: tuple[int, httpx.Client]) -> None:
    port, client = served
    grounded = lastmile(port, "ground", "--reason", "thunderstorm")
    assert grounded.returncode == 0, grounded.stderr

    ids = []
    for key, east in (("op-1", 8000), ("op-2", -2500)):  # op-1 far: still out when it is aborted
        lat, lon = at(east, 0)
        r = client.post("/v1/packages", json={"key": key, "weight": 1.0, "dest_lat": lat, "dest_lon": lon})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        assert r.json()["decision"]["decision"] == "queued"
        assert "thunderstorm" in r.json()["decision"]["reason"]
    pid = ids[0]
    status = lastmile(port, "status")
    assert status.returncode == 0 and "grounded" in status.stdout.lower()
    assert missions(client) == []  # nothing launches while grounded

    assert lastmile(port, "unground").returncode == 0
    wait_until(client, ids, lambda s: all(p["state"] == "assigned" for p in s.values()), 30)
    held = {m["package_id"]: m for m in missions(client)}
    assert {m["state"] for m in held.values()} == {"held"}  # launch = "operator": they wait for a person

    launched = lastmile(port, "launch", "--all-ready")
    assert launched.returncode == 0, launched.stderr
    assert all(f"mission {m['id']} launched" in launched.stdout for m in held.values()), launched.stdout
    wait_until(client, ids, lambda s: all(p["state"] == "en_route" for p in s.values()), 60)

    # The dashboard, opened mid-flight: both drones, both missions with how far they have come.
    mission_id = held[pid]["id"]
    deadline = time.monotonic() + 60
    while (before_m := track_m(client, mission_id)) < 200:  # climbing: not under way yet
        assert time.monotonic() < deadline, "the drone did not leave the station"
        time.sleep(0.25)  # the server's telemetry comes at 4 Hz: look again soon
    since = client.get("/healthz").json()["last_event"] - 1
    shown = lastmile(port, "watch", "--dashboard", "--since", str(since), "--count", "1")
    after_m = track_m(client, mission_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    row = next(line for line in lines if line.lstrip().startswith(mission_id[:8]))
    assert "op-1" in row and "en route" in row
    progress = int(re.search(r"(\d+) %", row).group(1))  # type: ignore[union-attr]
    round_trip_m = 2 * 8000
    assert progress > 0 and before_m / round_trip_m - 0.02 <= progress / 100 <= after_m / round_trip_m + 0.02
    drones = {d: next(line for line in lines if line.lstrip().startswith(f"{d} ")) for d in ("d1", "d2")}
    assert all(" ok " in row and re.search(r"\d+ %", row) for row in drones.values()), drones
    assert " km/" in drones[held[pid]["vehicle_id"]], drones  # out on op-1's leg, more than a km away

    aborted = lastmile(port, "abort", mission_id)
    assert aborted.returncode == 0, aborted.stderr
    final = wait_until(client, [pid], lambda s: s[pid]["state"] in ("received", "van", "assigned"), 120)
    history = [e["reason"] for e in final[pid]["history"]]
    assert any("aborted" in reason for reason in history), history
    assert final[pid]["state"] != "delivered"
