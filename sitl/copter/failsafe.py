"""Battery, fence and GCS failsafes, as ArduCopter triggers and answers them.

- Battery: libraries/AP_BattMonitor/AP_BattMonitor_Backend.cpp update_failsafes (voltage below
  BATT_LOW_VOLT / BATT_CRT_VOLT for BATT_LOW_TIMER seconds, or remaining mAh below BATT_LOW_MAH /
  BATT_CRT_MAH), announced by AP_BattMonitor::check_failsafes as "Battery 1 is low 41.90V used 9000 mAh",
  answered by Copter::handle_battery_failsafe (ArduCopter/events.cpp) with BATT_FS_LOW_ACT /
  BATT_FS_CRT_ACT. Only checked while armed; a failsafe only escalates, never clears in flight.
- Fence: ArduCopter/fence.cpp Copter::fence_check: on a new breach while armed, disarm if landed, LAND if
  more than 100 m outside, else FENCE_ACTION.
- GCS: ArduCopter/events.cpp failsafe_gcs_check: only once a heartbeat from MAV_GCS_SYSID (SYSID_MYGCS
  before 4.7) has been seen; no such heartbeat for FS_GCS_TIMEOUT seconds triggers FS_GCS_ENABLE's action;
  a heartbeat clears it.
- FS_OPTIONS (ArduCopter/Parameters.cpp ParametersG2 "FS_OPTIONS", default 16 =
  GCS_CONTINUE_IF_PILOT_CONTROL; bits from ArduCopter/Copter.h `enum class FailsafeOption`), as
  failsafe_gcs_on_event and handle_battery_failsafe test them: 2 = continue AUTO on GCS loss, 8 = continue
  a landing, 16 = continue a pilot-controlled mode (not `Mode::is_autopilot()`) on GCS loss, 32 = release
  the gripper on a failsafe action. The RC bits (1, 4) are stored only: there is no RC here.
- Texts: Copter::announce_failsafe, "<type> Failsafe" or "<type> Failsafe - <action>" (WARNING).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter.fence import GIVE_UP_DISTANCE_M, Fence
from sitl.copter.modes import Mode

if TYPE_CHECKING:
    from sitl.copter.vehicle import SimCopter

# Copter's Failsafe_Action (ArduCopter/Copter.h), which BATT_FS_*_ACT use directly.
NONE, LAND, RTL, SMARTRTL, SMARTRTL_LAND, TERMINATE, AUTO_DO_LAND_START, BRAKE_LAND = range(8)
# FS_GCS_ENABLE -> Failsafe_Action (events.cpp failsafe_gcs_on_event)
GCS_ACTIONS = {
    0: NONE,
    1: RTL,
    2: RTL,
    3: SMARTRTL,
    4: SMARTRTL_LAND,
    5: LAND,
    6: AUTO_DO_LAND_START,
    7: BRAKE_LAND,
}
# FENCE_ACTION -> mode order to try (fence.cpp)
FENCE_MODES = {1: (Mode.RTL, Mode.LAND), 2: (Mode.LAND,), 3: (Mode.SMART_RTL, Mode.RTL, Mode.LAND),
               4: (Mode.BRAKE, Mode.LAND), 5: (Mode.SMART_RTL, Mode.LAND)}  # fmt: skip
BATT_NONE, BATT_LOW, BATT_CRITICAL = 0, 1, 2
# FS_OPTIONS bits (ArduCopter/Copter.h enum class FailsafeOption)
GCS_CONTINUE_IF_AUTO, CONTINUE_IF_LANDING, GCS_CONTINUE_IF_PILOT_CONTROL, RELEASE_GRIPPER = (
    1 << 1, 1 << 3, 1 << 4, 1 << 5
)  # fmt: skip
# Modes whose `is_autopilot()` is true in ArduCopter/mode.h (ModeAuto, ModeGuided, ModeLand, ModeRTL and
# ModeSmartRTL, which derives from it); the others this simulator flies (STABILIZE, ALT_HOLD, LOITER,
# POSHOLD, BRAKE) keep Mode's default false: "pilot controlled" for FS_OPTIONS bit 4.
AUTOPILOT_MODES = frozenset({Mode.AUTO, Mode.GUIDED, Mode.LAND, Mode.RTL, Mode.SMART_RTL})


class Failsafes:
    """All failsafe state of one vehicle; stepped with the physics."""

    def __init__(self, v: SimCopter) -> None:
        self.v = v
        self.fence = Fence(v)
        self.battery_level = BATT_NONE
        self._low_volt_since: float | None = None
        self._crit_volt_since: float | None = None
        self.gcs_last_seen: float | None = None
        self.gcs = False
        v.params.on_change(self._param_changed)

    def _param_changed(self, name: str, value: float) -> None:
        if name == "FENCE_ENABLE":
            self.set_fence_enabled(value != 0)

    def set_fence_enabled(self, enabled: bool) -> None:
        if enabled != self.fence.enabled:
            self.fence.enabled = enabled
            self.v.send_text(f"Fence {'enabled' if enabled else 'disabled'}")
            if not enabled:
                self.fence.breached_types = 0

    def any_active(self) -> bool:
        """Copter::any_failsafe_triggered (battery or GCS here)."""
        return self.battery_level != BATT_NONE or self.gcs

    def gcs_heartbeat(self) -> None:
        """A HEARTBEAT from MAV_GCS_SYSID arrived (GCS_MAVLINK::handle_heartbeat -> sysid_myggcs_seen)."""
        self.gcs_last_seen = self.v.time_s

    # ---- actions -------------------------------------------------------------------------------
    def _try_modes(self, *modes: Mode, reason: str) -> None:
        for mode in modes:
            if self.v.set_mode(mode, reason=reason):
                return

    def _option(self, bit: int) -> bool:
        return bool(int(self.v.params["FS_OPTIONS"]) & bit)

    def _is_landing(self) -> bool:
        """Mode::is_landing: LAND, RTL's final descent, or AUTO flying a NAV_LAND."""
        v, nav = self.v, self.v.nav
        if v.mode_number == Mode.LAND:
            return True
        if v.mode_number == Mode.RTL:
            return nav.rtl_phase == "land"
        if v.mode_number == Mode.AUTO and nav.auto.running:
            item = (
                v.missions.mission[nav.auto.current] if nav.auto.current < len(v.missions.mission) else None
            )
            return item is not None and item.command == mavlink.MAV_CMD_NAV_LAND and nav.auto.phase == "land"
        return False

    def do_action(self, action: int, reason: str) -> None:
        """Copter::do_failsafe_action (FS_OPTIONS bit 5 releases the gripper first)."""
        if action != NONE and self._option(RELEASE_GRIPPER):
            self.v.release_payload()
        if action == LAND:
            self._try_modes(Mode.LAND, reason=reason)
        elif action == RTL:
            self._try_modes(Mode.RTL, Mode.LAND, reason=reason)
        elif action == SMARTRTL:
            self._try_modes(Mode.SMART_RTL, Mode.RTL, Mode.LAND, reason=reason)
        elif action == SMARTRTL_LAND:
            self._try_modes(Mode.SMART_RTL, Mode.LAND, reason=reason)
        elif action == TERMINATE:
            self.v.disarm(force=True)
        elif action == AUTO_DO_LAND_START:
            self._try_modes(Mode.RTL, Mode.LAND, reason=reason)
        elif action == BRAKE_LAND:
            self._try_modes(Mode.BRAKE, Mode.LAND, reason=reason)

    def _should_disarm(self) -> bool:
        """Copter::should_disarm_on_failsafe: on the ground (AUTO: before the mission took off)."""
        v = self.v
        if v.mode_number == Mode.AUTO:
            return not v.auto_armed and v.landed
        return v.landed

    def _announce(self, kind: str, action: str | None = None) -> None:
        """Copter::announce_failsafe (ArduCopter/events.cpp): "%s Failsafe - %s" or "%s Failsafe"."""
        text = f"{kind} Failsafe - {action}" if action else f"{kind} Failsafe"
        self.v.send_text(text, mavlink.MAV_SEVERITY_WARNING)

    # ---- battery -------------------------------------------------------------------------------
    def battery_types(self) -> tuple[bool, bool, bool, bool]:
        """AP_BattMonitor_Backend::check_failsafe_types: low/critical by voltage and by capacity."""
        p, b = self.v.params, self.v.battery
        volts = b.resting_voltage if p["BATT_FS_VOLTSRC"] == 1 else b.voltage
        remaining_mah = p["BATT_CAPACITY"] * b.remaining
        low_v = p["BATT_LOW_VOLT"] > 0 and volts < p["BATT_LOW_VOLT"]
        low_c = p["BATT_LOW_MAH"] > 0 and remaining_mah < p["BATT_LOW_MAH"]
        crit_v = p["BATT_CRT_VOLT"] > 0 and volts < p["BATT_CRT_VOLT"]
        crit_c = p["BATT_CRT_MAH"] > 0 and remaining_mah < p["BATT_CRT_MAH"]
        return low_v, low_c, crit_v, crit_c

    def battery_arming_problem(self) -> str | None:
        """AP_BattMonitor::arming_checks text (without the "PreArm: " / "Arm: " prefix): the first failing
        check in AP_BattMonitor_Backend::arming_checks' order."""
        p, b = self.v.params, self.v.battery
        low_v, low_c, crit_v, crit_c = self.battery_types()
        checks = (
            (p["BATT_ARM_VOLT"] > 0 and b.voltage < p["BATT_ARM_VOLT"], "below minimum arming voltage"),
            (p["BATT_ARM_MAH"] > 0 and p["BATT_CAPACITY"] * b.remaining < p["BATT_ARM_MAH"],
             "below minimum arming capacity"),
            (low_v, "low voltage failsafe"),
            (low_c, "low capacity failsafe"),
            (crit_v, "critical voltage failsafe"),
            (crit_c, "critical capacity failsafe"),
        )  # fmt: skip
        for failed, text in checks:
            if failed:
                return f"Battery 1 {text}"
        return None

    def _battery_level_now(self) -> int:
        low_v, low_c, crit_v, crit_c = self.battery_types()
        now = self.v.time_s
        timer = self.v.params["BATT_LOW_TIMER"]
        self._crit_volt_since = (
            (self._crit_volt_since if self._crit_volt_since is not None else now) if crit_v else None
        )
        self._low_volt_since = (
            (self._low_volt_since if self._low_volt_since is not None else now) if low_v else None
        )
        if (
            self._crit_volt_since is not None and timer > 0 and now - self._crit_volt_since > timer
        ) or crit_c:
            return BATT_CRITICAL
        if (self._low_volt_since is not None and timer > 0 and now - self._low_volt_since > timer) or low_c:
            return BATT_LOW
        return BATT_NONE

    def _battery_check(self) -> None:
        level = self._battery_level_now()
        if level <= self.battery_level:
            return
        self.battery_level = level
        v, p = self.v, self.v.params
        kind = "low" if level == BATT_LOW else "critical"
        used_mah = v.battery.consumed_ah * 1000.0
        v.send_text(
            f"Battery 1 is {kind} {v.battery.voltage:.2f}V used {used_mah:.0f} mAh",
            mavlink.MAV_SEVERITY_WARNING,
        )
        action = int(p["BATT_FS_LOW_ACT"] if level == BATT_LOW else p["BATT_FS_CRT_ACT"])
        if self._should_disarm():
            v.disarm(force=True)
            self._announce("Battery", "Disarming")
            return
        if self._is_landing() and self._option(CONTINUE_IF_LANDING) and action != NONE:
            self._announce("Battery", "Continuing Landing")
            self.do_action(LAND, "battery")  # desired_action = FailsafeAction::LAND
            return
        self._announce("Battery")
        self.do_action(action, "battery")

    # ---- fence ---------------------------------------------------------------------------------
    def _fence_check(self) -> None:
        new, distance = self.fence.check()
        v = self.v
        if not v.armed or not new:
            return
        if not v.landed:
            v.send_text(f"Fence breached: {Fence.describe(new)}", mavlink.MAV_SEVERITY_CRITICAL)
        action = int(v.params["FENCE_ACTION"])
        if action == 0:
            return
        if v.landed:
            v.disarm(force=True)
        elif distance > GIVE_UP_DISTANCE_M:
            v.set_mode(Mode.LAND, reason="fence")
        else:
            self._try_modes(*FENCE_MODES.get(action, (Mode.RTL, Mode.LAND)), reason="fence")

    # ---- GCS -----------------------------------------------------------------------------------
    def _gcs_check(self) -> None:
        """Copter::failsafe_gcs_check then failsafe_gcs_on_event (ArduCopter/events.cpp), in its order:
        disarmed -> "GCS Failsafe" and nothing else; on the ground (should_disarm_on_failsafe, AUTO only
        before the mission took off) -> disarm; landing with a battery failsafe, or with FS_OPTIONS 8 ->
        go on landing; in AUTO with FS_OPTIONS 2 -> "GCS Failsafe - Continuing Auto Mode" and the mission
        goes on (FailsafeAction::NONE); in a mode that is not `is_autopilot()` with FS_OPTIONS 16 ->
        "Continuing Pilot Control"; else FS_GCS_ENABLE's action (GUIDED, LOITER, RTL, LAND, ... and AUTO
        without bit 2 return). The failsafe stays on (no second action) until a heartbeat clears it."""
        v = self.v
        enable = int(v.params["FS_GCS_ENABLE"])
        if enable == 0 or self.gcs_last_seen is None:
            return
        late = v.time_s - self.gcs_last_seen > v.params["FS_GCS_TIMEOUT"]
        if not late and self.gcs:
            self.gcs = False
            v.send_text("GCS Failsafe Cleared", mavlink.MAV_SEVERITY_WARNING)
        elif late and not self.gcs:
            self.gcs = True
            if not v.armed:
                self._announce("GCS")
                return
            if self._should_disarm():
                v.disarm(force=True)
                self._announce("GCS", "Disarming")
                return
            if self._is_landing() and self.battery_level and self.battery_level >= BATT_LOW:
                self._announce("GCS + Battery", "Continuing Landing")
                self.do_action(LAND, "gcs")  # desired_action = FailsafeAction::LAND
                return
            if self._is_landing() and self._option(CONTINUE_IF_LANDING):
                self._announce("GCS", "Continuing Landing")
                self.do_action(LAND, "gcs")
                return
            if v.mode_number == Mode.AUTO and self._option(GCS_CONTINUE_IF_AUTO):
                self._announce("GCS", "Continuing Auto Mode")
                return
            if self._option(GCS_CONTINUE_IF_PILOT_CONTROL) and v.mode_number not in AUTOPILOT_MODES:
                self._announce("GCS", "Continuing Pilot Control")
                return
            self._announce("GCS")
            self.do_action(GCS_ACTIONS.get(enable, RTL), "gcs")  # "an invalid parameter value ... RTL"

    def step(self, dt: float) -> None:
        if self.v.armed:
            self._battery_check()
        self._fence_check()
        self._gcs_check()
