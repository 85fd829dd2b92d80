"""NAV_PAYLOAD_PLACE, the state machine of ArduCopter/mode_auto.cpp (PayloadPlace::run, ::start_descent,
::verify; ModeAuto::do_payload_place), ArduCopter 4.7:

- FlyToLocation: with a latitude/longitude, fly there at the current altitude (shift_alt_to_current_alt);
  without, start descending where the copter is.
- Descent_Start / Descent: descend at PLDP_SPEED_DN (m/s; 0 = LAND_SPEED cm/s), never faster than
  WPNAV_SPEED_DN, with `land_at_climb_rate_cm(-speed, ignore_descent_limit=true)`. The position
  controller's *desired* altitude (AC_PosControl::get_pos_desired_U_cm) moves at that rate and runs ahead
  of the copter, no further than the vertical P controller's error limit (AC_P_1D::update_all, called from
  AC_PosControl::update_U_controller, pulls the target back within it; on the ground the desired altitude
  stops that far below). The maximum descent is measured on this desired altitude, not the copter's:
  param1 is the maximum descent in metres (AP_Mission::mavlink_int_to_mission_cmd stores
  `cmd.p1 = param1 * 100`, a uint16 of cm: up to 655.35 m), and once `descent_start_altitude_cm -
  pos_desired_U > descent_max_cm` the place is abandoned with "PayloadPlace: Reached maximum descent"
  (MAV_SEVERITY_WARNING), nothing released, and the copter climbs back. param1 = 0 means no limit
  (`!is_zero(descent_max_cm)` guards the check): the copter goes down until it touches. With param1
  equal to the height above the ground the desired altitude gets there first and the place is abandoned
  just above the ground; give 0, or comfortably more than the height.
- Touchdown: ArduPilot calibrates the descent thrust for 2 s once the descent speed is reached, then
  takes a thrust below PLDP_THRESH times that for 0.5 s as the touchdown: "PayloadPlace: payload release
  thrust threshold: 0.315000" (INFO; PLDP_THRESH x the descent thrust, here MOT_THST_HOVER's 0.35; longer
  than 50 characters, so it arrives as two STATUSTEXT chunks, as on ArduCopter 4.7 SITL where it read
  0.314154) -> Release. On ArduCopter 4.7 SITL this is what happens, 0.5 s after the copter touches. A
  touchdown before the calibration is over is found by the land detector's "maybe landed" instead
  (LAND_DETECTOR_MAYBE_TRIGGER_SEC, 0.2 s): "PayloadPlace: landed" (INFO). With PLDP_RNG_MAX set and no
  rangefinder (none here), the thrust drop ends the place at once with "PayloadPlace: PLDP_RNG_MAX set and
  rangefinder not enabled" (WARNING) and the climb.
- Release: when the gripper is valid (enabled, servo type, an output with SERVOn_FUNCTION 28),
  "PayloadPlace: Releasing the gripper" (INFO) and AP_Gripper::release ("Gripper load releasing", 0.5 s
  later "Gripper load released"); Releasing waits for released. Without a valid gripper nothing is
  released and the copter goes on as if it had.
- Delay: until 0.5 s (placed_check_duration_ms) + PLDP_DELAY after the thrust dropped.
- Ascent: back to the altitude the descent started from; Done, and the NAV item completes
  (MISSION_ITEM_REACHED), whether the package was placed or not.
- A gripper already open before the descent: "PayloadPlace: Abort: Gripper Open" (INFO), Done at once;
  opened during the descent: "PayloadPlace: Manual release" (INFO) and on to Release.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import physics

if TYPE_CHECKING:
    from sitl.copter.auto import MissionRunner
    from sitl.copter.items import Item
    from sitl.copter.vehicle import SimCopter

PREFIX = "PayloadPlace:"
LAND_MAYBE_S = 0.2  # ArduCopter/config.h LAND_DETECTOR_MAYBE_TRIGGER_SEC
PLACED_CHECK_S = 0.5  # PayloadPlace::run placed_check_duration_ms
THRUST_CAL_S = 2.0  # PayloadPlace::run descent_thrust_cal_duration_ms
DESCENT_THRUST = 0.35  # the descent's thrust level: MOT_THST_HOVER's default (SITL measured 0.349)
POSZ_P = 1.0  # AC_PosControl PSC_POSZ_P default: altitude error (m) -> climb rate (m/s)
INFO, WARNING = mavlink.MAV_SEVERITY_INFO, mavlink.MAV_SEVERITY_WARNING


def max_descent_m(param1: float) -> float:
    """The maximum descent as ArduPilot stores it: a uint16 of centimetres (0 = no limit)."""
    return (int(param1 * 100) & 0xFFFF) / 100.0


class PayloadPlace:
    """The PayloadPlace state of one NAV_PAYLOAD_PLACE item."""

    def __init__(self, v: SimCopter, runner: MissionRunner) -> None:
        self.v = v
        self.runner = runner
        self.state = "done"
        self.descent_max_m = 0.0
        self.start_alt = 0.0  # descent_start_altitude_cm
        self.desired_alt = 0.0  # AC_PosControl's desired altitude while descending
        self.desired_vel = 0.0
        self.speed = 0.0
        self.established_s: float | None = None  # descent_established_time_ms once at descent speed
        self.touchdown_s: float | None = None
        self.placed_s = 0.0  # place_start_time_ms

    def begin(self, item: Item) -> None:
        """ModeAuto::do_payload_place."""
        self.descent_max_m = max_descent_m(item.param1)
        self.touchdown_s = self.established_s = None
        self.state = "fly" if (item.x or item.y) else "descent_start"

    def _say(self, text: str, severity: int = INFO) -> None:
        self.v.send_text(f"{PREFIX} {text}", severity)

    def step(self, item: Item, dt: float, wind: tuple[float, float]) -> bool:
        """One step of PayloadPlace::run; True once verify() would say done."""
        v, p, gripper = self.v, self.v.params, self.v.gripper
        runner, nav = self.runner, self.runner.nav
        if self.state == "descent" and self.touchdown_s is not None:
            since = v.time_s - self.touchdown_s + 1e-9
            if self._calibrated(self.touchdown_s) and since >= PLACED_CHECK_S:
                # thrust under PLDP_THRESH x the calibrated descent thrust for placed_check_duration_ms
                self._say(f"payload release thrust threshold: {p['PLDP_THRESH'] * DESCENT_THRUST:f}")
                self.placed_s = self.touchdown_s
                self.state = "release"
            elif not self._calibrated(self.touchdown_s) and since >= LAND_MAYBE_S:
                self._say("landed")  # ap.land_complete_maybe
                self.placed_s = self.touchdown_s + LAND_MAYBE_S
                self.state = "release"
        if gripper.valid() and gripper.released():  # the load was let go by someone else
            if self.state in ("fly", "descent_start"):
                self._say("Abort: Gripper Open")
                self.start_alt = runner.target_alt
                self.state = "done"
            elif self.state == "descent":
                self._say("Manual release")
                self.placed_s = v.time_s
                self.state = "release"
        if self.state == "fly":
            dist, _ = nav.fly_to(runner.target, runner.target_alt, dt, wind)
            if dist < 0.5 and v.groundspeed_mps < 0.3:  # wp_nav->reached_wp_destination()
                self.state = "descent_start"
            return False
        if self.state == "descent_start":
            self.start_alt = self.desired_alt = runner.target_alt  # pos_control->get_pos_desired_U_cm()
            self.desired_vel = v.k.vu
            pldp = p["PLDP_SPEED_DN"]
            self.speed = min(pldp if pldp > 0 else abs(p["LAND_SPEED"]) / 100.0, p["WPNAV_SPEED_DN"] / 100.0)
            self.state = "descent"
        if self.state == "descent":
            self.desired_vel = physics._approach(self.desired_vel, -self.speed, physics.ACCEL_Z_MPS2 * dt)
            if self.established_s is None and self.desired_vel <= -0.95 * self.speed:
                self.established_s = v.time_s
            self.desired_alt += self.desired_vel * dt  # not held at the ground: ignore_descent_limit
            self.desired_alt = max(self.desired_alt, v.alt_m - self._error_max())
            if self.descent_max_m > 0 and self.start_alt - self.desired_alt > self.descent_max_m:
                self._say("Reached maximum descent", WARNING)
                self.state = "ascent"
            else:
                self._follow(dt, wind)
                return False
        if self.state == "release":
            self._hold(dt, wind)
            if gripper.valid():
                self._say("Releasing the gripper")
                gripper.release()
                self.state = "releasing"
            else:
                self.state = "delay"
            return False
        if self.state == "releasing":
            self._hold(dt, wind)
            if gripper.valid() and not gripper.released():
                return False
            self.state = "delay"
        if self.state == "delay":
            if v.time_s - self.placed_s + 1e-9 < PLACED_CHECK_S + p["PLDP_DELAY"]:
                self._hold(dt, wind)
                return False
            self.state = "ascent"
        if self.state == "ascent":
            nav.climb_from_ground()
            _, dz = nav.fly_to(runner.target, self.start_alt, dt, wind)
            if dz < 0.5:
                self.state = "done"
            return False
        return True

    def _calibrated(self, t: float) -> bool:
        """The descent thrust has been measured for descent_thrust_cal_duration_ms by time `t`."""
        return self.established_s is not None and t - self.established_s + 1e-9 >= THRUST_CAL_S

    def _error_max(self) -> float:
        """AC_P_1D's error limit for the descent: inv_sqrt_controller(WPNAV_SPEED_DN, POSZ_P, accel)."""
        speed, accel = self.runner.nav.down_speed(), physics.ACCEL_Z_MPS2
        if speed <= accel / POSZ_P:
            return speed / POSZ_P
        return accel / (2.0 * POSZ_P**2) + speed**2 / (2.0 * accel)

    def _hold(self, dt: float, wind: tuple[float, float]) -> None:
        """land_at_climb_rate_cm(0): stay where the descent stopped (on the ground after a touchdown)."""
        if not self.v.landed:
            self.runner.nav.fly_to(self.runner.target, self.v.alt_m, dt, wind)

    def _follow(self, dt: float, wind: tuple[float, float]) -> None:
        """The copter follows the desired altitude (AC_PosControl: feed-forward velocity plus POSZ_P times
        the error), holding the place horizontally (land_run_horizontal_control), until it touches."""
        v, nav = self.v, self.runner.nav
        k = v.k
        physics.step_horizontal(k, self.runner.target, nav.wp_speed(), nav.accel(), wind, dt)
        if v.landed:
            return
        want = self.desired_vel + POSZ_P * (self.desired_alt - k.alt)
        want = max(-nav.down_speed(), min(nav.up_speed(), want))
        k.vu = physics._approach(k.vu, want, physics.ACCEL_Z_MPS2 * dt)
        k.alt += k.vu * dt
        if k.alt <= 0.0:
            k.alt = 0.0
            k.vn = k.ve = k.vu = 0.0
            v.landed = True
            self.touchdown_s = v.time_s
            if v.params["PLDP_RNG_MAX"] > 0 and self._calibrated(v.time_s):
                # thrust falls on touchdown; PLDP_RNG_MAX wants the rangefinder to agree, and there is none
                self._say("PLDP_RNG_MAX set and rangefinder not enabled", WARNING)
                self.state = "ascent"
