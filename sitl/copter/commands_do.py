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
    """DO_GRIPPER (GCS_MAVLINK::handle_command_do_gripper, AP_Mission::start_command_do_gripper): param2 0
    release, 1 grab; FAILED without GRIP_ENABLE or for another action (`release.py` for the rest)."""
    if not v.gripper.enabled:
        return mavlink.MAV_RESULT_FAILED
    if int(action) == mavlink.GRIPPER_ACTION_RELEASE:
        v.gripper.release()
    elif int(action) == mavlink.GRIPPER_ACTION_GRAB:
        v.gripper.grab()
    else:
        return mavlink.MAV_RESULT_FAILED
    return mavlink.MAV_RESULT_ACCEPTED


def winch(v: SimCopter, action: float, length: float, rate: float) -> int:
    """DO_WINCH (GCS_MAVLINK_Copter::handle_MAV_CMD_DO_WINCH, ModeAuto::do_winch): 0 relax, 1 relative
    length (param3 m), 2 rate control (param4 m/s); FAILED without a winch (`release.py` for the rest)."""
    w = v.winch
    if not w.enabled():
        return mavlink.MAV_RESULT_FAILED
    act = int(action)
    if act == mavlink.WINCH_RELAXED:
        w.relax()
    elif act == mavlink.WINCH_RELATIVE_LENGTH_CONTROL:
        w.release_length(length)
    elif act == mavlink.WINCH_RATE_CONTROL:
        w.set_desired_rate(rate)
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
        if not v.boot.origin_set:
            return mavlink.MAV_RESULT_FAILED  # Copter::set_home: no EKF origin yet
        if int(p[0]) == 1:
            v.set_home_here()
        else:
            v.home = (p[4], p[5], p[6], v.home[3])
            v.home_set = True
            v.emit(telemetry.home_position(v))
        return mavlink.MAV_RESULT_ACCEPTED
    return mavlink.MAV_RESULT_ACCEPTED
