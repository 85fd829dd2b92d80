"""Builders for every message the simulator sends, filled the way ArduPilot fills them.

Field conventions from libraries/GCS_MAVLink/GCS_Common.cpp (send_sys_status, send_battery_status,
send_global_position_int, send_vfr_hud, send_home_position ...) and ArduCopter/GCS_MAVLink_Copter.cpp
(base_mode, vehicle_system_status). HEARTBEAT: MAV_TYPE_QUADROTOR, MAV_AUTOPILOT_ARDUPILOTMEGA.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import geo, power
from sitl.copter.modes import GUIDED_FLAG_MODES

if TYPE_CHECKING:
    from sitl.copter.vehicle import SimCopter

M = mavlink
# SYS_STATUS sensor bits we claim present/enabled/healthy: gyro, accel, mag, baro, GPS, motors, battery,
# AHRS (healthy once the EKF has aligned); geofence and the pre-arm check are added by sys_status.
_SENSORS = (
    M.MAV_SYS_STATUS_SENSOR_3D_GYRO | M.MAV_SYS_STATUS_SENSOR_3D_ACCEL | M.MAV_SYS_STATUS_SENSOR_3D_MAG
    | M.MAV_SYS_STATUS_SENSOR_ABSOLUTE_PRESSURE | M.MAV_SYS_STATUS_SENSOR_GPS
    | M.MAV_SYS_STATUS_SENSOR_MOTOR_OUTPUTS | M.MAV_SYS_STATUS_SENSOR_BATTERY | M.MAV_SYS_STATUS_AHRS
)  # fmt: skip
# EKF_STATUS_REPORT flags (NavEKF3_core::updateFilterStatus): aligned without GPS the EKF holds a constant
# position (AID_NONE); with GPS it has absolute horizontal position (AID_ABSOLUTE), predicted too.
EKF_NO_POSITION = (
    M.EKF_ATTITUDE | M.EKF_VELOCITY_HORIZ | M.EKF_VELOCITY_VERT | M.EKF_POS_VERT_ABS | M.EKF_CONST_POS_MODE
)
EKF_POSITION = (
    M.EKF_ATTITUDE | M.EKF_VELOCITY_HORIZ | M.EKF_VELOCITY_VERT | M.EKF_POS_HORIZ_REL | M.EKF_POS_HORIZ_ABS
    | M.EKF_POS_VERT_ABS | M.EKF_PRED_POS_HORIZ_REL | M.EKF_PRED_POS_HORIZ_ABS
)  # fmt: skip
# What the scheduler's delay callback sends during setup (GCS_MAVLINK::should_send_message_in_delay_callback).
SENT_DURING_SETUP = frozenset({M.MAVLINK_MSG_ID_HEARTBEAT, M.MAVLINK_MSG_ID_AUTOPILOT_VERSION})


def base_mode(v: SimCopter) -> int:
    """GCS_MAVLINK_Copter::base_mode (ArduCopter/GCS_MAVLink_Copter.cpp):

    STABILIZE_ENABLED | MANUAL_INPUT_ENABLED | CUSTOM_MODE_ENABLED (= 81), + GUIDED_ENABLED (8) while
    AC_PosControl::is_active_NE() (the horizontal position controller ran in the last scheduler tick),
    + SAFETY_ARMED (128) when armed. The position controller runs in every mode of GUIDED_FLAG_MODES, on the
    ground too. During setup the scheduler has not ticked yet: ticks32() and the controller's
    _last_update_ne_ticks are both 0, so is_active_NE() holds and a booting copter in STABILIZE says 89.
    """
    flags = M.MAV_MODE_FLAG_STABILIZE_ENABLED | M.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
    flags |= M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
    if v.mode_number in GUIDED_FLAG_MODES or v.boot.initialising:
        flags |= M.MAV_MODE_FLAG_GUIDED_ENABLED
    if v.armed:
        flags |= M.MAV_MODE_FLAG_SAFETY_ARMED
    return flags


def heartbeat(v: SimCopter) -> mavlink.MAVLink_message:
    return M.MAVLink_heartbeat_message(
        M.MAV_TYPE_QUADROTOR,
        M.MAV_AUTOPILOT_ARDUPILOTMEGA,
        base_mode(v),
        int(v.mode_number),
        v.system_status(),
        3,
    )


def _boot_ms(v: SimCopter) -> int:
    return int(v.time_s * 1000) & 0xFFFFFFFF


def sys_status(v: SimCopter) -> mavlink.MAVLink_message | None:
    """GCS_MAVLINK::send_sys_status: not before setup is done (GCS_Copter::vehicle_initialised). The
    pre-arm bit (GCS::update_sensor_status_flags) is present always, enabled while ARMING_CHECK is not 0,
    healthy when armed or when the current mode's pre-arm checks pass (AP_Notify::flags.pre_arm_check)."""
    if v.boot.initialising:
        return None
    prearm = M.MAV_SYS_STATUS_PREARM_CHECK
    present = _SENSORS | M.MAV_SYS_STATUS_GEOFENCE | prearm
    enabled = _SENSORS | (M.MAV_SYS_STATUS_GEOFENCE if v.failsafes.fence.enabled else 0)
    enabled |= prearm if v.params["ARMING_CHECK"] != 0 else 0
    health = _SENSORS | (0 if v.failsafes.fence.breached_types else M.MAV_SYS_STATUS_GEOFENCE)
    health |= prearm if v.armed or v.prearm_ok else 0
    if not v.boot.attitude_ok:
        health &= ~M.MAV_SYS_STATUS_AHRS
    if v.failsafes.battery_level:
        health &= ~M.MAV_SYS_STATUS_SENSOR_BATTERY
    b = v.battery
    if not v.boot.battery_read:  # the first SYS_STATUS after setup, before AP_BattMonitor's first read
        return M.MAVLink_sys_status_message(present, enabled, health, 200, 0, -1, -1, 0, 0, 0, 0, 0, 0)
    return M.MAVLink_sys_status_message(
        present, enabled, health, 200, int(b.voltage * 1000), int(b.current_a * 100),
        round(b.remaining * 100), 0, 0, 0, 0, 0, 0,
    )  # fmt: skip


def gps_raw_int(v: SimCopter) -> mavlink.MAVLink_message:
    """AP_GPS::send_mavlink_gps_raw: no GPS (fix type 0, zeros) until it is found during boot; then the fix
    SITL's simulated u-blox reports, GPS_FIX_TYPE_RTK_FIXED (6), as measured on ArduCopter 4.7 SITL."""
    if not v.boot.gps_detected:
        return M.MAVLink_gps_raw_int_message(
            int(v.time_s * 1e6), M.GPS_FIX_TYPE_NO_GPS, 0, 0, 0, 0, 0, 0, 0, 0
        )
    cog = int(math.degrees(math.atan2(v.k.ve, v.k.vn)) % 360 * 100) if v.groundspeed_mps > 0.1 else 0
    return M.MAVLink_gps_raw_int_message(
        int(v.time_s * 1e6), M.GPS_FIX_TYPE_RTK_FIXED, round(v.lat * 1e7), round(v.lon * 1e7),
        int((v.home[2] + v.alt_m) * 1000), 70, 120, int(v.groundspeed_mps * 100), cog, 16,
    )  # fmt: skip


def global_position_int(v: SimCopter) -> mavlink.MAVLink_message:
    """GCS_MAVLINK::send_global_position_int. Until the GPS is found during boot the location is the
    never-set one (zeros) and relative_alt the barometric height (AP_AHRS::get_relative_position_D_home
    before home); from then on AP_AHRS has a location."""
    if not v.boot.gps_detected:
        return M.MAVLink_global_position_int_message(
            _boot_ms(v), 0, 0, 0, int(v.alt_m * 1000), 0, 0, 0, int(v.k.heading_deg * 100) % 36000
        )
    return M.MAVLink_global_position_int_message(
        _boot_ms(v), round(v.lat * 1e7), round(v.lon * 1e7), int((v.home[2] + v.alt_m) * 1000),
        int(v.alt_m * 1000), int(v.k.vn * 100), int(v.k.ve * 100), int(-v.k.vu * 100),
        int(v.k.heading_deg * 100) % 36000,
    )  # fmt: skip


def attitude(v: SimCopter) -> mavlink.MAVLink_message:
    # a multicopter leans into its acceleration; a small pitch with speed is enough for displays
    pitch = -math.radians(min(v.groundspeed_mps, 25.0) * 0.6)
    yaw = math.radians(v.k.heading_deg)
    yaw = yaw - 2 * math.pi if yaw > math.pi else yaw
    return M.MAVLink_attitude_message(_boot_ms(v), 0.0, pitch, yaw, 0.0, 0.0, 0.0)


def vfr_hud(v: SimCopter) -> mavlink.MAVLink_message:
    from sitl.copter import physics

    air = physics.airspeed(v.k, physics.wind_vector(*v.wind))
    throttle = int(min(100.0, v.power_w / 15.0)) if v.armed else 0
    return M.MAVLink_vfr_hud_message(
        air, v.groundspeed_mps, int(v.k.heading_deg) % 360, throttle, v.home[2] + v.alt_m, v.k.vu
    )


def battery_status(v: SimCopter) -> mavlink.MAVLink_message:
    """GCS_MAVLINK::send_battery_status: cell voltages in mV (UINT16_MAX = unused), mAh, hJ."""
    b = v.battery
    cell_mv = int(b.voltage * 1000 / power.CELLS)
    cells = [cell_mv] * 10
    ext = [0, 0, 0, 0]
    # the 12S pack: first 10 cells in voltages, the other 2 in voltages_ext
    ext[0] = ext[1] = cell_mv
    energy_hj = int(b.energy_used_wh * 36)  # Wh -> hJ
    return M.MAVLink_battery_status_message(
        0, M.MAV_BATTERY_FUNCTION_UNKNOWN, M.MAV_BATTERY_TYPE_LIPO, 2500, cells, int(b.current_a * 100),
        int(b.consumed_ah * 1000), energy_hj, round(b.remaining * 100), 0,
        M.MAV_BATTERY_CHARGE_STATE_CRITICAL if v.failsafes.battery_level == 2
        else M.MAV_BATTERY_CHARGE_STATE_LOW if v.failsafes.battery_level == 1
        else M.MAV_BATTERY_CHARGE_STATE_OK,
        ext,
    )  # fmt: skip


def home_position(v: SimCopter) -> mavlink.MAVLink_message | None:
    """GCS_MAVLINK::send_home_position: nothing until home is set; the position relative to the EKF origin
    (here the first home), and a NaN quaternion."""
    if not v.home_set:
        return None
    lat, lon, alt, _ = v.home
    olat, olon, oalt = v.origin
    north, east = geo.ne_of(olat, olon, lat, lon)
    nan = math.nan
    return M.MAVLink_home_position_message(
        round(lat * 1e7), round(lon * 1e7), int(alt * 1000), north, east, oalt - alt,
        [nan, nan, nan, nan], 0.0, 0.0, 0.0, int(v.time_s * 1e6),
    )  # fmt: skip


def extended_sys_state(v: SimCopter) -> mavlink.MAVLink_message:
    if v.landed:
        state = M.MAV_LANDED_STATE_ON_GROUND
    elif v.k.vu < -0.2 and v.mode in ("LAND", "RTL"):
        state = M.MAV_LANDED_STATE_LANDING
    else:
        state = M.MAV_LANDED_STATE_IN_AIR
    return M.MAVLink_extended_sys_state_message(M.MAV_VTOL_STATE_UNDEFINED, state)


def ekf_status_report(v: SimCopter) -> mavlink.MAVLink_message:
    """NavEKF3_core::send_status_report: uninitialised until aligned, then constant-position mode until the
    EKF uses GPS, then a healthy EKF with absolute position."""
    if not v.boot.attitude_ok:
        flags = M.EKF_UNINITIALIZED
    elif not v.boot.position_ok:
        flags = EKF_NO_POSITION
    else:
        flags = EKF_POSITION
    return M.MAVLink_ekf_status_report_message(flags, 0.02, 0.02, 0.02, 0.02, 0.0, 0.0)


def autopilot_version(v: SimCopter) -> mavlink.MAVLink_message:
    """AUTOPILOT_VERSION with the capabilities ArduPilot advertises (GCS_Common.cpp capabilities())."""
    caps = (
        M.MAV_PROTOCOL_CAPABILITY_MAVLINK2 | M.MAV_PROTOCOL_CAPABILITY_MISSION_FLOAT
        | M.MAV_PROTOCOL_CAPABILITY_PARAM_FLOAT | M.MAV_PROTOCOL_CAPABILITY_MISSION_INT
        | M.MAV_PROTOCOL_CAPABILITY_COMMAND_INT | M.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_GLOBAL_INT
        | M.MAV_PROTOCOL_CAPABILITY_MISSION_FENCE | M.MAV_PROTOCOL_CAPABILITY_MISSION_RALLY
        | M.MAV_PROTOCOL_CAPABILITY_COMPASS_CALIBRATION
    )  # fmt: skip
    version = v.params.firmware.flight_sw_version  # major<<24 | minor<<16 | patch<<8 | FIRMWARE_VERSION_TYPE
    return M.MAVLink_autopilot_version_message(
        caps, version, 0, 0, 0, [0] * 8, [0] * 8, [0] * 8, 0, 0, v.sysid
    )


def system_time(v: SimCopter) -> mavlink.MAVLink_message:
    """SYSTEM_TIME: wall-clock time of the simulation's start plus simulated time (SITL's clock)."""
    return M.MAVLink_system_time_message(int((v.start_unix + v.time_s) * 1e6), _boot_ms(v))


def local_position_ned(v: SimCopter) -> mavlink.MAVLink_message | None:
    """LOCAL_POSITION_NED relative to the EKF origin (the first home); not sent without one
    (GCS_MAVLINK::send_local_position)."""
    if not v.boot.position_ok:
        return None
    olat, olon, oalt = v.origin
    north, east = geo.ne_of(olat, olon, v.lat, v.lon)
    down = oalt - (v.home[2] + v.alt_m)
    return M.MAVLink_local_position_ned_message(_boot_ms(v), north, east, down, v.k.vn, v.k.ve, -v.k.vu)


def wind(v: SimCopter) -> mavlink.MAVLink_message:
    """WIND (ardupilotmega): direction the wind comes from (deg) and speed, the EKF's estimate."""
    return M.MAVLink_wind_message(v.wind[1] % 360.0, v.wind[0], 0.0)


def mission_current(v: SimCopter) -> mavlink.MAVLink_message:
    return v.missions.mission_current_msg()


def fence_status(v: SimCopter) -> mavlink.MAVLink_message:
    return v.failsafes.fence.status_msg()


BUILDERS: dict[int, Callable[[SimCopter], mavlink.MAVLink_message | None]] = {
    M.MAVLINK_MSG_ID_HEARTBEAT: heartbeat,
    M.MAVLINK_MSG_ID_SYS_STATUS: sys_status,
    M.MAVLINK_MSG_ID_GPS_RAW_INT: gps_raw_int,
    M.MAVLINK_MSG_ID_GLOBAL_POSITION_INT: global_position_int,
    M.MAVLINK_MSG_ID_ATTITUDE: attitude,
    M.MAVLINK_MSG_ID_VFR_HUD: vfr_hud,
    M.MAVLINK_MSG_ID_BATTERY_STATUS: battery_status,
    M.MAVLINK_MSG_ID_HOME_POSITION: home_position,
    M.MAVLINK_MSG_ID_EXTENDED_SYS_STATE: extended_sys_state,
    M.MAVLINK_MSG_ID_EKF_STATUS_REPORT: ekf_status_report,
    M.MAVLINK_MSG_ID_AUTOPILOT_VERSION: autopilot_version,
    M.MAVLINK_MSG_ID_MISSION_CURRENT: mission_current,
    M.MAVLINK_MSG_ID_SYSTEM_TIME: system_time,
    M.MAVLINK_MSG_ID_LOCAL_POSITION_NED: local_position_ned,
    M.MAVLINK_MSG_ID_WIND: wind,
    M.MAVLINK_MSG_ID_FENCE_STATUS: fence_status,
}

# REQUEST_DATA_STREAM groups (ArduCopter/GCS_MAVLink_Copter.cpp STREAM_* message lists, the subset here).
STREAM_GROUPS: dict[int, tuple[int, ...]] = {
    M.MAV_DATA_STREAM_EXTENDED_STATUS: (
        M.MAVLINK_MSG_ID_SYS_STATUS, M.MAVLINK_MSG_ID_MISSION_CURRENT, M.MAVLINK_MSG_ID_GPS_RAW_INT,
        M.MAVLINK_MSG_ID_FENCE_STATUS, M.MAVLINK_MSG_ID_EXTENDED_SYS_STATE,
    ),
    M.MAV_DATA_STREAM_POSITION: (M.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, M.MAVLINK_MSG_ID_LOCAL_POSITION_NED),
    M.MAV_DATA_STREAM_EXTRA1: (M.MAVLINK_MSG_ID_ATTITUDE,),
    M.MAV_DATA_STREAM_EXTRA2: (M.MAVLINK_MSG_ID_VFR_HUD,),
    M.MAV_DATA_STREAM_EXTRA3: (
        M.MAVLINK_MSG_ID_SYSTEM_TIME, M.MAVLINK_MSG_ID_WIND, M.MAVLINK_MSG_ID_BATTERY_STATUS,
        M.MAVLINK_MSG_ID_EKF_STATUS_REPORT,
    ),
}  # fmt: skip


# Event messages ArduPilot accepts an interval for, sent here when they happen rather than on a timer.
EVENT_MESSAGES = frozenset({M.MAVLINK_MSG_ID_MISSION_ITEM_REACHED, M.MAVLINK_MSG_ID_STATUSTEXT})


def build(v: SimCopter, msgid: int) -> mavlink.MAVLink_message | None:
    """The message `msgid` now, or None if it is not one this vehicle sends or has nothing to say yet
    (FENCE_STATUS while off; SYS_STATUS during setup; HOME_POSITION before home; LOCAL_POSITION_NED
    before the EKF origin)."""
    if msgid == M.MAVLINK_MSG_ID_FENCE_STATUS and not v.failsafes.fence.enabled:
        return None
    builder = BUILDERS.get(msgid)
    return builder(v) if builder else None
