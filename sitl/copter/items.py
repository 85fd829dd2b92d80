"""Mission items as ArduPilot stores and checks them: the Item record, frames, and what each mission
type accepts (libraries/AP_Mission/AP_Mission.cpp mavlink_int_to_mission_cmd,
libraries/GCS_MAVLink/MissionItemProtocol_Fence.cpp and MissionItemProtocol_Rally.cpp).
"""

from __future__ import annotations

from dataclasses import dataclass

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import fence

MISSION = mavlink.MAV_MISSION_TYPE_MISSION
FENCE = mavlink.MAV_MISSION_TYPE_FENCE
RALLY = mavlink.MAV_MISSION_TYPE_RALLY

GLOBAL_FRAMES = {
    mavlink.MAV_FRAME_GLOBAL,
    mavlink.MAV_FRAME_GLOBAL_INT,
    mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT,
    mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
    mavlink.MAV_FRAME_GLOBAL_TERRAIN_ALT,
    mavlink.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT,
}
ABSOLUTE_FRAMES = {mavlink.MAV_FRAME_GLOBAL, mavlink.MAV_FRAME_GLOBAL_INT}

# Commands AP_Mission::mavlink_int_to_mission_cmd stores for a copter (others: UNSUPPORTED).
MISSION_COMMANDS = {
    mavlink.MAV_CMD_NAV_WAYPOINT,
    mavlink.MAV_CMD_NAV_LOITER_UNLIM,
    mavlink.MAV_CMD_NAV_LOITER_TURNS,
    mavlink.MAV_CMD_NAV_LOITER_TIME,
    mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH,
    mavlink.MAV_CMD_NAV_LAND,
    mavlink.MAV_CMD_NAV_TAKEOFF,
    mavlink.MAV_CMD_NAV_SPLINE_WAYPOINT,
    mavlink.MAV_CMD_NAV_DELAY,
    mavlink.MAV_CMD_NAV_PAYLOAD_PLACE,
    mavlink.MAV_CMD_CONDITION_DELAY,
    mavlink.MAV_CMD_CONDITION_DISTANCE,
    mavlink.MAV_CMD_CONDITION_YAW,
    mavlink.MAV_CMD_DO_JUMP,
    mavlink.MAV_CMD_DO_CHANGE_SPEED,
    mavlink.MAV_CMD_DO_SET_HOME,
    mavlink.MAV_CMD_DO_SET_SERVO,
    mavlink.MAV_CMD_DO_SET_RELAY,
    mavlink.MAV_CMD_DO_FENCE_ENABLE,
    mavlink.MAV_CMD_DO_GRIPPER,
    mavlink.MAV_CMD_DO_WINCH,
    mavlink.MAV_CMD_DO_LAND_START,
    mavlink.MAV_CMD_DO_SET_ROI,
    mavlink.MAV_CMD_DO_DIGICAM_CONTROL,
}
# Commands whose x/y are a location (AP_Mission stores them as a Location).
LOCATION_COMMANDS = {
    mavlink.MAV_CMD_NAV_WAYPOINT,
    mavlink.MAV_CMD_NAV_LOITER_UNLIM,
    mavlink.MAV_CMD_NAV_LOITER_TURNS,
    mavlink.MAV_CMD_NAV_LOITER_TIME,
    mavlink.MAV_CMD_NAV_LAND,
    mavlink.MAV_CMD_NAV_TAKEOFF,
    mavlink.MAV_CMD_NAV_SPLINE_WAYPOINT,
    mavlink.MAV_CMD_NAV_PAYLOAD_PLACE,
    mavlink.MAV_CMD_DO_SET_HOME,
    mavlink.MAV_CMD_DO_LAND_START,
    mavlink.MAV_CMD_DO_SET_ROI,
    mavlink.MAV_CMD_NAV_FENCE_RETURN_POINT,
    mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
    mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION,
    mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
    mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION,
    mavlink.MAV_CMD_NAV_RALLY_POINT,
}


@dataclass
class Item:
    """One stored item, kept in MISSION_ITEM_INT terms (x, y in degE7 for global frames)."""

    command: int
    frame: int = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    x: int = 0
    y: int = 0
    z: float = 0.0
    autocontinue: int = 1

    @property
    def lat(self) -> float:
        return self.x / 1e7

    @property
    def lon(self) -> float:
        return self.y / 1e7

    def params(self) -> tuple[float, float, float, float, float, float, float]:
        return (self.param1, self.param2, self.param3, self.param4, self.lat, self.lon, self.z)

    @classmethod
    def from_msg(cls, m: mavlink.MAVLink_message) -> Item:
        """From MISSION_ITEM_INT, or MISSION_ITEM (float lat/lon converted as GCS_Common.cpp does)."""
        x, y = m.x, m.y
        if m.get_type() == "MISSION_ITEM":
            x, y = round(m.x * 1e7), round(m.y * 1e7)
        return cls(m.command, m.frame, m.param1, m.param2, m.param3, m.param4, x, y, m.z, m.autocontinue)

    def to_msg(self, target: tuple[int, int], seq: int, mission_type: int, current: int = 0):
        return mavlink.MAVLink_mission_item_int_message(
            target[0], target[1], seq, self.frame, self.command, current, self.autocontinue,
            self.param1, self.param2, self.param3, self.param4, self.x, self.y, self.z, mission_type,
        )  # fmt: skip


RALLY_FRAMES = {mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT}


def _check_latlon(item: Item) -> int:
    if not -900_000_000 <= item.x <= 900_000_000:  # check_lat
        return mavlink.MAV_MISSION_INVALID_PARAM5_X
    if not -1_800_000_000 <= item.y <= 1_800_000_000:  # check_lng
        return mavlink.MAV_MISSION_INVALID_PARAM6_Y
    return mavlink.MAV_MISSION_ACCEPTED


def validate(item: Item, mission_type: int) -> int:
    """MAV_MISSION_RESULT for storing `item`, in the order each protocol checks.

    MISSION: AP_Mission::mavlink_int_to_mission_cmd (command, then frame, then lat/lon);
    FENCE: MissionItemProtocol_Fence.cpp convert_MISSION_ITEM_INT_to_AC_PolyFenceItem (frame first);
    RALLY: MissionItemProtocol_Rally.cpp (command, relative-altitude frame only, lat/lon, int16 alt).
    """
    if mission_type == FENCE:
        if item.frame not in GLOBAL_FRAMES:
            return mavlink.MAV_MISSION_UNSUPPORTED_FRAME
        return (
            mavlink.MAV_MISSION_ACCEPTED
            if item.command in fence.FENCE_COMMANDS
            else mavlink.MAV_MISSION_UNSUPPORTED
        )
    if mission_type == RALLY:
        if item.command != mavlink.MAV_CMD_NAV_RALLY_POINT:
            return mavlink.MAV_MISSION_UNSUPPORTED
        if item.frame not in RALLY_FRAMES:
            return mavlink.MAV_MISSION_UNSUPPORTED_FRAME
        result = _check_latlon(item)
        if result == mavlink.MAV_MISSION_ACCEPTED and not -32768 <= item.z <= 32767:
            return mavlink.MAV_MISSION_INVALID_PARAM7
        return result
    if item.command not in MISSION_COMMANDS:
        return mavlink.MAV_MISSION_UNSUPPORTED
    if item.command in LOCATION_COMMANDS:
        if item.frame not in GLOBAL_FRAMES:
            return mavlink.MAV_MISSION_UNSUPPORTED_FRAME
        return _check_latlon(item)
    return mavlink.MAV_MISSION_ACCEPTED
