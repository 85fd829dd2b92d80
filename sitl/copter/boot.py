"""The boot phase: what a ground station sees from a copter that has just been switched on.

ArduCopter talks long before it can fly. The phases below follow the source and their order was measured
on ArduCopter 4.7 SITL (master of 2025-07, `arducopter --model quad` with copter.parm): the simulated times
there were setup done 2.5 s, EKF3 started 4.0 s, aligned 5.5 s, GPS found 9.5 s, accelerometers consistent
~12 s, EKF origin 19.5 s, gyros consistent 23.8 s, EKF using GPS 41.5 s. Here every milestone is a share of
`boot_s` (DEFAULT_BOOT_S = 8 s, under half a second of wall time at the usual speed-ups): the order and
the texts are ArduPilot's, the waits shorter.

- Setup, until READY_AT (libraries/AP_Vehicle/AP_Vehicle.cpp AP_Vehicle::setup -> ArduCopter/system.cpp
  Copter::init_ardupilot). While setup waits on sensors the scheduler's delay callback
  (AP_Vehicle::scheduler_delay_callback) runs the links: HEARTBEAT at 1 Hz and whatever arrives is handled,
  but no stream and no SYS_STATUS is sent (GCS_MAVLINK::should_send_message_in_delay_callback: HEARTBEAT,
  parameters, AUTOPILOT_VERSION only; send_sys_status waits for GCS_Copter::vehicle_initialised), and every
  5 s "Initialising ArduPilot". HEARTBEAT says MAV_STATE_BOOT (vehicle_system_status) and base_mode 89
  (telemetry.base_mode). Arming: "System not initialised".
  Until MISSION_READY_AT the barometer calibrates ("Calibrating barometer", then "Barometer 1 calibration
  complete" and 2: SITL has SIM_BARO_COUNT 2) and AP_Mission::init has not run: num_commands_max() is 0,
  so MissionItemProtocol::handle_mission_count answers a mission upload with MAV_MISSION_NO_SPACE and
  "Only 0 items are supported" (WARNING). Fence and rally uploads are not refused: their capacity is their
  storage size (AC_PolyFence_loader::max_items, AP_Rally::get_rally_max), not something init sets.
- READY_AT: "ArduPilot Ready" (end of AP_Vehicle::setup), "AHRS: DCM active"; ap.initialised,
  MAV_STATE_STANDBY, base_mode 81 in STABILIZE, streams flow. The battery monitor's first reading comes a
  moment later (the first SYS_STATUS says 0 V). GLOBAL_POSITION_INT is all zeros (no location at all),
  GPS_RAW_INT has no fix, EKF_STATUS_REPORT says EKF_UNINITIALIZED.
- EKF_STARTED_AT: "EKF3 IMU0 initialised", "EKF3 IMU1 initialised" (AP_NavEKF3_core.cpp; EK3_IMU_MASK 3
  over SITL's two IMUs), "AHRS: EKF3 active" (AP_AHRS.cpp).
- EKF_ALIGNED_AT: "EKF3 IMU0/1 tilt alignment complete" (AP_NavEKF3_Control.cpp), "EKF3 IMU0/1 MAG0
  initial yaw alignment complete" (AP_NavEKF3_MagFusion.cpp); EKF_STATUS_REPORT attitude, velocities and
  vertical position in constant-position mode.
- GPS_AT: "GPS 1: probing for u-blox at 230400 baud", "GPS 1: detected u-blox" (AP_GPS.cpp); GPS_RAW_INT
  has its fix (type 6, as SITL's u-blox reports) and GLOBAL_POSITION_INT the GPS location.
- ACCELS_AT / GYROS_AT: the IMUs have agreed long enough (AP_Arming::ins_accels_consistent and
  ins_gyros_consistent want 10 s); before, arming fails "Accels inconsistent", then "Gyros inconsistent".
  From GYROS_AT, STABILIZE passes its pre-arm checks (it needs no position, ARMING_NEED_LOC 0).
- ORIGIN_AT: "EKF3 IMU0 origin set", "Field Elevation Set: 300m" (AP_Baro.cpp, the origin's altitude),
  "EKF3 IMU1 origin set" (AP_NavEKF3_Control.cpp): the EKF has a location, so Copter::update_home_from_EKF
  sets home (HOME_POSITION is sent, GET_HOME_POSITION works); but no absolute position yet: modes that need
  one fail "Need Position Estimate" instead of "AHRS: waiting for home".
- 1.0 (boot_s): "EKF3 IMU0 is using GPS", "EKF3 IMU1 is using GPS": Copter::position_ok, EKF_STATUS_REPORT
  with absolute position, LOCAL_POSITION_NED flows, GUIDED arms, and armed a copter may now enter GUIDED
  ("Mode change to GUIDED failed: requires position" before).

`boot_s=0` starts the copter booted, without any of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import ardupilotmega as mavlink

if TYPE_CHECKING:
    from sitl.copter.vehicle import SimCopter

DEFAULT_BOOT_S = 8.0
MISSION_READY_AT = 0.2  # barometer calibrated, AP_Mission::init done
READY_AT = 0.25  # "ArduPilot Ready"
EKF_STARTED_AT = 0.3
EKF_ALIGNED_AT = 0.35
GPS_AT = 0.45
ACCELS_AT = 0.5
ORIGIN_AT = 0.65
GYROS_AT = 0.75
BATTERY_FIRST_READ_S = 0.1  # AP_BattMonitor::read runs at 10 Hz once the main loop runs
INITIALISING_TEXT_S = 5.0  # AP_Vehicle::scheduler_delay_callback: "Initialising ArduPilot" every 5 s
IMUS = (0, 1)
INFO = mavlink.MAV_SEVERITY_INFO


def _milestones(field_elevation_m: float) -> tuple[tuple[float, tuple[str, ...]], ...]:
    return (
        (0.0, ("Calibrating barometer",)),  # libraries/AP_Baro/AP_Baro.cpp AP_Baro::calibrate
        (MISSION_READY_AT, ("Barometer 1 calibration complete", "Barometer 2 calibration complete")),
        (READY_AT, ("ArduPilot Ready", "AHRS: DCM active")),
        (EKF_STARTED_AT, (*(f"EKF3 IMU{i} initialised" for i in IMUS), "AHRS: EKF3 active")),
        (
            EKF_ALIGNED_AT,
            (
                *(f"EKF3 IMU{i} tilt alignment complete" for i in IMUS),
                *(f"EKF3 IMU{i} MAG0 initial yaw alignment complete" for i in IMUS),
            ),
        ),
        (GPS_AT, ("GPS 1: probing for u-blox at 230400 baud", "GPS 1: detected u-blox")),
        (
            ORIGIN_AT,
            (
                "EKF3 IMU0 origin set",
                f"Field Elevation Set: {field_elevation_m:.0f}m",
                "EKF3 IMU1 origin set",
            ),
        ),
        (1.0, tuple(f"EKF3 IMU{i} is using GPS" for i in IMUS)),
    )


class Boot:
    """Where a copter is in its boot, on simulated time; `boot_s == 0` is a copter that is already up."""

    def __init__(self, v: SimCopter, boot_s: float) -> None:
        if boot_s < 0:
            raise ValueError("boot_s must not be negative")
        self.v = v
        self.boot_s = float(boot_s)
        self._milestones = _milestones(v.home[2])
        self._next = 0 if boot_s > 0 else len(self._milestones)
        self._next_initialising_text = INITIALISING_TEXT_S

    def _reached(self, fraction: float) -> bool:
        return self.v.time_s + 1e-9 >= fraction * self.boot_s

    @property
    def initialising(self) -> bool:
        """Inside AP_Vehicle::setup (not ap.initialised): links run from the delay callback only."""
        return not self._reached(READY_AT)

    @property
    def mission_ready(self) -> bool:
        """AP_Mission::init has run: missions can be stored."""
        return self._reached(MISSION_READY_AT)

    @property
    def battery_read(self) -> bool:
        """The battery monitor has read the pack once (before, it says 0 V)."""
        return self.v.time_s + 1e-9 >= READY_AT * self.boot_s + (BATTERY_FIRST_READ_S if self.boot_s else 0.0)

    @property
    def ekf_started(self) -> bool:
        """EKF3 runs and is the active AHRS (before: DCM)."""
        return self._reached(EKF_STARTED_AT)

    @property
    def attitude_ok(self) -> bool:
        """EKF3 is aligned: attitude and height (Copter::ekf_alt_ok, "EKF attitude is bad" until then)."""
        return self._reached(EKF_ALIGNED_AT)

    @property
    def gps_detected(self) -> bool:
        """The GPS is found and has its fix."""
        return self._reached(GPS_AT)

    @property
    def ins_failure(self) -> str | None:
        """AP_Arming::ins_checks: the IMUs must have agreed for 10 s; accelerometers first, then gyros."""
        if not self._reached(ACCELS_AT):
            return "Accels inconsistent"
        if not self._reached(GYROS_AT):
            return "Gyros inconsistent"
        return None

    @property
    def origin_set(self) -> bool:
        """The EKF has an origin and a location; home can be (and is) set."""
        return self._reached(ORIGIN_AT)

    @property
    def position_ok(self) -> bool:
        """Copter::position_ok: the EKF uses GPS, an absolute position."""
        return self._reached(1.0)

    def step(self) -> None:
        """Announce what the boot reached by now (called once per physics step)."""
        v = self.v
        while self._next < len(self._milestones) and self._reached(self._milestones[self._next][0]):
            fraction, texts = self._milestones[self._next]
            self._next += 1
            for text in texts:
                v.send_text(text, INFO)
            if fraction == ORIGIN_AT:
                v.origin_known()
        if self.initialising and v.time_s + 1e-9 >= self._next_initialising_text:
            self._next_initialising_text += INITIALISING_TEXT_S
            v.send_text("Initialising ArduPilot", INFO)
