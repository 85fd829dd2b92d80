"""COMMAND_LONG / COMMAND_INT handling with COMMAND_ACK, as GCS_MAVLINK::handle_command_int_packet and
ArduCopter/GCS_MAVLink_Copter.cpp answer them (ACCEPTED, FAILED, DENIED, UNSUPPORTED)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import commands_do, telemetry
from sitl.copter.modes import Mode

if TYPE_CHECKING:
    from sitl.copter.vehicle import SimCopter

M = mavlink
ACCEPTED, FAILED, DENIED, UNSUPPORTED = (
    M.MAV_RESULT_ACCEPTED, M.MAV_RESULT_FAILED, M.MAV_RESULT_DENIED, M.MAV_RESULT_UNSUPPORTED,
)  # fmt: skip
FORCE_MAGIC = 21196  # AP_Arming: param2 21196 forces arm/disarm


class Channel(Protocol):
    """The link a command came in on (for SET_MESSAGE_INTERVAL / REQUEST_MESSAGE)."""

    def send(self, msg: mavlink.MAVLink_message) -> None: ...
    def set_interval(self, msgid: int, interval_us: float) -> bool: ...
    def request(self, msgid: int) -> None: ...


def _params_of(msg: mavlink.MAVLink_message) -> tuple[float, float, float, float, float, float, float]:
    if msg.get_type() == "COMMAND_INT":
        return (msg.param1, msg.param2, msg.param3, msg.param4, msg.x / 1e7, msg.y / 1e7, msg.z)
    return (msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7)


def handle(v: SimCopter, link: Channel, msg: mavlink.MAVLink_message) -> int:
    """Run one command; returns the MAV_RESULT (the caller sends COMMAND_ACK)."""
    p = _params_of(msg)
    cmd = msg.command
    if cmd == M.MAV_CMD_COMPONENT_ARM_DISARM:
        force = int(p[1]) == FORCE_MAGIC
        if int(p[0]) == 1:
            return ACCEPTED if v.arm(force=force) else FAILED
        if int(p[0]) == 0:
            return ACCEPTED if v.disarm(force=force) else FAILED
        return UNSUPPORTED
    if cmd == M.MAV_CMD_DO_SET_MODE:
        if not int(p[0]) & M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
            return UNSUPPORTED
        return ACCEPTED if v.set_mode(int(p[1])) else FAILED
    if cmd == M.MAV_CMD_NAV_TAKEOFF:
        return ACCEPTED if v.nav.start_takeoff(p[6]) else FAILED
    if cmd == M.MAV_CMD_MISSION_START:
        # GCS_MAVLINK_Copter::handle_MAV_CMD_MISSION_START: first/last item unsupported (DENIED); AUTO,
        # auto_armed, start or resume unless the mission already runs
        if p[0] or p[1]:
            return DENIED
        if not v.set_mode(Mode.AUTO):
            return FAILED
        if not v.nav.auto.running:
            v.nav.auto.start()
        return ACCEPTED
    if cmd == M.MAV_CMD_NAV_RETURN_TO_LAUNCH:
        return ACCEPTED if v.set_mode(Mode.RTL) else FAILED
    if cmd == M.MAV_CMD_NAV_LAND:
        return ACCEPTED if v.set_mode(Mode.LAND) else FAILED
    if cmd == M.MAV_CMD_DO_SET_MISSION_CURRENT:
        return ACCEPTED if v.nav.auto.set_current(int(p[0])) else FAILED
    if cmd == M.MAV_CMD_DO_REPOSITION:
        if not v.nav.set_guided_target(p[4], p[5], p[6]):
            return FAILED
        if p[0] > 0:
            v.nav.speed_override = p[0]
        return ACCEPTED
    if cmd in (M.MAV_CMD_DO_GRIPPER, M.MAV_CMD_DO_WINCH, M.MAV_CMD_DO_CHANGE_SPEED,
               M.MAV_CMD_DO_FENCE_ENABLE, M.MAV_CMD_DO_SET_HOME):  # fmt: skip
        return commands_do.run_do_command(v, cmd, p)
    if cmd == M.MAV_CMD_SET_MESSAGE_INTERVAL:
        return ACCEPTED if link.set_interval(int(p[0]), p[1]) else FAILED
    if cmd == M.MAV_CMD_REQUEST_MESSAGE:
        # GCS_MAVLINK::handle_command_request_message: FAILED only for a message it has no ap_message
        # for; otherwise ACCEPTED and queued, and a message with nothing to say (HOME_POSITION before
        # home) is then simply not sent
        if int(p[0]) not in telemetry.BUILDERS:
            return FAILED
        link.request(int(p[0]))
        return ACCEPTED
    if cmd == M.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES:
        link.send(telemetry.autopilot_version(v))
        return ACCEPTED
    if cmd == M.MAV_CMD_GET_HOME_POSITION:
        home = telemetry.home_position(v)
        if home is None:
            return FAILED  # GCS_MAVLINK::handle_command_get_home_position: !ahrs.home_is_set()
        link.send(home)
        return ACCEPTED
    if cmd == M.MAV_CMD_RUN_PREARM_CHECKS:
        # GCS_MAVLINK::handle_command_run_prearm_checks: failures reported as "PreArm: ..."
        if v.armed:
            return M.MAV_RESULT_TEMPORARILY_REJECTED
        v.run_prearm_checks()
        return ACCEPTED
    return UNSUPPORTED
