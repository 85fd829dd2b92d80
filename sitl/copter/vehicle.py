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
from sitl.copter.failsafe import Failsafes
from sitl.copter.mission import MissionStore
from sitl.copter.modes import ARMABLE, SUPPORTED, Mode, mode_name
from sitl.copter.nav import Navigator
from sitl.copter.params import ParamStore

TRACK_PERIOD_S = 1.0  # sim seconds between `track` samples


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
    ) -> None:
        self.sysid = sysid
        self.params = params
        self.home = home  # lat, lon, alt AMSL (m), heading (deg)
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
        self.winch_line_m = 0.0
        self.winch_target_m = 0.0
        self.winch_rate_mps = 0.0
        # (lat, lon, alt above home) at 1 Hz of simulated time while armed
        self.track: list[tuple[float, float, float]] = [(self.lat, self.lon, self.alt_m)]
        self.statustexts: list[str] = []
        self.outlets: list[Outlet] = []
        self.signing = mavlink.MAVLinkSigning()  # one key for every link (GCS_Signing.cpp)
        self.missions = MissionStore(self)
        self.failsafes = Failsafes(self)
        self.nav = Navigator(self)
        self.power_w = 0.0
        self._next_track = TRACK_PERIOD_S
        self.next_heartbeat_s = 0.0  # the fleet's clock sends HEARTBEAT at 1 Hz of simulated time
        self._land_idle_s = 0.0
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
        self.emit(self.text_msg(text, severity))

    def text_msg(self, text: str, severity: int = mavlink.MAV_SEVERITY_INFO) -> mavlink.MAVLink_message:
        """A STATUSTEXT (recorded in `statustexts`) for one link or all (GCS_MAVLINK::send_text)."""
        self.statustexts.append(text)
        return mavlink.MAVLink_statustext_message(severity, text.encode()[:50], 0, 0)

    # ---- modes and arming ----------------------------------------------------------------------
    def set_mode(self, mode: int, *, reason: str = "gcs") -> bool:
        """Change flight mode as Copter::set_mode does; False when the mode is refused."""
        try:
            new = Mode(mode)
        except ValueError:
            return False
        if new not in SUPPORTED:
            return False
        if new == self._mode:
            return True
        if not self.nav.can_enter(new):
            self.send_text(f"Flight mode change failed {mode_name(new)}", mavlink.MAV_SEVERITY_WARNING)
            return False
        self._mode = new
        self.nav.enter(new)
        return True

    def prearm_failure(self) -> str | None:
        """First failing pre-arm or arm check, in ArduPilot's words (libraries/AP_Arming/AP_Arming.cpp)."""
        if self.params["ARMING_CHECK"] != 0:
            batt = self.failsafes.battery_arming_problem()
            if batt is not None:
                return f"PreArm: {batt}"
            if self.failsafes.fence.enabled and self.failsafes.fence.breached_types:
                return "PreArm: vehicle outside fence"  # libraries/AC_Fence/AC_Fence.cpp pre_arm_check
        if self._mode not in ARMABLE:
            return "Arm: Mode not armable"  # AP_Arming_Copter::mandatory_checks
        return None

    def arm(self, *, force: bool = False) -> bool:
        """Arm if the checks pass (force skips them, as param2=21196 does); STATUSTEXT on refusal."""
        if self.armed:
            return True
        if not force:
            problem = self.prearm_failure()
            if problem is not None:
                self.send_text(problem, mavlink.MAV_SEVERITY_CRITICAL)
                return False
        self.armed = True
        self.auto_armed = False
        self._land_idle_s = 0.0
        self.set_home_here()
        self.nav.srtl.reset()
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
        return True

    def set_home_here(self) -> None:
        """ArduCopter sets home to the arming position (Copter::set_home_to_current_location)."""
        self.home = (self.lat, self.lon, self.home[2] + self.alt_m, self.k.heading_deg)
        self.k.alt = 0.0 if self.landed else self.k.alt
        self.emit(telemetry.home_position(self))  # GCS::send_message(MSG_HOME) on every home change

    # ---- payload -------------------------------------------------------------------------------
    def release_payload(self) -> None:
        """Gripper opens: whatever hangs falls here (records where)."""
        if self.payload_kg > 0.0:
            self.payload_released_at = (self.lat, self.lon)
            self.send_text("Gripper load released")  # libraries/AP_Gripper/AP_Gripper_Backend.cpp
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
        self._step_winch(dt)
        self._step_power(dt, wind)
        if self.armed and self.landed:
            self._auto_disarm(dt)
        self.failsafes.step(dt)
        self.missions.step()
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

    def _step_winch(self, dt: float) -> None:
        if self.winch_line_m == self.winch_target_m:
            return
        rate = self.winch_rate_mps or self.params["WINCH_RATE_MAX"]
        self.winch_line_m = physics._approach(self.winch_line_m, self.winch_target_m, rate * dt)
        # the package hangs on the line; it is delivered when it reaches the ground and the hook lets go
        if self.payload_kg > 0.0 and not self.landed and self.winch_line_m >= self.alt_m:
            self.payload_released_at = (self.lat, self.lon)
            self.send_text("Winch: payload released on ground")
            self.params.set("SIM_PAYLOAD_KG", 0.0)

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
        """GCS_MAVLINK_Copter::vehicle_system_status (ArduCopter/GCS_MAVLink_Copter.cpp)."""
        if self.failsafes.any_active():
            return mavlink.MAV_STATE_CRITICAL
        if self.landed:  # ap.land_complete
            return mavlink.MAV_STATE_STANDBY
        return mavlink.MAV_STATE_ACTIVE
