"""SIGKILL of the leading `lastmile serve` while a drone is being prepared for its flight: the package is
`launching` (parameters, fence, mission upload, arming), the drone still disarmed on its pad. With a hot
standby (PostgreSQL) the standby takes over; without one the same serve is started again (SQLite). Either
way the next controller finds the drone disarmed at its mission's first item, puts the package back in the
queue as `not launched` (no attempt spent: no `failed` in its history) and it is delivered later, exactly
once; the test ends with the fault suite's accounting (tests/faults/accounting.py).

The window is made wide enough to hit every time, not raced: before the package is submitted both copters
get BATT_ARM_VOLT above their battery's voltage from a ground-station link of the test's own (what a
technician at the pad might do), so their pre-arm checks fail ("Battery 1 below minimum arming voltage")
and the controller's arming retries keep the package `launching` for `booted_grace_s` (5 s) after the
uploads. The test kills the leader at the first poll (every 20 ms) that sees `launching`, checks that
neither drone armed, and sets BATT_ARM_VOLT back to 0 while no controller leads, so the next attempt flies.
The kill lands anywhere from the safety parameters to the arming retries (the uploads take milliseconds
on local sockets); what the next controller must do is the same for all of them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.serving import TERMINAL, at, wait_until
from tests.faults.serving import (
    STANDBY_OR_RESTART,
    Controllers,
    accounting,
    copter_armed,
    poll,
    set_copter_params,
    store_url_for,
    write_station,
)

NOT_ARMABLE = {"BATT_ARM_VOLT": 100.0}  # volts: no battery of the simulated copters reaches it
ARMABLE = {"BATT_ARM_VOLT": 0.0}  # ArduCopter's default: no arming-voltage check


@pytest.mark.slow
@pytest.mark.parametrize("standby", STANDBY_OR_RESTART)
def test_sigkill_of_the_leader_during_mission_upload_costs_no_attempt_and_delivers_once(
    tmp_path: Path, request: pytest.FixtureRequest, served_copters: int, standby: bool
) -> None:
    store_url = store_url_for(request, tmp_path, standby)
    station = write_station(tmp_path, store_url, copters=served_copters)
    copters = [(served_copters, 1), (served_copters + 10, 2)]  # SERIAL0 port, MAV_SYSID
    with Controllers(station, standby=standby, vehicles=2) as ctl:
        for port, sysid in copters:
            set_copter_params(port, sysid, NOT_ARMABLE)
        with ctl.client() as client:
            lat, lon = at(1500, 0)
            parcel = {"key": "upload", "weight": 1.0, "dest_lat": lat, "dest_lon": lon}
            r = client.post("/v1/packages", json=parcel)
            assert r.status_code == 201 and r.json()["decision"]["decision"] == "drone", r.text
            pid = r.json()["id"]
            state = lambda: client.get(f"/v1/packages/{pid}").json()["state"]  # noqa: E731
            poll(lambda: state() == "launching", 20, every_s=0.02, what="the package launching")

        def on_the_pads_and_armable() -> None:
            armed = [sysid for port, sysid in copters if copter_armed(port, sysid)]
            assert not armed, f"copter {armed} armed before the kill: too late for this test"
            for port, sysid in copters:
                set_copter_params(port, sysid, ARMABLE)

        took_s = ctl.kill_leader(meanwhile=on_the_pads_and_armable)
        killed = time.monotonic() - took_s
        with ctl.client() as client:
            final = wait_until(client, [pid], lambda s: s[pid]["state"] in TERMINAL, 60)[pid]
            print(f"\nkilled launching: a controller led {took_s:.2f} s after the kill, the parcel was "
                  f"delivered {time.monotonic() - killed:.1f} s after it")  # fmt: skip
            states = [e["to_state"] for e in final["history"]]
            reasons = [e["reason"] for e in final["history"]]
            assert final["state"] == "delivered", (states, ctl.log())
            assert "failed" not in states, list(zip(states, reasons, strict=True))  # no attempt spent
            assert states.count("launching") == 2 and states.count("delivered") == 1, states
            back = states.index("received", states.index("launching"))  # put back, not launched
            assert reasons[back].startswith("not launched"), list(zip(states, reasons, strict=True))
    accounting(store_url, ["upload"]).check()
