"""Telemetry stream rates: SET_MESSAGE_INTERVAL per message, REQUEST_DATA_STREAM when that is refused.

MAV_CMD_SET_MESSAGE_INTERVAL (https://mavlink.io/en/messages/common.html#MAV_CMD_SET_MESSAGE_INTERVAL) is
the modern way and is acknowledged; older firmware only knows the deprecated REQUEST_DATA_STREAM groups
(ArduPilot's SRx_ parameters, GCS_MAVLink/GCS_Common.cpp `handle_request_data_stream`), which is not
acknowledged, so the fallback is best effort.
"""

from __future__ import annotations

from collections.abc import Mapping

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from vehicles.errors import LinkError
from vehicles.mavlink.commands import Commands
from vehicles.mavlink.errors import CommandError

__all__ = ["DEFAULT_RATES_HZ", "set_message_rates"]

# What the controller needs to follow a delivery; position at 4 Hz is the figure the benchmark holds.
DEFAULT_RATES_HZ: dict[int, float] = {
    mavlink.MAVLINK_MSG_ID_GLOBAL_POSITION_INT: 4.0,
    mavlink.MAVLINK_MSG_ID_SYS_STATUS: 1.0,
    mavlink.MAVLINK_MSG_ID_BATTERY_STATUS: 1.0,
    mavlink.MAVLINK_MSG_ID_MISSION_CURRENT: 1.0,
    mavlink.MAVLINK_MSG_ID_FENCE_STATUS: 1.0,
    mavlink.MAVLINK_MSG_ID_HOME_POSITION: 0.2,
    mavlink.MAVLINK_MSG_ID_EKF_STATUS_REPORT: 1.0,  # readiness: an absolute position estimate
}


async def set_message_rates(commands: Commands, rates_hz: Mapping[int, float] | None = None) -> str:
    """Ask for each message at its rate (Hz; 0 stops it). Returns "interval" or "data_stream" (fallback)."""
    rates = DEFAULT_RATES_HZ if rates_hz is None else rates_hz
    try:
        for msg_id, hz in rates.items():
            interval_us = -1 if hz <= 0 else 1e6 / hz
            await commands.command_long(
                mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, msg_id, interval_us, timeout_s=0.5
            )
    except (CommandError, LinkError):
        conn = commands.conn
        top = max(rates.values(), default=4.0)
        conn.send(
            conn.mav.request_data_stream_encode(
                conn.target_system, conn.target_component, mavlink.MAV_DATA_STREAM_ALL, max(1, round(top)), 1
            )
        )
        return "data_stream"
    return "interval"
