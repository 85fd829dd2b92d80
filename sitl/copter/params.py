"""The parameter table: ArduPilot names and meanings for everything a ground station here touches.

Names, units and defaults follow ArduPilot (sources next to each group); where our delivery airframe
differs from ArduPilot's generic default the value is the airframe's (as a `--defaults` file would set
it) and says so. `SIM_PAYLOAD_KG`, `SIM_EMPTY_KG` and `WINCH_LEN_MAX` are this simulator's own extensions.

Names depend on the firmware (`FIRMWARES`): ArduCopter 4.7 moved the GCS identity parameters into the
`MAV_` group (libraries/GCS_MAVLink/GCS.cpp `GCS::var_info` "_SYSID" / "_GCS_SYSID" under
ArduCopter/Parameters.cpp `GOBJECT(_gcs, "MAV", GCS)`; the old values are converted by the
`{ k_param_sysid_this_mav_old, ..., "MAV_SYSID" }` table in Parameters.cpp convert_parameters). 4.4 to 4.6
call them `SYSID_THISMAV` / `SYSID_MYGCS`. The simulator's own code reads them by their 4.7 name whatever
the firmware (`ParamStore[...]` resolves it); on the wire, and in `set` / `in`, only the firmware's names
exist, so a 4.6 copter ignores `MAV_SYSID` exactly as a real one does.

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


@dataclass(frozen=True)
class Firmware:
    """An ArduCopter release as AUTOPILOT_VERSION tells it (libraries/AP_Common/AP_FWVersion.h)."""

    major: int
    minor: int
    patch: int
    fw_type: int  # FIRMWARE_VERSION_TYPE: DEV 0 ... OFFICIAL 255 (ArduCopter/version.h FW_TYPE)

    @property
    def flight_sw_version(self) -> int:
        """GCS_MAVLINK::send_autopilot_version (libraries/GCS_MAVLink/GCS_Common.cpp):
        major << 24 | minor << 16 | patch << 8 | fw_type."""
        return self.major << 24 | self.minor << 16 | self.patch << 8 | self.fw_type

    @property
    def renamed_sysid(self) -> bool:
        """True from 4.7 on: MAV_SYSID / MAV_GCS_SYSID instead of SYSID_THISMAV / SYSID_MYGCS."""
        return (self.major, self.minor) >= (4, 7)


# "4.7" is master of 2025 (ArduCopter/version.h: FIRMWARE_VERSION 4,7,0,FIRMWARE_VERSION_TYPE_DEV);
# the others are the last official release of each line.
FIRMWARES: dict[str, Firmware] = {
    "4.7": Firmware(4, 7, 0, mavlink.FIRMWARE_VERSION_TYPE_DEV),
    "4.6": Firmware(4, 6, 3, mavlink.FIRMWARE_VERSION_TYPE_OFFICIAL),
    "4.5": Firmware(4, 5, 7, mavlink.FIRMWARE_VERSION_TYPE_OFFICIAL),
    "4.4": Firmware(4, 4, 4, mavlink.FIRMWARE_VERSION_TYPE_OFFICIAL),
}
DEFAULT_FIRMWARE = "4.7"

# The GCS identity parameters under their 4.7 names (libraries/GCS_MAVLink/GCS.cpp: AP_Int16 sysid
# default MAV_SYSID_DEFAULT 1, mav_gcs_sysid default 255) and their names before 4.7.
IDENTITY: dict[str, ParamDef] = {"MAV_SYSID": ParamDef(1, INT16), "MAV_GCS_SYSID": ParamDef(255, INT16)}
OLD_NAMES: dict[str, str] = {"MAV_SYSID": "SYSID_THISMAV", "MAV_GCS_SYSID": "SYSID_MYGCS"}

# SRV_Channel::Function values the release devices look for (libraries/SRV_Channel/SRV_Channel.h).
SERVO_GRIPPER = 28  # k_gripper
SERVO_WINCH = 88  # k_winch
SERVO_OUTPUTS = 16  # SERVO1..SERVO16 (NUM_SERVO_CHANNELS)

DEFAULTS: dict[str, ParamDef] = {
    # libraries/AP_Arming/AP_Arming.cpp
    "ARMING_CHECK": ParamDef(1, INT32),
    # ArduCopter/Parameters.cpp
    "DISARM_DELAY": ParamDef(10, INT8),
    "FS_GCS_ENABLE": ParamDef(0, INT8),
    "FS_GCS_TIMEOUT": ParamDef(5, REAL32),
    # ParametersG2 FS_OPTIONS: default (float)Copter::FailsafeOption::GCS_CONTINUE_IF_PILOT_CONTROL (16)
    "FS_OPTIONS": ParamDef(16, INT32),
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
    # libraries/AP_Gripper/AP_Gripper.cpp: ArduPilot defaults GRIP_ENABLE 0, GRIP_TYPE 0 (0 none, 1 servo,
    # 2 EPM); our airframe has a servo gripper on output 9 (SERVO9_FUNCTION 28 below).
    "GRIP_ENABLE": ParamDef(1, INT8),  # airframe
    "GRIP_TYPE": ParamDef(1, INT8),  # airframe: servo
    # libraries/AP_Winch/AP_Winch.cpp: WINCH_TYPE 0 none, 1 PWM, 2 Daiwa (ArduPilot default 0); our
    # airframe has a PWM winch on output 10 (SERVO10_FUNCTION 88 below).
    "WINCH_TYPE": ParamDef(1, INT8),  # airframe: PWM
    "WINCH_RATE_MAX": ParamDef(1.0, REAL32),  # m/s
    "WINCH_POS_P": ParamDef(1.0, REAL32),  # line length error -> rate (AP_Winch_PWM::control_winch)
    "WINCH_OPTIONS": ParamDef(7, INT16),  # bit 0 spin freely on startup, 1 verbose output, 2 retry (Daiwa)
    "WINCH_LEN_MAX": ParamDef(30.0, REAL32),  # m (our extension's cap of the line)
    # ArduCopter/Parameters.cpp ParametersG2::var_info2, used by mode_auto.cpp PayloadPlace::run
    "PLDP_THRESH": ParamDef(0.9, REAL32),  # thrust ratio below which touchdown is detected
    "PLDP_RNG_MAX": ParamDef(0.0, REAL32),  # m; rangefinder altitude gate, 0 = off
    "PLDP_DELAY": ParamDef(0.0, REAL32),  # s after release before the climb
    "PLDP_SPEED_DN": ParamDef(0.0, REAL32),  # m/s; 0 = LAND_SPEED (capped by WPNAV_SPEED_DN)
    # libraries/SRV_Channel/SRV_Channel.cpp SERVOn_FUNCTION (default 0): a quad's motors take outputs 1-4
    # (AP_Motors::add_motor_num -> SRV_Channels::set_aux_channel_default: 33..36 = k_motor1..4); the
    # airframe's gripper is on output 9 and its winch on output 10.
    **{f"SERVO{n}_FUNCTION": ParamDef(0, INT16) for n in range(1, SERVO_OUTPUTS + 1)},
    **{f"SERVO{n}_FUNCTION": ParamDef(32 + n, INT16) for n in range(1, 5)},
    "SERVO9_FUNCTION": ParamDef(SERVO_GRIPPER, INT16),  # airframe
    "SERVO10_FUNCTION": ParamDef(SERVO_WINCH, INT16),  # airframe
    # libraries/AP_Rally/AP_Rally.cpp (copter defaults)
    "RALLY_LIMIT_KM": ParamDef(0.3, REAL32),  # rally points farther than this are ignored (0 = no limit)
    "RALLY_INCL_HOME": ParamDef(1, INT8),  # 1: home competes with the rally points
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
    """Named values with ArduPilot's ordering (sorted names give each a stable index).

    `firmware` picks the names (see the module docstring); `overrides` must use that firmware's names, as
    a defaults file for that release would (an unknown name raises KeyError).
    """

    def __init__(
        self, overrides: Mapping[str, float] | None = None, firmware: str = DEFAULT_FIRMWARE
    ) -> None:
        if firmware not in FIRMWARES:
            raise ValueError(f"firmware must be one of {', '.join(FIRMWARES)}")
        self.firmware = FIRMWARES[firmware]
        renamed = self.firmware.renamed_sysid
        self._wire = {name: (name if renamed else OLD_NAMES[name]) for name in IDENTITY}  # 4.7 name -> ours
        self._defs = {self._wire[name]: d for name, d in IDENTITY.items()} | DEFAULTS
        self._values = {name: float(d.default) for name, d in self._defs.items()}
        self._names = sorted(self._values)
        self._listeners: list[Listener] = []
        for name, value in (overrides or {}).items():
            if name not in self._values:
                raise KeyError(f"unknown parameter {name}")
            self._values[name] = float(value)

    def wire_name(self, name: str) -> str:
        """This firmware's name for a parameter known by its 4.7 name (MAV_SYSID -> SYSID_THISMAV on 4.6)."""
        return self._wire.get(name, name)

    def __getitem__(self, name: str) -> float:
        """Value by this firmware's name or by the 4.7 name (the simulator's own code uses the latter)."""
        return self._values[self.wire_name(name)]

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
        return self._defs[name].kind

    def on_change(self, listener: Listener) -> None:
        """Call `listener(name, value)` after every accepted set (params that drive the physics)."""
        self._listeners.append(listener)

    def set(self, name: str, value: float) -> bool:
        """Set a parameter by this firmware's name; integers are truncated as AP_Param's cast does.

        False if refused: GCS_Param.cpp handle_param_set returns without an answer when AP_Param::find
        does not know the name, or when the value is NaN or infinite.
        """
        if name not in self._values or math.isnan(value) or math.isinf(value):
            return False
        if self._defs[name].kind != REAL32:
            value = float(round(value))
        self._values[name] = float(value)
        for listener in self._listeners:
            listener(name, float(value))
        return True
