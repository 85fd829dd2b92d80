"""DO commands shared by COMMAND_LONG/INT and the mission (ArduCopter/mode_auto.cpp do_* and
ArduCopter/GCS_MAVLink_Copter.cpp handle_command_*): gripper, winch, speed, fence, home."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import telemetry

if TYPE_CHECKING:
    from sitl.copter.vehicle import SimCopter

Params = tuple[float, float, float, float, float, float, float]


def gripper(v: SimCopter, action: float) -> int:
    """DO_GRIPPER: param2 0 = release, 1 = grab (AP_Gripper); FAILED when no gripper is configured."""
    if v.params["GRIP_ENABLE"] == 0:
        return mavlink.MAV_RESULT_FAILED
    if int(action) == mavlink.GRIPPER_ACTION_RELEASE:
        v.release_payload()
    elif int(action) != mavlink.GRIPPER_ACTION_GRAB:
        return mavlink.MAV_RESULT_FAILED
    return mavlink.MAV_RESULT_ACCEPTED


def winch(v: SimCopter, action: float, length: float, rate: float) -> int:
    """DO_WINCH: 0 relax, 1 relative length (param3 m, param4 m/s), 2 rate control (AP_Winch.cpp)."""
    if v.params["WINCH_TYPE"] == 0:
        return mavlink.MAV_RESULT_FAILED
    line_max = v.params["WINCH_LEN_MAX"]
    act = int(action)
    if act == mavlink.WINCH_RELAXED:
        v.winch_target_m = v.winch_line_m
    elif act == mavlink.WINCH_RELATIVE_LENGTH_CONTROL:
        v.winch_target_m = min(max(v.winch_line_m + length, 0.0), line_max)
        v.winch_rate_mps = min(abs(rate), v.params["WINCH_RATE_MAX"]) if rate else 0.0
    elif act == mavlink.WINCH_RATE_CONTROL:
        v.winch_target_m = line_max if rate > 0 else 0.0
        v.winch_rate_mps = min(abs(rate), v.params["WINCH_RATE_MAX"])
    else:
        return mavlink.MAV_RESULT_FAILED
    return mavlink.MAV_RESULT_ACCEPTED


def run_do_command(v: SimCopter, command: int, p: Params, item: Any = None) -> int:
    """Execute a DO command; MAV_RESULT. Unknown DO commands in a mission are skipped (ACCEPTED)."""
    if command == mavlink.MAV_CMD_DO_GRIPPER:
        return gripper(v, p[1])
    if command == mavlink.MAV_CMD_DO_WINCH:
        return winch(v, p[1], p[2], p[3])
    if command == mavlink.MAV_CMD_DO_CHANGE_SPEED:
        if p[1] > 0:
            v.nav.speed_override = p[1]
        return mavlink.MAV_RESULT_ACCEPTED
    if command == mavlink.MAV_CMD_DO_FENCE_ENABLE:
        # param1: 0 disable, 1 enable, 2 disable floor only (AC_Fence); the param follows
        if int(p[0]) in (0, 1):
            v.params.set("FENCE_ENABLE", int(p[0]))
        return mavlink.MAV_RESULT_ACCEPTED
    if command == mavlink.MAV_CMD_DO_SET_HOME:
        if int(p[0]) == 1:
            v.set_home_here()
        else:
            v.home = (p[4], p[5], p[6], v.home[3])
            v.emit(telemetry.home_position(v))
        return mavlink.MAV_RESULT_ACCEPTED
    return mavlink.MAV_RESULT_ACCEPTED
