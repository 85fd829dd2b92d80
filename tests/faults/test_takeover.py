"""SIGKILL the leading `lastmile serve` with a drone in flight. With a hot standby (PostgreSQL) the standby
takes over within seconds, re-attaches the flight and follows it to one delivery; without one (SQLite) the
same serve is started again, as a supervisor would, and does the same after its start.

The drone flies on through the gap (the station's default `drones_continue_without_controller`, ArduCopter's
FS_OPTIONS bit 1), so the package en route at the kill is delivered on its first attempt, exactly once. A
package submitted to the new leader right after the kill flies on the other drone. The takeover time (kill
-> the standby's /healthz says leader with both drones linked) is printed and bounded; a restart's time is
printed. The test ends with the fault suite's accounting (tests/faults/accounting.py) over every key.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.serving import TERMINAL, at, wait_until
from tests.faults.serving import (
    HEADERS,
    STANDBY_OR_RESTART,
    Controllers,
    accounting,
    store_url_for,
    write_station,
)

TAKEOVER_BOUND_S = 5.0


@pytest.mark.slow
@pytest.mark.parametrize("standby", STANDBY_OR_RESTART)
def test_sigkill_of_the_leader_mid_flight_the_next_leader_delivers_once(
    tmp_path: Path, request: pytest.FixtureRequest, served_copters: int, standby: bool
) -> None:
    store_url = store_url_for(request, tmp_path, standby)
    station = write_station(tmp_path, store_url, copters=served_copters)
    with Controllers(station, standby=standby, vehicles=2) as ctl:
        if ctl.standby_port is not None:
            spare = httpx.Client(base_url=f"http://127.0.0.1:{ctl.standby_port}", headers=HEADERS, timeout=30)
            with spare:
                lat, lon = at(0, 2500)
                refused = spare.post("/v1/packages", json={"key": "to-standby", "weight": 1.0,
                                                           "dest_lat": lat, "dest_lon": lon})  # fmt: skip
                assert refused.status_code == 503 and refused.headers["retry-after"] == "1", refused.text

        with ctl.client() as client:
            lat, lon = at(2000, 0)
            r = client.post(
                "/v1/packages", json={"key": "flying", "weight": 1.0, "dest_lat": lat, "dest_lon": lon}
            )
            assert r.status_code == 201 and r.json()["decision"]["decision"] == "drone", r.text
            pid = r.json()["id"]
            wait_until(client, [pid], lambda s: s[pid]["state"] == "en_route", 90)

        took_s = ctl.kill_leader()
        if standby:
            print(f"\ntakeover: {took_s:.2f} s from SIGKILL to the standby leading with 2 drones linked")
            assert ctl.took["epoch"] == 2, ctl.took
            assert took_s < TAKEOVER_BOUND_S, (took_s, ctl.log())
        else:
            print(f"\nrestart: {took_s:.2f} s from SIGKILL to the same serve leading again, 2 drones linked")

        with ctl.client() as client:
            # The new leader writes: a package submitted to it now is taken (and flies on the other drone).
            lat, lon = at(0, 1000)
            again = client.post(
                "/v1/packages", json={"key": "after", "weight": 1.0, "dest_lat": lat, "dest_lon": lon}
            )
            assert again.status_code == 201, again.text
            ids = [pid, again.json()["id"]]
            final = wait_until(client, ids, lambda s: all(p["state"] in TERMINAL for p in s.values()), 120)
            states = [e["to_state"] for e in final[pid]["history"]]
            assert final[pid]["state"] == "delivered", (states, ctl.log())
            assert states.count("delivered") == 1 and states.count("launching") == 1, states
            assert "failed" not in states, states
            assert final[ids[1]]["state"] == "delivered", final[ids[1]]["history"]
    accounting(store_url, ["flying", "after"]).check()
