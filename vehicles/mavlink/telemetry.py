"""Telemetry: MAVLink messages folded into a typed `DroneState`, and the events worth telling a controller.

The state is updated in place from the receive loop (no copies, no polling); readers take it as it is.
Events go to every subscriber's queue (`async for ev in telemetry.events()`) and to callbacks. Event
sources, as ArduPilot sends them:
- mode: HEARTBEAT.custom_mode, numbered as in ArduCopter/mode.h `Mode::Number`;
- battery failsafe: STATUSTEXT "Battery 1 is low 10.50V used 4000 mAh" (libraries/AP_BattMonitor/
  AP_BattMonitor.cpp `check_failsafes`), and BATTERY_STATUS.charge_state LOW/CRITICAL;
- fence: FENCE_STATUS.breach_status / breach_count (libraries/AC_Fence/AC_Fence.cpp `send_fence_status`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from vehicles.mavlink.connection import DroneConnection

__all__ = [
    "COPTER_MODES",
    "ArmedChanged",
    "BatteryFailsafe",
    "DroneEvent",
    "DroneState",
    "FenceBreach",
    "LinkLost",
    "LinkRestored",
    "MissionItemReached",
    "ModeChanged",
    "StatusText",
    "Telemetry",
    "mode_number",
]

# ArduCopter/mode.h, enum class Mode::Number
COPTER_MODES: dict[int, str] = {
    0: "STABILIZE", 1: "ACRO", 2: "ALT_HOLD", 3: "AUTO", 4: "GUIDED", 5: "LOITER", 6: "RTL", 7: "CIRCLE",
    9: "LAND", 11: "DRIFT", 13: "SPORT", 14: "FLIP", 15: "AUTOTUNE", 16: "POSHOLD", 17: "BRAKE", 18: "THROW",
    19: "AVOID_ADSB", 20: "GUIDED_NOGPS", 21: "SMART_RTL", 22: "FLOWHOLD", 23: "FOLLOW", 24: "ZIGZAG",
    25: "SYSTEMID", 26: "AUTOROTATE", 27: "AUTO_RTL", 28: "TURTLE",
}  # fmt: skip
_MODE_NUMBERS = {name: number for number, name in COPTER_MODES.items()}
READY_TEXT = "ArduPilot Ready"  # libraries/AP_Vehicle/AP_Vehicle.cpp, the end of AP_Vehicle::setup()
_BATTERY_TEXT = re.compile(r"Battery \d+ is (low|critical)", re.IGNORECASE)


def mode_number(name: str) -> int:
    """ArduCopter custom mode number for a mode name ("RTL" -> 6), or ValueError naming the valid ones."""
    try:
        return _MODE_NUMBERS[name.upper()]
    except KeyError:
        raise ValueError(f"unknown ArduCopter mode {name!r}; known: {', '.join(_MODE_NUMBERS)}") from None


@dataclass
class DroneState:
    """The latest known state of one drone; None where nothing was heard yet. SI units, WGS84 degrees."""

    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None  # relative to home
    alt_amsl_m: float | None = None
    groundspeed: float | None = None  # m/s
    climb_rate: float | None = None  # m/s, up positive
    heading: float | None = None  # degrees
    battery_voltage: float | None = None  # V
    battery_remaining: float | None = None  # fraction 0..1
    battery_mah_used: float | None = None
    battery_energy_wh: float | None = None  # BATTERY_STATUS.energy_consumed (hJ -> Wh), when sent
    battery_charge_state: int | None = None  # MAV_BATTERY_CHARGE_STATE
    mode: str | None = None
    custom_mode: int | None = None
    armed: bool = False
    system_status: int | None = None  # MAV_STATE
    prearm_ok: bool | None = None  # SYS_STATUS MAV_SYS_STATUS_PREARM_CHECK healthy (None: not reported)
    mission_current: int | None = None
    mission_reached: int | None = None
    fence_breached: bool = False
    fence_breach_count: int = 0
    fence_breach_type: int | None = None
    home: tuple[float, float, float] | None = None  # lat, lon, alt AMSL m
    ekf_flags: int | None = None  # EKF_STATUS_REPORT.flags (EKF_STATUS_FLAGS), when reported
    started: bool = False  # "ArduPilot Ready" heard (AP_Vehicle::setup's last words; sent once per boot)
    last_heartbeat: float | None = None  # time.monotonic()

    @property
    def position_ok(self) -> bool:
        """A usable absolute position: reported, and (when the EKF reports) horizontally absolute and not
        the constant-position mode an EKF without GPS holds (AP_NavEKF3 `send_status_report`)."""
        if self.lat is None or self.lon is None:
            return False
        if self.ekf_flags is None:
            return True
        flags = self.ekf_flags
        return bool(flags & mavlink.EKF_POS_HORIZ_ABS) and not flags & (
            mavlink.EKF_CONST_POS_MODE | mavlink.EKF_UNINITIALIZED
        )

    def heartbeat_age(self) -> float | None:
        """Seconds since the last heartbeat (None before the first)."""
        return None if self.last_heartbeat is None else time.monotonic() - self.last_heartbeat


@dataclass
class DroneEvent:
    """Base of the events; `t` is time.monotonic() at reception."""

    t: float = field(default_factory=time.monotonic, kw_only=True)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able record (for DeliveryResult.events and the store)."""
        return {"event": type(self).__name__, **asdict(self)}


@dataclass
class StatusText(DroneEvent):
    severity: int
    text: str


@dataclass
class ModeChanged(DroneEvent):
    old: str | None
    new: str


@dataclass
class ArmedChanged(DroneEvent):
    armed: bool


@dataclass
class MissionItemReached(DroneEvent):
    seq: int


@dataclass
class FenceBreach(DroneEvent):
    breach_type: int
    breach_count: int


@dataclass
class BatteryFailsafe(DroneEvent):
    level: str  # "low" or "critical"
    text: str


@dataclass
class LinkLost(DroneEvent):
    silent_s: float


@dataclass
class LinkRestored(DroneEvent):
    down_s: float


class Telemetry:
    """Keeps `state` current from a connection's messages and fans events out to subscribers."""

    def __init__(self, conn: DroneConnection) -> None:
        self.conn = conn
        self.state = DroneState()
        self.statustexts: list[StatusText] = []  # recent texts (bounded), for pre-arm reasons
        self._queues: list[asyncio.Queue[DroneEvent]] = []
        self._callbacks: list[Callable[[DroneEvent], None]] = []
        self._link_was_lost = False
        self._battery_level = 0
        conn.add_listener(self._on_message)
        conn.add_link_listener(self._on_link)

    # -- subscription ---------------------------------------------------------------------------------

    def on_event(self, callback: Callable[[DroneEvent], None]) -> Callable[[], None]:
        """Call `callback(event)` for every event; returns a remover."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    @contextlib.contextmanager
    def subscribe(self) -> Any:
        """A queue receiving every event from now on (while the `with` block lasts)."""
        q: asyncio.Queue[DroneEvent] = asyncio.Queue()
        self._queues.append(q)
        try:
            yield q
        finally:
            self._queues.remove(q)

    async def events(self) -> AsyncIterator[DroneEvent]:
        """Async iterator over events from now on."""
        with self.subscribe() as q:
            while True:
                yield await q.get()

    def _emit(self, event: DroneEvent) -> None:
        for q in self._queues:
            q.put_nowait(event)
        for cb in list(self._callbacks):
            cb(event)

    # -- message handling -----------------------------------------------------------------------------

    def _on_link(self, up: bool, seconds: float) -> None:
        if up:
            if self._link_was_lost:
                self._emit(LinkRestored(down_s=seconds))
            self._link_was_lost = False
        else:
            self._link_was_lost = True
            self._emit(LinkLost(silent_s=seconds))

    def _on_message(self, msg: Any) -> None:
        handler = getattr(self, f"_on_{msg.get_type()}", None)
        if handler is not None:
            handler(msg)

    def _on_HEARTBEAT(self, msg: Any) -> None:
        if msg.get_srcComponent() != self.conn.target_component:
            return
        s = self.state
        s.last_heartbeat = time.monotonic()
        s.system_status = msg.system_status
        armed = bool(msg.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED)
        if armed != s.armed:
            s.armed = armed
            self._emit(ArmedChanged(armed=armed))
        if msg.custom_mode != s.custom_mode:
            old = s.mode
            s.custom_mode = msg.custom_mode
            s.mode = COPTER_MODES.get(msg.custom_mode, f"MODE_{msg.custom_mode}")
            self._emit(ModeChanged(old=old, new=s.mode))

    def _on_GLOBAL_POSITION_INT(self, msg: Any) -> None:
        s = self.state
        if msg.lat == 0 and msg.lon == 0:
            # ArduPilot sends zeros before its EKF has an origin (GCS_Common.cpp send_global_position_int
            # ignores get_location's failure): that is "no position", not a fix at 0 N 0 E.
            s.lat = s.lon = None
            return
        s.lat, s.lon = msg.lat / 1e7, msg.lon / 1e7
        s.alt_m, s.alt_amsl_m = msg.relative_alt / 1000.0, msg.alt / 1000.0
        s.groundspeed = math.hypot(msg.vx, msg.vy) / 100.0
        s.climb_rate = -msg.vz / 100.0
        if msg.hdg != 65535:
            s.heading = msg.hdg / 100.0

    def _on_VFR_HUD(self, msg: Any) -> None:
        self.state.groundspeed = float(msg.groundspeed)
        self.state.heading = float(msg.heading)

    def _on_SYS_STATUS(self, msg: Any) -> None:
        s = self.state
        # ArduPilot reports its pre-arm checks as a SYS_STATUS "sensor" (GCS_Common.cpp send_sys_status).
        if msg.onboard_control_sensors_present & mavlink.MAV_SYS_STATUS_PREARM_CHECK:
            s.prearm_ok = bool(msg.onboard_control_sensors_health & mavlink.MAV_SYS_STATUS_PREARM_CHECK)
        if msg.voltage_battery not in (0, 65535):
            s.battery_voltage = msg.voltage_battery / 1000.0
        if msg.battery_remaining >= 0:
            s.battery_remaining = msg.battery_remaining / 100.0

    def _on_BATTERY_STATUS(self, msg: Any) -> None:
        s = self.state
        if msg.id != 0:
            return
        if msg.current_consumed >= 0:
            s.battery_mah_used = float(msg.current_consumed)
        if msg.energy_consumed >= 0:
            s.battery_energy_wh = msg.energy_consumed * 100.0 / 3600.0  # hJ -> Wh
        if msg.battery_remaining >= 0:
            s.battery_remaining = msg.battery_remaining / 100.0
        cells = [v for v in msg.voltages if v != 65535]
        if cells and s.battery_voltage is None:
            s.battery_voltage = sum(cells) / 1000.0
        state = getattr(msg, "charge_state", 0) or 0
        s.battery_charge_state = state
        level = {mavlink.MAV_BATTERY_CHARGE_STATE_LOW: 1, mavlink.MAV_BATTERY_CHARGE_STATE_CRITICAL: 2}.get(
            state, 0
        )
        if level > self._battery_level:
            self._battery_level = level
            name = "low" if level == 1 else "critical"
            self._emit(BatteryFailsafe(level=name, text=f"BATTERY_STATUS charge state {name}"))

    def _on_EKF_STATUS_REPORT(self, msg: Any) -> None:
        self.state.ekf_flags = int(msg.flags)

    def _on_STATUSTEXT(self, msg: Any) -> None:
        ev = StatusText(severity=msg.severity, text=msg.text)
        if msg.text == READY_TEXT:
            self.state.started = True
        self.statustexts.append(ev)
        del self.statustexts[:-50]
        self._emit(ev)
        m = _BATTERY_TEXT.search(msg.text)
        if m:
            level = 1 if m.group(1).lower() == "low" else 2
            if level > self._battery_level:
                self._battery_level = level
            self._emit(BatteryFailsafe(level=m.group(1).lower(), text=msg.text))

    def _on_MISSION_CURRENT(self, msg: Any) -> None:
        self.state.mission_current = msg.seq

    def _on_MISSION_ITEM_REACHED(self, msg: Any) -> None:
        if self.state.mission_reached != msg.seq:
            self.state.mission_reached = msg.seq
            self._emit(MissionItemReached(seq=msg.seq))

    def _on_FENCE_STATUS(self, msg: Any) -> None:
        s = self.state
        breached = bool(msg.breach_status)
        if (breached and not s.fence_breached) or msg.breach_count > s.fence_breach_count:
            self._emit(FenceBreach(breach_type=msg.breach_type, breach_count=msg.breach_count))
        s.fence_breached, s.fence_breach_count, s.fence_breach_type = (
            breached,
            msg.breach_count,
            msg.breach_type,
        )

    def _on_HOME_POSITION(self, msg: Any) -> None:
        self.state.home = (msg.latitude / 1e7, msg.longitude / 1e7, msg.altitude / 1000.0)
