"""Independent ground-station software accepts the simulator: pymavlink's mavutil + mavwp mission
loader, dronekit2 (connect(wait_ready=True) + simple_takeoff) and MAVProxy (`wp load`).

The blocking clients run in threads (`asyncio.to_thread`) or a subprocess so the simulator's event loop
keeps running; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from pymavlink import mavutil, mavwp

from sitl.copter import SimCopterFleet, geo

HOME = (33.4484, -112.2590)


def write_wpl(path: Path, n_wp: int = 4) -> int:
    """A QGC WPL 110 mission file (the format MAVProxy and mavwp read); returns its item count."""
    lines = ["QGC WPL 110", f"0\t1\t0\t16\t0\t0\t0\t0\t{HOME[0]:.7f}\t{HOME[1]:.7f}\t300\t1"]
    lines.append("1\t0\t3\t22\t0\t0\t0\t0\t0\t0\t25\t1")
    for i in range(n_wp):
        lat, lon = geo.offset(*HOME, 100.0 * (i + 1), 50.0 * i)
        lines.append(f"{i + 2}\t0\t3\t16\t0\t0\t0\t0\t{lat:.7f}\t{lon:.7f}\t{30 + i}\t1")
    lines.append(f"{n_wp + 2}\t0\t3\t20\t0\t0\t0\t0\t0\t0\t0\t1")
    path.write_text("\n".join(lines) + "\n")
    return n_wp + 3


def mavutil_upload(url: str, path: Path) -> tuple[int, int]:
    """The upload loop of pymavlink's documentation: mavwp loader, waypoint_count_send, answer requests."""
    master = mavutil.mavlink_connection(url, source_system=255)
    try:
        master.wait_heartbeat(timeout=10)
        loader = mavwp.MAVWPLoader(
            target_system=master.target_system, target_component=master.target_component
        )
        loader.load(str(path))
        master.waypoint_clear_all_send()
        if master.recv_match(type="MISSION_ACK", blocking=True, timeout=10) is None:
            raise TimeoutError("no MISSION_ACK for MISSION_CLEAR_ALL")
        master.waypoint_count_send(loader.count())
        while True:
            msg = master.recv_match(
                type=["MISSION_REQUEST", "MISSION_REQUEST_INT", "MISSION_ACK"], blocking=True, timeout=10
            )
            if msg is None:
                raise TimeoutError("no MISSION_REQUEST/ACK from the vehicle")
            if msg.get_type() == "MISSION_ACK":
                return msg.type, loader.count()
            master.mav.send(loader.wp(msg.seq))
    finally:
        master.close()


async def test_pymavlink_mavutil_mission_loader(tmp_path: Path):
    path = tmp_path / "mission.txt"
    count = write_wpl(path)
    async with SimCopterFleet(1, base_port=0, speedup=10, boot_s=0) as fleet:
        result, sent = await asyncio.wait_for(asyncio.to_thread(mavutil_upload, fleet.urls()[0], path), 30)
        assert result == mavutil.mavlink.MAV_MISSION_ACCEPTED and sent == count
        stored = fleet.vehicles[0].missions.mission
        assert len(stored) == count
        assert [i.command for i in stored[1:]] == [22, 16, 16, 16, 16, 20]
        assert stored[3].z == 31


def dronekit_takeoff(url: str, alt: float) -> tuple[str, float]:
    from dronekit import VehicleMode, connect

    vehicle = connect(url, wait_ready=True, timeout=30, heartbeat_timeout=30)
    try:
        # dronekit's own "waiting for vehicle to initialise" loop: is_armable needs a GPS fix and the EKF's
        # predicted absolute position, which a copter still booting does not have yet
        for _ in range(600):
            if vehicle.is_armable:
                break
            time.sleep(0.05)
        assert vehicle.is_armable
        vehicle.mode = VehicleMode("GUIDED")
        vehicle.armed = True
        # dronekit's own idiom: poll its attributes (this runs in a worker thread, not on the loop)
        for _ in range(300):
            if vehicle.armed and vehicle.mode.name == "GUIDED":
                break
            time.sleep(0.05)
        vehicle.simple_takeoff(alt)
        for _ in range(600):
            if vehicle.location.global_relative_frame.alt >= alt * 0.95:
                break
            time.sleep(0.05)
        return vehicle.mode.name, vehicle.location.global_relative_frame.alt
    finally:
        vehicle.close()


async def test_dronekit2_connects_waits_ready_and_takes_off():
    async with SimCopterFleet(1, base_port=0, speedup=10) as fleet:  # booting, as when switched on
        copter = fleet.vehicles[0]
        mode, alt = await asyncio.wait_for(asyncio.to_thread(dronekit_takeoff, fleet.urls()[0], 20.0), 60)
        assert mode == "GUIDED"
        assert alt >= 19.0
        assert copter.armed and copter.alt_m >= 19.0


@pytest.mark.skipif(
    shutil.which("mavproxy.py", path=str(Path(sys.executable).parent)) is None, reason="no MAVProxy"
)
async def test_mavproxy_wp_load(tmp_path: Path):
    path = tmp_path / "mission.txt"
    count = write_wpl(path, n_wp=3)
    mavproxy = str(Path(sys.executable).parent / "mavproxy.py")
    async with SimCopterFleet(1, base_port=0, speedup=10, boot_s=0) as fleet:
        copter = fleet.vehicles[0]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, mavproxy, f"--master={fleet.urls()[0]}", "--non-interactive",
            "--no-state",
            # name the target so `wp load` fills the loader of vehicle 1 before it is first heard from
            "--target-system=1", "--target-component=1", "--default-modules=wp,param,cmdlong,mode",
            f"--cmd=wp load {path}",
            cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env={**os.environ, "MAVLINK20": "1"},
        )  # fmt: skip
        lines: list[bytes] = []
        try:
            async with asyncio.timeout(30):  # read MAVProxy's console until it reports the vehicle's ACK
                assert proc.stdout is not None
                while not lines or b"Got MISSION_ACK" not in lines[-1]:
                    line = await proc.stdout.readline()
                    if not line:
                        break
                    lines.append(line)
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.communicate(), 10)
            except TimeoutError:
                proc.kill()
                await proc.communicate()
        out = b"".join(lines)
        assert b"Got MISSION_ACK: TYPE_MISSION: ACCEPTED" in out, out.decode(errors="replace")[-2000:]
        assert len(copter.missions.mission) == count
        assert [i.command for i in copter.missions.mission[1:]] == [22, 16, 16, 16, 20]
