"""The parameter table: ArduPilot names and meanings for everything a ground station here touches.

Names, units and defaults follow ArduPilot (sources next to each group); where our delivery airframe
differs from ArduPilot's generic default the value is the airframe's (as a `--defaults` file would set
it) and says so. `SIM_PAYLOAD_KG` and `SIM_EMPTY_KG` are this simulator's own extensions.

Values travel as float casts, as ArduPilot does (MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_C_CAST), with the
MAV_PARAM_TYPE of the underlying AP_Param so clients show integers as integers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pymavlink.dialects.v20 import ardupilotmega as mavlink

INT8 = mavlink.MAV_PARAM_TYPE_INT8
INT16 = mavlink.MAV_PARAM_TYPE_INT16
INT32 = mavlink.MAV_PARAM_TYPE_INT32
REAL32 = mavlink.MAV_PARAM_TYPE_REAL32


@dataclass(frozen=True)
class ParamDef:
    """One parameter: default value and its MAV_PARAM_TYPE."""

    default: float
    kind: int = REAL32


DEFAULTS: dict[str, ParamDef] = {
    # libraries/GCS_MAVLink/GCS.cpp (SYSID_* live in the vehicle's Parameters.cpp)
    "SYSID_THISMAV": ParamDef(1, INT16),
    "SYSID_MYGCS": ParamDef(255, INT16),
    # libraries/AP_Arming/AP_Arming.cpp
    "ARMING_CHECK": ParamDef(1, INT32),
    # ArduCopter/Parameters.cpp
    "DISARM_DELAY": ParamDef(10, INT8),
    "FS_GCS_ENABLE": ParamDef(0, INT8),
    "FS_GCS_TIMEOUT": ParamDef(5, REAL32),
    "FS_OPTIONS": ParamDef(0, INT32),
    "RTL_ALT": ParamDef(1500, INT32),  # cm
    "RTL_ALT_FINAL": ParamDef(0, INT32),  # cm; 0 = land
    "RTL_LOIT_TIME": ParamDef(5000, INT32),  # ms
    "RTL_SPEED": ParamDef(0, INT16),  # cm/s; 0 = WPNAV_SPEED
    "LAND_SPEED": ParamDef(50, INT16),  # cm/s, final descent
    "LAND_SPEED_HIGH": ParamDef(0, INT16),  # cm/s; 0 = WPNAV_SPEED_DN
    "LAND_ALT_LOW": ParamDef(1000, INT16),  # cm
    "PILOT_SPEED_UP": ParamDef(250, INT16),
    # libraries/AC_WPNav/AC_WPNav.cpp; WPNAV_SPEED is our delivery airframe's (ArduPilot default 1000)
    "WPNAV_SPEED": ParamDef(2200, REAL32),
    "WPNAV_SPEED_UP": ParamDef(250, REAL32),
    "WPNAV_SPEED_DN": ParamDef(150, REAL32),
    "WPNAV_ACCEL": ParamDef(250, REAL32),
    "WPNAV_RADIUS": ParamDef(200, REAL32),
    # libraries/AP_BattMonitor/AP_BattMonitor_Params.cpp; voltages and capacity are our 12S pack's
    "BATT_MONITOR": ParamDef(4, INT8),
    "BATT_CAPACITY": ParamDef(13600, INT32),  # mAh
    "BATT_LOW_VOLT": ParamDef(42.0, REAL32),  # 3.5 V/cell (ArduPilot default 10.5 is a 3S pack's)
    "BATT_CRT_VOLT": ParamDef(40.8, REAL32),  # 3.4 V/cell
    "BATT_LOW_MAH": ParamDef(0, INT32),
    "BATT_CRT_MAH": ParamDef(0, INT32),
    "BATT_LOW_TIMER": ParamDef(10, INT32),  # s below BATT_LOW_VOLT before the failsafe
    "BATT_FS_VOLTSRC": ParamDef(0, INT8),  # 0 raw voltage, 1 sag-compensated
    "BATT_FS_LOW_ACT": ParamDef(2, INT8),  # airframe: RTL (ArduPilot default 0 = none)
    "BATT_FS_CRT_ACT": ParamDef(1, INT8),  # airframe: Land (ArduPilot default 0 = none)
    "BATT_ARM_VOLT": ParamDef(0, REAL32),
    "BATT_ARM_MAH": ParamDef(0, INT32),
    # libraries/AC_Fence/AC_Fence.cpp
    "FENCE_ENABLE": ParamDef(0, INT8),
    "FENCE_TYPE": ParamDef(7, INT8),  # bit0 alt max, bit1 circle, bit2 polygon, bit3 alt min
    "FENCE_ACTION": ParamDef(1, INT8),  # 0 report, 1 RTL or land, 2 land, 3 SmartRTL/RTL/land, 4 brake/land
    "FENCE_ALT_MAX": ParamDef(100, REAL32),  # m
    "FENCE_ALT_MIN": ParamDef(-10, REAL32),  # m
    "FENCE_RADIUS": ParamDef(300, REAL32),  # m
    "FENCE_MARGIN": ParamDef(2, REAL32),  # m
    "FENCE_TOTAL": ParamDef(0, INT8),
    # libraries/AP_Gripper/AP_Gripper.cpp, libraries/AP_Winch/AP_Winch.cpp
    "GRIP_ENABLE": ParamDef(1, INT8),
    "GRIP_TYPE": ParamDef(1, INT8),  # servo
    "WINCH_TYPE": ParamDef(3, INT8),  # 3 = Daiwa; any non-zero enables the winch here
    "WINCH_RATE_MAX": ParamDef(1.0, REAL32),  # m/s
    "WINCH_LEN_MAX": ParamDef(30.0, REAL32),  # m (our extension's cap of the line)
    # ArduCopter/mode_auto.cpp payload place (4.4+ names)
    "PLDP_SPEED_DN": ParamDef(0, REAL32),  # cm/s; 0 = LAND_SPEED
    "PLDP_DELAY": ParamDef(0, REAL32),  # s on the ground before release
    # libraries/AP_Mission/AP_Mission.cpp
    "MIS_RESTART": ParamDef(0, INT8),
    "MIS_OPTIONS": ParamDef(0, INT16),
    # libraries/SITL/SITL.cpp (+ our SIM_PAYLOAD_KG / SIM_EMPTY_KG)
    "SIM_SPEEDUP": ParamDef(1, REAL32),
    "SIM_WIND_SPD": ParamDef(0, REAL32),  # m/s
    "SIM_WIND_DIR": ParamDef(180, REAL32),  # degrees the wind comes FROM
    "SIM_BATT_CAP_AH": ParamDef(13.6, REAL32),  # the pack's true capacity
    "SIM_BATT_VOLTAGE": ParamDef(50.4, REAL32),  # full 12S
    "SIM_PAYLOAD_KG": ParamDef(0, REAL32),
    "SIM_EMPTY_KG": ParamDef(6.0, REAL32),
}

Listener = Callable[[str, float], None]


class ParamStore:
    """Named values with ArduPilot's ordering (sorted names give each a stable index)."""

    def __init__(self, overrides: Mapping[str, float] | None = None) -> None:
        self._values = {name: float(d.default) for name, d in DEFAULTS.items()}
        self._names = sorted(self._values)
        self._listeners: list[Listener] = []
        for name, value in (overrides or {}).items():
            if name not in self._values:
                raise KeyError(f"unknown parameter {name}")
            self._values[name] = float(value)

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __len__(self) -> int:
        return len(self._names)

    def names(self) -> list[str]:
        """Names in index order."""
        return list(self._names)

    def index(self, name: str) -> int:
        return self._names.index(name)

    def kind(self, name: str) -> int:
        return DEFAULTS[name].kind

    def on_change(self, listener: Listener) -> None:
        """Call `listener(name, value)` after every accepted set (params that drive the physics)."""
        self._listeners.append(listener)

    def set(self, name: str, value: float) -> bool:
        """Set a known parameter; integers are truncated as AP_Param's cast does. False if refused."""
        if name not in self._values or math.isnan(value) or math.isinf(value):
            # GCS_Param.cpp handle_param_set: unknown names and NaN/inf are ignored without an answer
            return False
        if DEFAULTS[name].kind != REAL32:
            value = float(round(value))
        self._values[name] = float(value)
        for listener in self._listeners:
            listener(name, float(value))
        return True
