"""The ArduPilot SITL launcher: its command line, the target choice, and a run against a stand-in binary."""

from __future__ import annotations

import socket
import stat
import sys
from pathlib import Path

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.ardupilot import ArduPilotSitl, SitlError, copter_target, defaults_text, open_copters, sitl_command
from sitl.copter import SimCopterFleet

from .conftest import CopterClient

FAKE = Path(__file__).with_name("fake_arducopter.py")


def test_command_line_is_what_sim_vehicle_would_run():
    cmd = sitl_command(
        "/opt/ardupilot/arducopter", 2, home=(33.4484, -112.259, 300.0, 90.0), speedup=10,
        defaults=[Path("/a/copter.parm"), Path("/b/ours.parm")], base_port=5760,
    )  # fmt: skip
    assert cmd == [
        "/opt/ardupilot/arducopter", "-S", "--model", "quad", "--home", "33.4484,-112.259,300,90",
        "--defaults", "/a/copter.parm,/b/ours.parm", "--base-port", "5760", "-I", "2", "--speedup", "10",
        "--sysid", "3", "-w",
    ]  # fmt: skip


def test_defaults_file_carries_our_airframe_in_ardupilot_names_only():
    text = defaults_text({"RTL_ALT": 2500, "SIM_PAYLOAD_KG": 1.0})
    lines = dict(line.split() for line in text.splitlines())
    assert lines["WPNAV_SPEED"] == "2200" and lines["RTL_ALT"] == "2500"
    assert "SIM_PAYLOAD_KG" not in lines and "SYSID_THISMAV" not in lines


def test_target_selection_says_which_target_and_never_falls_back_silently(tmp_path: Path):
    builtin = copter_target({})
    assert builtin.kind == "sitl.copter" and "built-in" in builtin.describe()
    with pytest.raises(SitlError, match="not an executable"):
        copter_target({"ARDUPILOT_SITL": str(tmp_path / "missing")})
    binary = tmp_path / "arducopter"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    real = copter_target({"ARDUPILOT_SITL": str(binary)})
    assert real.kind == "ardupilot" and str(binary) in real.describe()
    assert isinstance(open_copters(1, target=builtin), SimCopterFleet)
    assert isinstance(open_copters(1, target=real), ArduPilotSitl)


def free_base_port() -> int:
    """A port P with P and P + 10 free right now (the launcher needs ArduPilot's fixed spacing)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 10 > 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", base))
                b.bind(("127.0.0.1", base + 10))
            return base
        except OSError:
            continue
    raise RuntimeError("no free port pair")


async def test_launcher_starts_instances_that_speak_mavlink(tmp_path: Path):
    binary = tmp_path / "arducopter"
    binary.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    base = free_base_port()
    async with ArduPilotSitl(binary, 2, speedup=5, base_port=base, params={"RTL_ALT": 2500}) as sitl:
        assert sitl.urls() == [f"tcp:127.0.0.1:{base}", f"tcp:127.0.0.1:{base + 10}"]
        for i, port in enumerate(sitl.tcp_ports):
            client = await CopterClient.connect(port)
            try:
                hb = await client.expect("HEARTBEAT", timeout=10)
                assert hb.get_srcSystem() == i + 1 and hb.autopilot == mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA
                client.mav.param_request_read_send(i + 1, 1, b"RTL_ALT", -1)
                value = await client.expect("PARAM_VALUE", lambda m: m.param_id == "RTL_ALT", timeout=10)
                assert value.param_value == 2500  # the --defaults file reached the instance
            finally:
                await client.close()
        procs = list(sitl.procs)
    assert all(p.returncode is not None for p in procs)
