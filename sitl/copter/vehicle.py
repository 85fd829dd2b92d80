"""One simulated ArduCopter: its state, its test hooks, and the step that advances it.

The vehicle owns what ArduPilot's vehicle code owns (mode, arming, the position controller's state,
battery, payload, mission storage); the MAVLink side (`gcs.py`, `link.py`) reads and commands it, and
the fleet steps it at a fixed simulated rate. Everything here runs on the event loop's thread and never
blocks: a step is pure computation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import physics, power, telemetry
from sitl.copter.boot import Boot
from sitl.copter.failsafe import Failsafes
from sitl.copter.fence import fence_names
from sitl.copter.mission import MissionStore
from sitl.copter.modes import ARMABLE, MANUAL_THROTTLE, NEEDS_POSITION, SUPPORTED, Mode, mode_name
from sitl.copter.nav import Navigator
from sitl.copter.params import ParamStore
from sitl.copter.release import Gripper, Winch

TRACK_PERIOD_S = 1.0  # sim seconds between `track` samples
PREARM_DISPLAY_S = 30.0  # libraries/AP_Arming/AP_Arming.cpp PREARM_DISPLAY_PERIOD
CRITICAL = mavlink.MAV_SEVERITY_CRITICAL


class Outlet(Protocol):
    """A connected link: where the vehicle's unsolicited messages go (`link.Link`)."""

    rx_rejected: int

    def send(self, msg: mavlink.MAVLink_message) -> None: ...
    def tick(self) -> None: ...
    def close(self) -> None: ...


class SimCopter:
    """A simulated copter; its attributes are the truth tests judge the controller against."""

    def __init__(
        self,
        sysid: int,
        home: tuple[float, float, float, float],
        params: ParamStore,
        battery: float = 1.0,
        *,
        boot_s: float = 0.0,
    ) -> None:
        self.sysid = sysid
        self.params = params
        self.home = home  # lat, lon, alt AMSL (m), heading (deg); announced once home_set
        self.origin = (home[0], home[1], home[2])  # the EKF origin: where the copter boots
        self.time_s = 0.0  # simulated seconds since start
        self.start_unix = time.time()  # SYSTEM_TIME = start + simulated seconds
        self.k = physics.Kinematics(home[0], home[1], 0.0, heading_deg=home[3])
        self._mode = Mode.STABILIZE
        self.armed = False
        self.landed = True
        self.auto_armed = False  # Copter::ap.auto_armed: takeoff allowed in AUTO/GUIDED
        self.battery = power.Battery(params["SIM_BATT_CAP_AH"], full_voltage=params["SIM_BATT_VOLTAGE"])
        self.battery.set_remaining(battery)
        self.battery.energy_used_wh = 0.0
        self.payload_kg = params["SIM_PAYLOAD_KG"]
        self.payload_released_at: tuple[float, float] | None = None
        self.wind = (params["SIM_WIND_SPD"], params["SIM_WIND_DIR"])
        self.gripper = Gripper(self)
        self.winch = Winch(self)
        # (lat, lon, alt above home) at 1 Hz of simulated time while armed
        self.track: list[tuple[float, float, float]] = [(self.lat, self.lon, self.alt_m)]
        self.statustexts: list[str] = []
        self._text_id = 0  # STATUSTEXT.id of the last chunked text
        self.outlets: list[Outlet] = []
        self.signing = mavlink.MAVLinkSigning()  # one key for every link (GCS_Signing.cpp)
        self.boot = Boot(self, boot_s)
        self.home_set = self.boot.origin_set  # Copter::update_home_from_EKF once the EKF has an origin
        self.missions = MissionStore(self)
        self.failsafes = Failsafes(self)
        self.nav = Navigator(self)
        if self.home_set:
            self.nav.srtl.reset()  # booted: SmartRTL has its home point (AP_SmartRTL::set_home)
        self.power_w = 0.0
        self._next_track = TRACK_PERIOD_S
        self.next_heartbeat_s = 0.0  # the fleet's clock sends HEARTBEAT at 1 Hz of simulated time
        self._land_idle_s = 0.0
        self._next_prearm_display = PREARM_DISPLAY_S
        self._stepped = asyncio.Event()
        params.on_change(self._param_changed)

    # ---- truth read by tests -------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._mode.name

    @property
    def mode_number(self) -> Mode:
        return self._mode

    @property
    def lat(self) -> float:
        return self.k.lat

    @property
    def lon(self) -> float:
        return self.k.lon

    @property
    def alt_m(self) -> float:
        return self.k.alt

    @property
    def groundspeed_mps(self) -> float:
        return self.k.groundspeed

    @property
    def battery_remaining(self) -> float:
        return self.battery.remaining

    @property
    def energy_used_wh(self) -> float:
        return self.battery.energy_used_wh

    @property
    def total_mass_kg(self) -> float:
        return self.params["SIM_EMPTY_KG"] + self.payload_kg

    @property
    def winch_line_m(self) -> float:
        return self.winch.line_m

    @property
    def ready(self) -> bool:
        """Booted: the EKF has a position and home is set (always true with boot_s=0)."""
        return self.boot.position_ok and self.home_set

    # ---- test hooks ----------------------------------------------------------------------------
    def set_battery(self, fraction: float) -> None:
        """Jump the battery's state of charge (0..1)."""
        self.battery.set_remaining(fraction)

    def set_payload(self, kg: float) -> None:
        """Hang a payload of `kg` (0 removes it); mirrors SIM_PAYLOAD_KG."""
        self.params.set("SIM_PAYLOAD_KG", kg)

    def set_wind(self, speed_mps: float, from_deg: float) -> None:
        """Steady wind, as SIM_WIND_SPD / SIM_WIND_DIR."""
        self.params.set("SIM_WIND_SPD", speed_mps)
        self.params.set("SIM_WIND_DIR", from_deg)

    async def wait_for(self, predicate: Callable[[SimCopter], bool], timeout: float) -> None:  # noqa: ASYNC109 (public API)
        """Return once `predicate(self)` holds, checking after every physics step; TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                await self._stepped.wait()

    # ---- outgoing ------------------------------------------------------------------------------
    def emit(self, msg: mavlink.MAVLink_message) -> None:
        """Send to every connected link (as ArduPilot's gcs().send_message to all channels)."""
        for outlet in list(self.outlets):
            outlet.send(msg)

    def send_text(self, text: str, severity: int = mavlink.MAV_SEVERITY_INFO) -> None:
        """STATUSTEXT to every link, recorded for tests (GCS::send_text)."""
        for msg in self.text_msgs(text, severity):
            self.emit(msg)

    def text_msgs(
        self, text: str, severity: int = mavlink.MAV_SEVERITY_INFO
    ) -> list[mavlink.MAVLink_message]:
        """STATUSTEXT for one link or all, recorded in `statustexts` (GCS::send_textv): a text longer than
        50 bytes goes out in 50-byte chunks with a common non-zero id and chunk_seq 0, 1, ... (the last one
        shorter than 50, possibly empty)."""
        self.statustexts.append(text)
        data = text.encode()
        if len(data) <= 50:
            return [mavlink.MAVLink_statustext_message(severity, data, 0, 0)]
        self._text_id = self._text_id % 0xFFFF + 1
        chunks = [data[i : i + 50] for i in range(0, len(data) + 1, 50)]
        return [
            mavlink.MAVLink_statustext_message(severity, c, self._text_id, n) for n, c in enumerate(chunks)
        ]

    # ---- modes and arming ----------------------------------------------------------------------
    def set_mode(self, mode: int, *, reason: str = "gcs") -> bool:
        """Change flight mode as Copter::set_mode (ArduCopter/mode.cpp) does; False when refused.

        Disarmed, every mode is allowed (ignore_checks = !motors->armed(): the arming checks guard instead);
        armed, a mode that needs a position is refused without one. A refusal says
        "Mode change to GUIDED failed: requires position" (Copter::mode_change_failed, MAV_SEVERITY_WARNING);
        a mode whose init fails says "... failed: init failed".
        """
        try:
            new = Mode(mode)
        except ValueError:
            return False
        if new not in SUPPORTED:
            return False
        if new == self._mode:
            return True
        ignore_checks = not self.armed
        if not ignore_checks and new in NEEDS_POSITION and not self.boot.position_ok:
            self._mode_change_failed(new, "requires position")
            return False
        if not self.nav.can_enter(new, ignore_checks):
            self._mode_change_failed(new, "init failed")
            return False
        self._mode = new
        self.nav.enter(new)
        self.emit(telemetry.heartbeat(self))  # Copter::set_mode: gcs().send_message(MSG_HEARTBEAT)
        return True

    def _mode_change_failed(self, mode: Mode, why: str) -> None:
        self.send_text(
            f"Mode change to {mode_name(mode, ardupilot=True)} failed: {why}", mavlink.MAV_SEVERITY_WARNING
        )

    def _gps_failure(self) -> str | None:
        """AP_Arming_Copter::mandatory_gps_checks: the AHRS first (AP_AHRS::pre_arm_check: "not using
        configured AHRS type" while DCM is the active AHRS, then NavEKF3's "EKF3 still initialising" until
        it has aligned), then a position for modes that need one (Copter::position_ok)."""
        if not self.boot.ekf_started:
            return "AHRS: not using configured AHRS type"
        if not self.boot.attitude_ok:
            return "AHRS: EKF3 still initialising"
        if self._mode in NEEDS_POSITION and not self.boot.position_ok:
            return "Need Position Estimate"
        return None

    def _alt_failure(self) -> str | None:
        """AP_Arming_Copter::alt_checks: modes without manual throttle need Copter::ekf_alt_ok."""
        return (
            "Need Alt Estimate" if self._mode not in MANUAL_THROTTLE and not self.boot.attitude_ok else None
        )

    def _attitude_failure(self) -> str | None:
        """AP_Arming_Copter::ins_checks: AP_AHRS ATTITUDE_VALID."""
        return None if self.boot.attitude_ok else "EKF attitude is bad"

    def _mandatory_failures(self) -> list[str]:
        """AP_Arming_Copter::mandatory_checks: mandatory_gps_checks, then alt_checks."""
        return [t for t in (self._gps_failure(), self._alt_failure()) if t is not None]

    def prearm_failures(self) -> list[str]:
        """Every failing pre-arm check, without the "PreArm: " / "Arm: " prefix, in the order
        AP_Arming_Copter::run_pre_arm_checks runs them (all of them run: the results are and-ed bitwise)."""
        if self.armed:
            return []
        if self.boot.initialising:
            return ["System not initialised"]  # hal.scheduler->is_system_initialized()
        if self.params["ARMING_CHECK"] == 0:
            return self._mandatory_failures()
        failures = []
        if self.failsafes.gcs:
            failures.append("GCS failsafe on")  # AP_Arming_Copter::gcs_failsafe_check
        # AP_Arming_Copter::winch_checks, then alt_checks
        failures += [t for t in (self.winch.prearm_failure(), self._alt_failure()) if t is not None]
        # AP_Arming::pre_arm_checks: ins_checks (AP_Arming::ins_checks, then AP_Arming_Copter's EKF attitude)
        failures += [t for t in (self.boot.ins_failure, self._attitude_failure()) if t is not None]
        # AP_Arming_Copter::gps_checks: a mode that needs a position runs AP_Arming::gps_checks first (which
        # fails "AHRS: waiting for home" until the EKF origin gives a home), then mandatory_gps_checks
        gps = (
            "AHRS: waiting for home"
            if self._mode in NEEDS_POSITION and not self.home_set
            else self._gps_failure()
        )
        if gps is not None:
            failures.append(gps)
        batt = self.failsafes.battery_arming_problem()
        if batt is not None:
            failures.append(batt)  # AP_Arming::battery_checks
        if self._mode == Mode.AUTO and len(self.missions.mission) <= 1:
            # AP_Arming::mission_checks: Copter::current_mode_requires_mission and no mission.present()
            failures.append("Mode requires mission")
        fence = self.failsafes.fence
        if fence.enabled and fence.breached_types:
            # AP_Arming::fence_checks -> AC_Fence::pre_arm_check: "Vehicle breaching %s" with get_fence_names
            failures.append(f"Vehicle breaching {fence_names(fence.breached_types)}")
        return failures

    @property
    def prearm_ok(self) -> bool:
        """AP_Notify::flags.pre_arm_check, set by AP_Arming::update once a second (SYS_STATUS bit)."""
        return not self.prearm_failures()

    def run_prearm_checks(self) -> None:
        """AP_Arming::pre_arm_checks(true) outside an arming attempt: failures say "PreArm: ..."."""
        for text in self.prearm_failures():
            self.send_text(f"PreArm: {text}", CRITICAL)

    def arm(self, *, force: bool = False) -> bool:
        """Arm as AP_Arming::arm does; STATUSTEXT "Arm: ..." for each failing check on refusal.

        Forced (param2 21196) only the mandatory checks run; if those fail too, the full checks run
        (`(!do_arming_checks && mandatory_checks()) || (pre_arm_checks() && arm_checks())`). While arming,
        check_failed prefixes "Arm: " (running_arming_checks), not "PreArm: ".
        """
        if self.armed:
            return True
        ok = force and not self.boot.initialising and not self._mandatory_failures()
        if not ok:
            failures = self.prearm_failures()
            if not failures and self._mode not in ARMABLE:
                # AP_Arming_Copter::arm_checks: Mode::allows_arming
                failures = [f"{mode_name(self._mode, ardupilot=True)} mode not armable"]
            for text in failures:
                self.send_text(f"Arm: {text}", CRITICAL)
            if failures:
                return False
        self.armed = True
        self.auto_armed = False
        self._land_idle_s = 0.0
        self.send_text("Arming motors")  # AP_Arming_Copter::arm, SITL builds only
        if self.home_set:
            self.set_home_here()  # not locked: home moves to where the copter arms
        # AP_Arming_Copter::arm: g2.smart_rtl.set_home(copter.position_ok()): without a position no path
        self.nav.srtl.reset(active=self.boot.position_ok)
        return True

    def disarm(self, *, force: bool = False) -> bool:
        """Disarm; refused in flight unless forced (AP_Arming_Copter::disarm)."""
        if not self.armed:
            return True
        if not self.landed and not force:
            return False
        self.armed = False
        self.auto_armed = False
        self.k.vn = self.k.ve = self.k.vu = 0.0
        self.send_text("Disarming motors")  # AP_Arming_Copter::disarm, SITL builds only
        return True

    def set_home_here(self) -> None:
        """ArduCopter sets home to the arming position (Copter::set_home_to_current_location)."""
        self.home = (self.lat, self.lon, self.home[2] + self.alt_m, self.k.heading_deg)
        self.k.alt = 0.0 if self.landed else self.k.alt
        self.home_set = True
        self.nav.srtl.reset()  # Copter::set_home_to_current_location -> AP_SmartRTL::set_home
        self.emit(telemetry.home_position(self))  # GCS::send_message(MSG_HOME) on every home change

    def origin_known(self) -> None:
        """The EKF has its origin: Copter::update_home_from_EKF sets home where the copter is."""
        if not self.home_set:
            self.set_home_here()

    # ---- payload -------------------------------------------------------------------------------
    def release_payload(self) -> None:
        """Open the gripper (DO_GRIPPER release, FS_OPTIONS bit 5): the package falls once it has opened."""
        self.gripper.release()

    def drop_payload(self) -> None:
        """Whatever hangs on the copter falls here (records where)."""
        if self.payload_kg > 0.0:
            self.payload_released_at = (self.lat, self.lon)
        self.params.set("SIM_PAYLOAD_KG", 0.0)

    def _param_changed(self, name: str, value: float) -> None:
        if name == "SIM_PAYLOAD_KG":
            self.payload_kg = max(value, 0.0)
        elif name in ("SIM_WIND_SPD", "SIM_WIND_DIR"):
            self.wind = (self.params["SIM_WIND_SPD"], self.params["SIM_WIND_DIR"])

    # ---- the step ------------------------------------------------------------------------------
    def step(self, dt: float) -> None:
        """Advance the simulation by `dt` simulated seconds."""
        self.time_s += dt
        wind = physics.wind_vector(*self.wind)
        if self.armed:
            self.nav.step(dt, wind)
            self.nav.srtl.record()
        self.boot.step()
        self.gripper.step()
        self.winch.step(dt)
        self._step_power(dt, wind)
        if self.armed and self.landed:
            self._auto_disarm(dt)
        self.failsafes.step(dt)
        self.missions.step()
        if self.time_s + 1e-9 >= self._next_prearm_display:
            # AP_Arming::update: while disarmed, failing pre-arm checks are shown every 30 s
            self._next_prearm_display += PREARM_DISPLAY_S
            self.run_prearm_checks()
        if self.time_s >= self._next_track:
            self._next_track += TRACK_PERIOD_S
            if self.armed or self.track[-1] != (self.lat, self.lon, self.alt_m):
                # 1 Hz while armed; a copter idling on the ground adds nothing (long CLI runs stay small)
                self.track.append((self.lat, self.lon, self.alt_m))
        self._stepped.set()
        self._stepped = asyncio.Event()

    def _step_power(self, dt: float, wind: tuple[float, float]) -> None:
        if not self.armed:
            self.power_w = 0.0
        elif self.landed:
            self.power_w = power.IDLE_ARMED_POWER_W
        else:
            self.power_w = power.flight_power_w(self.total_mass_kg, physics.airspeed(self.k, wind), self.k.vu)
        self.battery.draw(self.power_w, dt)

    def _auto_disarm(self, dt: float) -> None:
        """Copter::auto_disarm_check: landed and idle for DISARM_DELAY seconds -> disarm."""
        delay = self.params["DISARM_DELAY"]
        if delay <= 0 or self.nav.wants_takeoff():
            self._land_idle_s = 0.0
            return
        self._land_idle_s += dt
        if self._land_idle_s >= delay:
            self.disarm()

    # ---- status for telemetry ------------------------------------------------------------------
    def system_status(self) -> int:
        """GCS_MAVLINK_Copter::vehicle_system_status (ArduCopter/GCS_MAVLink_Copter.cpp): CRITICAL in a
        failsafe, STANDBY landed, BOOT during setup (ap.land_complete is only set at the end of
        Copter::init_ardupilot), else ACTIVE."""
        if self.failsafes.any_active():
            return mavlink.MAV_STATE_CRITICAL
        if self.boot.initialising:
            return mavlink.MAV_STATE_BOOT
        if self.landed:  # ap.land_complete
            return mavlink.MAV_STATE_STANDBY
        return mavlink.MAV_STATE_ACTIVE
