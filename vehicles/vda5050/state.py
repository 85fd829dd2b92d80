"""The controller's view of one robot, read from its (already schema-checked) VDA 5050 messages.

Version differences (battery, position, instant action states, error levels) are resolved here with the
`versions` table, so the rest of the controller reads one shape: `RobotView`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from vehicles.vda5050.versions import VersionInfo

__all__ = ["Availability", "ConnectionState", "RobotError", "RobotView", "view_from_state"]


class ConnectionState(StrEnum):
    """The `connection` topic across versions (2.1.0 CONNECTIONBROKEN == 3.0.0 CONNECTION_BROKEN)."""

    UNKNOWN = "UNKNOWN"  # nothing heard yet
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"  # the robot said goodbye
    HIBERNATING = "HIBERNATING"  # 3.0.0 only
    CONNECTION_BROKEN = "CONNECTION_BROKEN"  # last will: the robot vanished

    @classmethod
    def from_wire(cls, value: str) -> ConnectionState:
        """Map a wire value of either version onto this enum."""
        return cls.CONNECTION_BROKEN if value in ("CONNECTIONBROKEN", "CONNECTION_BROKEN") else cls(value)


class Availability(StrEnum):
    """Whether the controller may give this robot work, and if not, why."""

    AVAILABLE = "available"
    UNKNOWN = "unknown"  # never heard from
    OFFLINE = "offline"
    CONNECTION_BROKEN = "connection_broken"
    STALE = "stale"  # no state for longer than the stale limit
    ERROR = "error"  # an error at a level that stops orders
    BROKER_DOWN = "broker_down"  # the controller itself lost the broker


@dataclass(frozen=True)
class RobotError:
    """One entry of the state's `errors` array."""

    error_type: str
    level: str
    description: str = ""
    references: tuple[tuple[str, str], ...] = ()  # (referenceKey, referenceValue), e.g. ("orderId", "o-1")

    @property
    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """Identity across states: the same error about another order is a new error."""
        return self.error_type, self.level, self.references


@dataclass
class RobotView:
    """What the latest valid state message said, in SI units and version-neutral names."""

    header_id: int
    timestamp: str
    order_id: str
    order_update_id: int
    last_node_id: str
    last_node_sequence_id: int
    driving: bool
    paused: bool
    position: tuple[float, float, float] | None  # x, y (m, map frame), theta (rad)
    map_id: str | None
    battery_percent: float
    charging: bool
    operating_mode: str
    errors: list[RobotError]
    action_states: dict[str, str]  # actionId -> actionStatus (order and instant actions)
    action_results: dict[str, str] = field(default_factory=dict)  # actionId -> result text, when given
    node_ids_left: list[tuple[str, int, bool]] = field(default_factory=list)  # (nodeId, sequenceId, released)
    edges_left: int = 0
    loads: int = 0
    speed_mps: float | None = None  # from the optional velocity (vx, vy); None when the robot does not say

    def errors_at(self, levels: frozenset[str]) -> list[RobotError]:
        """The errors whose level is in `levels`."""
        return [e for e in self.errors if e.level in levels]


def view_from_state(info: VersionInfo, message: dict[str, Any]) -> RobotView:
    """Build a RobotView from a schema-valid state message of version `info`."""
    position = None
    map_id = None
    pos = message.get(info.position_object)
    if pos is not None:
        position = (float(pos["x"]), float(pos["y"]), float(pos["theta"]))
        map_id = pos["mapId"]
    battery = message[info.battery_object]
    velocity = message.get("velocity") or {}
    speed = math.hypot(velocity["vx"], velocity["vy"]) if "vx" in velocity and "vy" in velocity else None
    states: dict[str, str] = {}
    results: dict[str, str] = {}
    all_actions = list(message["actionStates"])
    if info.separate_instant_action_states:
        all_actions += message.get("instantActionStates", [])
    result_field = "actionResult" if info.separate_instant_action_states else "resultDescription"
    for action in all_actions:
        states[action["actionId"]] = action["actionStatus"]
        if result_field in action:
            results[action["actionId"]] = action[result_field]
    return RobotView(
        header_id=message["headerId"],
        timestamp=message["timestamp"],
        order_id=message["orderId"],
        order_update_id=message["orderUpdateId"],
        last_node_id=message["lastNodeId"],
        last_node_sequence_id=message["lastNodeSequenceId"],
        driving=message["driving"],
        paused=bool(message.get("paused", False)),
        position=position,
        map_id=map_id,
        battery_percent=float(battery[info.battery_charge]),
        charging=bool(battery["charging"]),
        operating_mode=message["operatingMode"],
        errors=[
            RobotError(
                e["errorType"],
                e["errorLevel"],
                e.get("errorDescription", ""),
                tuple((r["referenceKey"], r["referenceValue"]) for r in e.get("errorReferences", [])),
            )
            for e in message["errors"]
        ],
        action_states=states,
        action_results=results,
        node_ids_left=[(n["nodeId"], n["sequenceId"], n["released"]) for n in message["nodeStates"]],
        edges_left=len(message["edgeStates"]),
        loads=len(message.get("loads", [])),
        speed_mps=speed,
    )
