"""`lastmile serve` killed mid-flight and started again: nothing lost, nothing delivered twice."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.e2e.serving import TERMINAL, TOKEN, at, free_port, start_serve, wait_until, write_station


@pytest.mark.slow
def test_sigkill_mid_flight_loses_nothing_and_delivers_nothing_twice(
    tmp_path: Path, served_copters: int
) -> None:
    api_port = free_port()
    station = write_station(tmp_path, served_copters, api_port)
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
