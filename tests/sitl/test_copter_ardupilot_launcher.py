"""The ArduPilot SITL launcher: its command line, defaults, the target choice, and runs against a stand-in.

The stand-in (`fake_arducopter.py`) takes the command line as ArduPilot 4.7's SITL_cmdline.cpp does, so
these runs check the launcher's handling of ports, the ready line and the parameter read-back; the same
launcher flies the real binary in the `ardupilot` tests when `ARDUPILOT_SITL` is set.
"""

from __future__ import annotations

import socket
import stat
import sys
from pathlib import Path

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.ardupilot import (
    AIRFRAME_PARAMS,
    READY_LINE,
    ArduPilotSitl,
    SitlError,
    airframe_params,
    ardupilot_defaults,
    copter_target,
    open_copters,
    parse_defaults,
    sitl_command,
)
from sitl.copter import SimCopterFleet

from .conftest import CopterClient

FAKE = Path(__file__).with_name("fake_arducopter.py")


def fake_binary(tmp_path: Path, *extra: str) -> Path:
    binary = tmp_path / "arducopter"
    binary.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@" {" ".join(extra)}\n')
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return binary


def test_command_line_gives_every_instance_its_own_base_port():
    cmd = sitl_command(
        "/opt/ardupilot/arducopter", 2, home=(33.4484, -112.259, 300.0, 90.0), speedup=10,
        defaults=[Path("/a/copter.parm"), Path("/b/ours.parm")], base_port=6000,
    )  # fmt: skip
    assert cmd == [
        "/opt/ardupilot/arducopter", "-S", "--model", "quad", "--home", "33.4484,-112.259,300,90",
        "--defaults", "/a/copter.parm,/b/ours.parm", "--speedup", "10", "--sysid", "3", "-I", "2",
        "--base-port", "6020", "--serial1", "tcp:2", "--serial2", "none", "-w",
    ]  # fmt: skip


def test_ready_line_is_serial0_only_in_both_spellings():
    assert READY_LINE.search("SERIAL0 on TCP port 5760").group(1) == "5760"  # 4.5+
    assert READY_LINE.search("Serial port 0 on TCP port 5770").group(1) == "5770"  # 4.4
    assert READY_LINE.search("SERIAL1 on TCP port 5762") is None
    assert READY_LINE.search("SERIAL2 on TCP port 5763") is None
    assert READY_LINE.search("bind port 5760 for SERIAL0") is None


def test_airframe_layer_configures_release_devices_and_never_the_command_line_params():
    values = airframe_params({"RTL_ALT": 2500, "SIM_PAYLOAD_KG": 1.0})
    assert values["RTL_ALT"] == 2500 and "SIM_PAYLOAD_KG" not in values
    assert values["WINCH_TYPE"] == 1 and values["SERVO10_FUNCTION"] == 88  # PWM winch with its output
    assert values["GRIP_TYPE"] == 1 and values["SERVO9_FUNCTION"] == 28  # servo gripper with its output
    assert "SIM_BATT_VOLTAGE" not in values  # the frame model's own pack voltage stays
    for name in ("SIM_SPEEDUP", "MAV_SYSID", "SYSID_THISMAV"):
        with pytest.raises(SitlError, match=name):
            airframe_params({name: 1})


def test_copter_parm_is_found_in_the_binarys_tree_or_named(tmp_path: Path):
    tree = tmp_path / "ardupilot"
    parm = tree / "Tools/autotest/default_params/copter.parm"
    parm.parent.mkdir(parents=True)
    parm.write_text("FRAME_CLASS 1\nFRAME_TYPE\t0\n# comment\n")
    binary = tree / "build/sitl/bin/arducopter"
    binary.parent.mkdir(parents=True)
    binary.write_text("")
    assert ardupilot_defaults(binary, {}) == [parm]
    assert parse_defaults(parm.read_text()) == {"FRAME_CLASS": 1.0, "FRAME_TYPE": 0.0}
    other = tmp_path / "mine.parm"
    other.write_text("FRAME_CLASS 2\n")
    assert ardupilot_defaults(binary, {"ARDUPILOT_SITL_DEFAULTS": str(other)}) == [other]
    with pytest.raises(SitlError, match="no such file"):
        ardupilot_defaults(binary, {"ARDUPILOT_SITL_DEFAULTS": str(tmp_path / "nope.parm")})
    with pytest.raises(SitlError, match="ARDUPILOT_SITL_DEFAULTS"):
        ardupilot_defaults(tmp_path / "elsewhere/arducopter", {})


def test_target_selection_says_which_target_and_never_falls_back_silently(tmp_path: Path):
    builtin = copter_target({})
    assert builtin.kind == "sitl.copter" and "built-in" in builtin.describe()
    with pytest.raises(SitlError, match="not an executable"):
        copter_target({"ARDUPILOT_SITL": str(tmp_path / "missing")})
    binary = fake_binary(tmp_path)
    real = copter_target({"ARDUPILOT_SITL": str(binary)})
    assert real.kind == "ardupilot" and str(binary) in real.describe()
    assert isinstance(open_copters(1, target=builtin), SimCopterFleet)
    assert isinstance(open_copters(1, target=real), ArduPilotSitl)


def free_base_port(count: int) -> int:
    """A port P with P, P + 10, ... free right now (the launcher keeps ArduPilot's spacing)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 10 * count > 65535 or base == 5760:
            continue
        socks = [socket.socket() for _ in range(count)]
        try:
            for i, sock in enumerate(socks):
                sock.bind(("127.0.0.1", base + 10 * i))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free port run")


async def test_three_instances_on_a_non_default_base_port_each_speak_mavlink(tmp_path: Path):
    base = free_base_port(3)
    sitl = ArduPilotSitl(fake_binary(tmp_path), 3, speedup=5, base_port=base, params={"RTL_ALT": 2500},
                         defaults=[])  # fmt: skip
    async with sitl:
        assert sitl.urls() == [f"tcp:127.0.0.1:{base + 10 * i}" for i in range(3)]
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


async def test_the_old_ready_line_is_understood(tmp_path: Path):
    base = free_base_port(1)
    async with ArduPilotSitl(
        fake_binary(tmp_path, "--old-ready-line"), 1, base_port=base, defaults=[]
    ) as sitl:
        assert any("Serial port 0 on TCP port" in line for line in sitl.output[0])


async def test_a_parameter_the_vehicle_does_not_know_is_an_error_naming_it(tmp_path: Path):
    with pytest.raises(SitlError, match="does not know WINCH_TURBO"):
        async with ArduPilotSitl(
            fake_binary(tmp_path), 1, base_port=free_base_port(1), params={"WINCH_TURBO": 1}, defaults=[]
        ):
            pass


async def test_a_defaults_file_that_would_override_the_speedup_is_refused(tmp_path: Path):
    theirs = tmp_path / "theirs.parm"
    theirs.write_text("FRAME_CLASS 1\nSIM_SPEEDUP 1\n")
    with pytest.raises(SitlError, match="SIM_SPEEDUP"):
        async with ArduPilotSitl(fake_binary(tmp_path), 1, base_port=free_base_port(1), defaults=[theirs]):
            pass


def test_airframe_names_are_known_to_the_built_in_simulator():
    from sitl.copter.params import DEFAULTS

    assert set(AIRFRAME_PARAMS) <= set(DEFAULTS)
