"""A leader and a hot standby on PostgreSQL with two simulated copters: SIGKILL the leader with a drone in
flight, and the standby takes over within seconds, re-attaches the flight and follows it to one delivery.

The drone flies on through the gap (the station's default `drones_continue_without_controller`, ArduCopter's
FS_OPTIONS bit 1), so the package en route at the kill is delivered on its first attempt, exactly once. The
takeover time (kill -> the standby's /healthz says leader with both drones linked) is printed and bounded.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.serving import TERMINAL, at, free_port, wait_until
from tests.faults.serving import HEADERS, health, log_of, poll, serve, stop, write_station

TAKEOVER_BOUND_S = 5.0


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_of_the_leader_mid_flight_the_standby_takes_over_and_delivers_once(
    tmp_path: Path, postgres_url: str, served_copters: int
) -> None:
    station = write_station(tmp_path, postgres_url, copters=served_copters)
    leader_port, standby_port = free_port(), free_port()
    leader = serve(station, leader_port, "leader")
    standby = None
    try:
        poll(lambda: health(leader_port)["vehicles_linked"] == 2, 20, what="the leader links both drones")
        standby = serve(station, standby_port, "standby")
        seen = poll(lambda: (h := health(standby_port))["role"] == "standby" and h, 10, what="a standby")
        assert seen["epoch"] == 1 and seen["vehicles_linked"] == 0, seen  # it commands nothing

        with httpx.Client(base_url=f"http://127.0.0.1:{standby_port}", headers=HEADERS, timeout=30) as spare:
            lat, lon = at(0, 2500)
            refused = spare.post("/v1/packages", json={"key": "to-standby", "weight": 1.0,
                                                       "dest_lat": lat, "dest_lon": lon})  # fmt: skip
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1", refused.text

        with httpx.Client(base_url=f"http://127.0.0.1:{leader_port}", headers=HEADERS, timeout=30) as client:
            lat, lon = at(2500, 0)
            r = client.post(
                "/v1/packages", json={"key": "flying", "weight": 1.0, "dest_lat": lat, "dest_lon": lon}
            )
            assert r.status_code == 201 and r.json()["decision"]["decision"] == "drone", r.text
            pid = r.json()["id"]
            wait_until(client, [pid], lambda s: s[pid]["state"] == "en_route", 90)

        leader.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        leader.wait(10)
        took = poll(
            lambda: (h := health(standby_port))["role"] == "leader" and h["vehicles_linked"] == 2 and h,
            30, every_s=0.02, what="the standby leads with both drones linked",
        )  # fmt: skip
        takeover_s = time.monotonic() - killed
        print(f"\ntakeover: {takeover_s:.2f} s from SIGKILL to the standby leading with 2 drones linked")
        assert took["epoch"] == 2, took
        assert takeover_s < TAKEOVER_BOUND_S, (takeover_s, log_of(station, "standby"))

        with httpx.Client(base_url=f"http://127.0.0.1:{standby_port}", headers=HEADERS, timeout=30) as client:
            final = wait_until(client, [pid], lambda s: s[pid]["state"] in TERMINAL, 120)[pid]
            states = [e["to_state"] for e in final["history"]]
            assert final["state"] == "delivered", states
            assert states.count("delivered") == 1 and states.count("launching") == 1, states
            assert "failed" not in states, states
            # The new leader writes: a package submitted to it now is taken.
            lat, lon = at(0, 1500)
            again = client.post(
                "/v1/packages", json={"key": "after", "weight": 1.0, "dest_lat": lat, "dest_lon": lon}
            )
            assert again.status_code == 201, again.text
    finally:
        stop(leader)
        if standby is not None:
            stop(standby)
