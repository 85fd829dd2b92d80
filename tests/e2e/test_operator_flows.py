"""Operator flows through the `lastmile` CLI against a running `lastmile serve` with simulated drones.

Ground the fleet (nothing launches), unground (missions wait for an operator: `launch = "operator"`),
launch one from the CLI (the drone takes off), abort it (the drone returns, the package is not lost).
"""

from __future__ import annotations

import subprocess
import sys
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


@pytest.mark.slow
def test_ground_launch_and_abort_from_the_console(served: tuple[int, httpx.Client]) -> None:
    port, client = served
    grounded = lastmile(port, "ground", "--reason", "thunderstorm")
    assert grounded.returncode == 0, grounded.stderr

    lat, lon = at(3000, 0)
    r = client.post("/v1/packages", json={"key": "op-1", "weight": 1.0, "dest_lat": lat, "dest_lon": lon})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.json()["decision"]["decision"] == "queued"
    assert "thunderstorm" in r.json()["decision"]["reason"]
    status = lastmile(port, "status")
    assert status.returncode == 0 and "grounded" in status.stdout.lower()
    assert missions(client) == []  # nothing launches while grounded

    assert lastmile(port, "unground").returncode == 0
    wait_until(client, [pid], lambda s: s[pid]["state"] == "assigned", 30)
    (held,) = [m for m in missions(client) if m["package_id"] == pid]
    assert held["state"] == "held"  # launch = "operator": waits for a person

    launched = lastmile(port, "launch", held["id"])
    assert launched.returncode == 0, launched.stderr
    wait_until(client, [pid], lambda s: s[pid]["state"] == "en_route", 60)

    aborted = lastmile(port, "abort", held["id"])
    assert aborted.returncode == 0, aborted.stderr
    final = wait_until(client, [pid], lambda s: s[pid]["state"] in ("received", "van", "assigned"), 120)
    history = [e["reason"] for e in final[pid]["history"]]
    assert any("aborted" in reason for reason in history), history
    assert final[pid]["state"] != "delivered"
