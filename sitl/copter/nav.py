"""What each flight mode asks of the position controller.

Behaviour per mode follows ArduCopter's mode_*.cpp at the level a ground station observes:
GUIDED holds or flies to the last SET_POSITION_TARGET / takeoff target (mode_guided.cpp), LOITER /
POSHOLD / ALT_HOLD / STABILIZE hold where they are (no pilot here), BRAKE stops (mode_brake.cpp),
LAND descends in place at LAND_SPEED_HIGH then LAND_SPEED below LAND_ALT_LOW and disarms on touchdown
(mode_land.cpp), RTL climbs to RTL_ALT, returns to the nearest of home and the rally points, loiters
RTL_LOIT_TIME and lands (mode_rtl.cpp); SMART_RTL retraces the recorded path (`smartrtl.py`). AUTO runs
the mission
(`auto.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import geo, physics
from sitl.copter.auto import MissionRunner
from sitl.copter.modes import Mode
from sitl.copter.smartrtl import SmartRtl

if TYPE_CHECKING:
    from sitl.copter.vehicle import SimCopter

TAKEOFF_DONE_M = 0.3  # altitude error under which a takeoff counts as complete
BRAKE_DECEL_MPS2 = 7.5  # ArduCopter/mode_brake.cpp BRAKE_MODE_DECEL_RATE 750 cm/s/s


class Navigator:
    """Turns the current mode into position-controller targets, one step at a time."""

    def __init__(self, v: SimCopter) -> None:
        self.v = v
        self.auto = MissionRunner(v, self)
        self.srtl = SmartRtl(v)
        self.hold: tuple[float, float] | None = None  # horizontal hold point
        self.hold_alt = 0.0
        self.guided_target: tuple[float, float, float] | None = None
        self.takeoff_alt: float | None = None
        self.rtl_phase = ""
        self.rtl_point: tuple[float, float] = (0.0, 0.0)
        self.rtl_timer = 0.0
        self.speed_override: float | None = None  # DO_CHANGE_SPEED, m/s

    # ---- limits from parameters ----------------------------------------------------------------
    def wp_speed(self) -> float:
        return self.speed_override or self.v.params["WPNAV_SPEED"] / 100.0

    def accel(self) -> float:
        return self.v.params["WPNAV_ACCEL"] / 100.0

    def up_speed(self) -> float:
        return self.v.params["WPNAV_SPEED_UP"] / 100.0

    def down_speed(self) -> float:
        return self.v.params["WPNAV_SPEED_DN"] / 100.0

    def land_speed(self) -> float:
        """mode_land.cpp land descent speed: LAND_SPEED_HIGH (or WPNAV_SPEED_DN) high, LAND_SPEED low."""
        p = self.v.params
        if self.v.alt_m > p["LAND_ALT_LOW"] / 100.0:
            high = p["LAND_SPEED_HIGH"] or p["WPNAV_SPEED_DN"]
            return high / 100.0
        return p["LAND_SPEED"] / 100.0

    # ---- mode changes --------------------------------------------------------------------------
    def can_enter(self, mode: Mode, ignore_checks: bool = False) -> bool:
        """Mode::init(ignore_checks) for the modes whose init can fail (ignore_checks: disarmed)."""
        v = self.v
        if mode == Mode.SMART_RTL and not self.srtl.available:
            return False  # ModeSmartRTL::init: g2.smart_rtl.is_active() (home saved, buffer not full)
        if mode == Mode.AUTO:
            if len(v.missions.mission) <= 1 and not ignore_checks:
                return False  # ModeAuto::init: mission.present() || ignore_checks
            if v.armed and v.landed and not v.missions.starts_with_takeoff():
                v.send_text("Auto: Missing Takeoff Cmd", mavlink.MAV_SEVERITY_CRITICAL)  # ModeAuto::init
                return False
        return True

    def enter(self, mode: Mode) -> None:
        v = self.v
        self.hold = (v.lat, v.lon)
        self.hold_alt = v.alt_m
        self.takeoff_alt = None
        self.guided_target = None
        if mode != Mode.SMART_RTL:
            self.srtl.returning = []  # out of SMART_RTL: the rest of the path records on
        if mode == Mode.RTL:
            self._rtl_start()
        elif mode == Mode.SMART_RTL:
            self.srtl.start()
        elif mode == Mode.AUTO and v.armed:
            self.auto.start()  # disarmed, AUTO waits: it cannot be armed, MISSION_START starts it
        elif mode == Mode.BRAKE:
            self.hold = None

    def wants_takeoff(self) -> bool:
        """True while a takeoff is pending, so auto-disarm does not fire under it."""
        if self.v.mode_number == Mode.AUTO:
            return self.auto.wants_takeoff()
        return self.takeoff_alt is not None

    def start_takeoff(self, alt: float) -> bool:
        """GUIDED takeoff (MAV_CMD_NAV_TAKEOFF): only armed, in GUIDED, on the ground."""
        v = self.v
        if not v.armed or v.mode_number != Mode.GUIDED or not v.landed:
            return False
        self.takeoff_alt = max(alt, 1.0)
        v.auto_armed = True
        return True

    def set_guided_target(self, lat: float, lon: float, alt: float) -> bool:
        v = self.v
        if v.mode_number != Mode.GUIDED or not v.armed or v.landed:
            return False
        self.guided_target = (lat, lon, alt)
        self.takeoff_alt = None
        return True

    # ---- primitives used by the modes and the mission runner -----------------------------------
    def fly_to(
        self,
        point: tuple[float, float] | None,
        alt: float,
        dt: float,
        wind: tuple[float, float],
        speed: float | None = None,
    ) -> tuple[float, float]:
        """One step toward (point, alt); returns (horizontal distance, |altitude error|)."""
        k = self.v.k
        accel = BRAKE_DECEL_MPS2 if self.v.mode_number == Mode.BRAKE else self.accel()
        dist = physics.step_horizontal(k, point, speed or self.wp_speed(), accel, wind, dt)
        dz = physics.step_vertical(k, alt, self.up_speed(), self.down_speed(), dt)
        return dist, abs(dz)

    def climb_from_ground(self) -> None:
        if self.v.landed:
            self.v.landed = False

    def descend_to_ground(self, point: tuple[float, float] | None, rate: float, dt: float, wind) -> bool:
        """Descend at `rate` over `point`; True on touchdown (the land detector)."""
        k = self.v.k
        physics.step_horizontal(k, point, self.wp_speed(), self.accel(), wind, dt)
        k.vu = physics._approach(k.vu, -rate, physics.ACCEL_Z_MPS2 * dt)
        k.alt += k.vu * dt
        if k.alt <= 0.0:
            k.alt = 0.0
            k.vn = k.ve = k.vu = 0.0
            self.v.landed = True
            return True
        return False

    def land_step(self, point: tuple[float, float] | None, dt: float, wind) -> bool:
        """LAND behaviour; disarms on touchdown as mode_land.cpp does. True once down."""
        if self.v.landed:
            self.v.disarm()  # mode_land.cpp: landed at ground idle -> disarm
            return True
        if self.descend_to_ground(point, self.land_speed(), dt, wind):
            self.v.disarm()
            return True
        return False

    # ---- the per-step behaviour ------------------------------------------------------------------
    def step(self, dt: float, wind: tuple[float, float]) -> None:
        v = self.v
        mode = v.mode_number
        if mode == Mode.AUTO:
            self.auto.step(dt, wind)
        elif mode == Mode.LAND:
            self.land_step(self.hold, dt, wind)
        elif mode == Mode.RTL:
            self._rtl_step(dt, wind)
        elif mode == Mode.SMART_RTL:
            self.srtl.step(self, dt, wind)
        elif mode == Mode.GUIDED and self.takeoff_alt is not None:
            self.climb_from_ground()
            _, dz = self.fly_to(self.hold, self.takeoff_alt, dt, wind)
            if dz < TAKEOFF_DONE_M:
                self.hold_alt, self.takeoff_alt = self.takeoff_alt, None
        elif mode == Mode.GUIDED and self.guided_target is not None:
            lat, lon, alt = self.guided_target
            self.fly_to((lat, lon), alt, dt, wind)
        elif not v.landed:
            self.fly_to(self.hold, self.hold_alt, dt, wind)

    # ---- RTL (ArduCopter/mode_rtl.cpp) ---------------------------------------------------------------
    def rtl_return_point(self) -> tuple[float, float]:
        """AP_Rally::calc_best_rally_or_home_location: the nearest rally point, unless all are farther than
        RALLY_LIMIT_KM (> 0); it wins over home if nearer, or always with RALLY_INCL_HOME 0."""
        v, p = self.v, self.v.params
        home = (v.home[0], v.home[1])
        points = [
            (geo.distance_m(v.lat, v.lon, lat, lon), (lat, lon)) for lat, lon in v.missions.rally_points()
        ]
        if not points:
            return home
        nearest_d, nearest = min(points)
        if p["RALLY_LIMIT_KM"] > 0 and nearest_d > p["RALLY_LIMIT_KM"] * 1000.0:
            return home  # find_nearest_rally_point: all beyond the limit, use home
        if p["RALLY_INCL_HOME"] == 0 or nearest_d < geo.distance_m(v.lat, v.lon, *home):
            return nearest
        return home

    def _rtl_start(self) -> None:
        v = self.v
        self.rtl_point = self.rtl_return_point()
        self.rtl_timer = 0.0
        self.rtl_phase = "land" if v.landed else "climb"
        # ModeRTL::compute_return_target: return at max(RTL_ALT, current altitude)
        self.hold_alt = max(v.params["RTL_ALT"] / 100.0, v.alt_m)

    def _rtl_step(self, dt: float, wind) -> None:
        v = self.v
        p = v.params
        if self.rtl_phase == "climb":
            _, dz = self.fly_to(self.hold, self.hold_alt, dt, wind)
            if dz < 0.5:
                self.rtl_phase = "return"
        elif self.rtl_phase == "return":
            speed = (p["RTL_SPEED"] / 100.0) or self.wp_speed()
            dist, dz = self.fly_to(self.rtl_point, self.hold_alt, dt, wind, speed)
            if dist < p["WPNAV_RADIUS"] / 100.0 and v.groundspeed_mps < 0.5:
                self.rtl_phase = "loiter"
        elif self.rtl_phase == "loiter":
            self.fly_to(self.rtl_point, self.hold_alt, dt, wind)
            self.rtl_timer += dt
            if self.rtl_timer >= p["RTL_LOIT_TIME"] / 1000.0:
                final = p["RTL_ALT_FINAL"] / 100.0
                self.rtl_phase = "final" if final > 0 else "land"
        elif self.rtl_phase == "final":
            self.fly_to(self.rtl_point, p["RTL_ALT_FINAL"] / 100.0, dt, wind)
        else:
            self.land_step(self.rtl_point, dt, wind)
