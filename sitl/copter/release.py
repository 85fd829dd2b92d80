"""The release devices: a servo gripper and a PWM winch, as ArduPilot drives them.

Gripper (libraries/AP_Gripper): GRIP_ENABLE gates everything (AP_Gripper::enabled; DO_GRIPPER is FAILED
without it, GCS_Common.cpp handle_command_do_gripper). GRIP_TYPE 1 is a servo (AP_Gripper_Servo); a
servo gripper moves an output whose SERVOn_FUNCTION is 28 (SRV_Channel::k_gripper):
- release(): "Gripper load releasing" at once, "Gripper load released" once the servo has had
  SERVO_ACTUATION_TIME (500 ms) to move (AP_Gripper_Servo::update_gripper); a release while released
  only repeats "Gripper load released"; grab() likewise with "grabbing" / "grabbed" (all MAV_SEVERITY_INFO,
  AP_Gripper_Servo.cpp). The package falls when the servo has opened.
- Without an output for function 28 the servo never reaches the release position (has_state_pwm finds no
  channel): the gripper says "Gripper load releasing" and nothing more, the package stays on, and
  AP_Gripper_Servo::valid() is false, so NAV_PAYLOAD_PLACE skips the release.
- GRIP_TYPE 0 (none) or 2 (EPM, not simulated here) has no servo backend: DO_GRIPPER is accepted and
  nothing happens.
Winch (libraries/AP_Winch): WINCH_TYPE 0 none, 1 PWM, 2 Daiwa. A PWM winch (AP_Winch_PWM) drives an output
whose SERVOn_FUNCTION is 88 (k_winch) and is healthy only if one exists; a Daiwa winch is healthy only
while its serial telemetry arrives, which it never does here. An unhealthy winch fails the pre-arm check
"winch unhealthy" (AP_Winch::pre_arm_check via AP_Arming_Copter::winch_checks) and does not move
(AP_Winch_PWM::update returns without an output). DO_WINCH is FAILED when WINCH_TYPE is 0 (no backend,
GCS_MAVLINK_Copter::handle_MAV_CMD_DO_WINCH). Relative length control (action 1) sets the wanted length
and closes on it at WINCH_POS_P * error, at most WINCH_RATE_MAX (AP_Winch_PWM::control_winch; the command's
rate is not used), announcing "Winch: lowering 16.0m to 16.0m" while WINCH_OPTIONS has its verbose bit 1
(AP_Winch::release_length); rate control (action 2) pays out or reels in at the given rate, bounded by
WINCH_RATE_MAX. The line stops at 0 and at WINCH_LEN_MAX (our airframe's line; ArduPilot has no such
limit). Like ArduPilot, the backend follows the parameters it was booted with only in spirit: here a
parameter change takes effect at once, where ArduPilot needs a reboot for GRIP_TYPE, WINCH_TYPE and
SERVOn_FUNCTION.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter.params import SERVO_GRIPPER, SERVO_OUTPUTS, SERVO_WINCH

if TYPE_CHECKING:
    from sitl.copter.vehicle import SimCopter

SERVO_ACTUATION_S = 0.5  # AP_Gripper_Servo.h SERVO_ACTUATION_TIME 500 ms
GRIP_SERVO = 1
WINCH_PWM, WINCH_DAIWA = 1, 2
WINCH_VERBOSE = 1 << 1  # AP_Winch::Options::VerboseOutput
INFO = mavlink.MAV_SEVERITY_INFO


def output_assigned(v: SimCopter, function: int) -> bool:
    """SRV_Channels::function_assigned: some SERVOn_FUNCTION has this value."""
    return any(int(v.params[f"SERVO{n}_FUNCTION"]) == function for n in range(1, SERVO_OUTPUTS + 1))


class GripperState(Enum):
    """AP_Gripper::gripper_state."""

    NEUTRAL = 0
    GRABBING = 1
    RELEASING = 2
    GRABBED = 3
    RELEASED = 4


class Gripper:
    """AP_Gripper with the servo backend."""

    def __init__(self, v: SimCopter) -> None:
        self.v = v
        self.state = GripperState.NEUTRAL  # the servo's neutral position at boot (init_gripper)
        self._moved_at = 0.0

    @property
    def enabled(self) -> bool:
        return self.v.params["GRIP_ENABLE"] != 0

    def _servo(self) -> bool:
        return self.enabled and int(self.v.params["GRIP_TYPE"]) == GRIP_SERVO

    def valid(self) -> bool:
        """AP_Gripper::valid -> AP_Gripper_Servo::valid: enabled, a servo, and an output for it."""
        return self._servo() and output_assigned(self.v, SERVO_GRIPPER)

    def released(self) -> bool:
        return self._servo() and self.state == GripperState.RELEASED

    def release(self) -> None:
        """AP_Gripper_Servo::release."""
        self._move(GripperState.RELEASING, GripperState.RELEASED, "releasing", "released")

    def grab(self) -> None:
        """AP_Gripper_Servo::grab."""
        self._move(GripperState.GRABBING, GripperState.GRABBED, "grabbing", "grabbed")

    def _move(self, moving: GripperState, done: GripperState, doing: str, did: str) -> None:
        if not self._servo() or self.state == moving:
            return
        if self.state == done:
            self.v.send_text(f"Gripper load {did}", INFO)
            return
        self.state = moving
        self._moved_at = self.v.time_s
        self.v.send_text(f"Gripper load {doing}", INFO)

    def step(self) -> None:
        """AP_Gripper_Servo::update_gripper: the servo reached its position after SERVO_ACTUATION_TIME."""
        if self.state not in (GripperState.GRABBING, GripperState.RELEASING):
            return
        if not output_assigned(self.v, SERVO_GRIPPER):
            return  # has_state_pwm: no channel carries the gripper, it never gets there
        if self.v.time_s - self._moved_at + 1e-9 < SERVO_ACTUATION_S:
            return
        if self.state == GripperState.RELEASING:
            self.state = GripperState.RELEASED
            self.v.send_text("Gripper load released", INFO)
            self.v.drop_payload()
        else:
            self.state = GripperState.GRABBED
            self.v.send_text("Gripper load grabbed", INFO)


class Winch:
    """AP_Winch with the PWM backend (line length estimated from the commanded rate, as AP_Winch_PWM does)."""

    def __init__(self, v: SimCopter) -> None:
        self.v = v
        self.line_m = 0.0
        # AP_Winch::ControlMode RELAXED / RATE / POSITION; AP_Winch::init relaxes it when WINCH_OPTIONS has
        # bit 0 "spin freely on startup" (the default 7 has), else holds it at rate 0
        self.mode = "relaxed" if int(v.params["WINCH_OPTIONS"]) & 1 else "rate"
        self.length_desired = 0.0
        self.rate_desired = 0.0

    @property
    def type(self) -> int:
        return int(self.v.params["WINCH_TYPE"])

    def enabled(self) -> bool:
        """AP_Winch::enabled: a type with a backend (PWM or Daiwa)."""
        return self.type in (WINCH_PWM, WINCH_DAIWA)

    def healthy(self) -> bool:
        """AP_Winch_PWM::healthy: an output carries the winch; a Daiwa winch never reports here."""
        return self.type == WINCH_PWM and output_assigned(self.v, SERVO_WINCH)

    def prearm_failure(self) -> str | None:
        """AP_Winch::pre_arm_check."""
        if self.type == 0 or self.healthy():
            return None
        return "winch unhealthy"

    def relax(self) -> None:
        self.mode = "relaxed"
        self.rate_desired = 0.0

    def release_length(self, length: float) -> None:
        """AP_Winch::release_length: the wanted length moves by `length` metres."""
        self.length_desired = self.line_m + length
        self.mode = "position"
        if int(self.v.params["WINCH_OPTIONS"]) & WINCH_VERBOSE:
            way = "raising" if length < 0 else "lowering"
            self.v.send_text(f"Winch: {way} {abs(length):4.1f}m to {self.length_desired:4.1f}m", INFO)

    def set_desired_rate(self, rate: float) -> None:
        rate_max = self.v.params["WINCH_RATE_MAX"]
        self.rate_desired = max(-rate_max, min(rate_max, rate))
        self.mode = "rate"

    def step(self, dt: float) -> None:
        """AP_Winch_PWM::update / control_winch."""
        if not self.healthy() or self.mode == "relaxed":
            return
        p = self.v.params
        if self.mode == "position":
            rate_max = p["WINCH_RATE_MAX"]
            self.rate_desired = max(
                -rate_max, min(rate_max, (self.length_desired - self.line_m) * p["WINCH_POS_P"])
            )
        self.line_m = min(max(self.line_m + self.rate_desired * dt, 0.0), p["WINCH_LEN_MAX"])
        v = self.v
        # the package hangs on the line; it is delivered when it reaches the ground and the hook lets go
        if v.payload_kg > 0.0 and not v.landed and self.line_m >= v.alt_m:
            v.drop_payload()
