"""Errors of the MAVLink drone driver, on top of `vehicles.errors`.

VehicleError
├── LinkError                  the link is down or an exchange timed out (re-exported here)
└── ProtocolError              the drone answered, but refused or broke the protocol (re-exported)
    ├── CommandError           COMMAND_ACK with a result other than ACCEPTED: `.command`, `.result`
    │   └── PreArmError        arming refused: `.reasons` from the "PreArm: ..." STATUSTEXTs
    ├── MissionError           MISSION_ACK with an error: `.mission_type`, `.result`
    ├── MissionMismatchError   read-back differs from what was uploaded: `.differences`
    └── ParamError             a parameter was not accepted (`.name`, `.wanted`, `.got`)
NotReadyError (VehicleError)   the drone did not become ready in time: `.missing`, `.reasons`
"""

from __future__ import annotations

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from vehicles.errors import LinkError, ProtocolError, VehicleError

__all__ = [
    "CommandError",
    "FenceError",
    "LinkError",
    "MissionError",
    "MissionMismatchError",
    "NotReadyError",
    "ParamError",
    "PreArmError",
    "ProtocolError",
    "VehicleError",
]


def _enum_name(enum: str, value: int) -> str:
    entry = mavlink.enums.get(enum, {}).get(value)
    return entry.name if entry is not None else str(value)


class CommandError(ProtocolError):
    """A COMMAND_LONG answered with a result other than MAV_RESULT_ACCEPTED."""

    def __init__(self, command: int, result: int, *, vehicle: str | None = None, detail: str = "") -> None:
        self.command = command
        self.result = result
        self.command_name = _enum_name("MAV_CMD", command)
        self.result_name = _enum_name("MAV_RESULT", result)
        text = f"{self.command_name} refused: {self.result_name}"
        super().__init__(f"{text}: {detail}" if detail else text, vehicle=vehicle)


class PreArmError(CommandError):
    """Arming refused; `reasons` are the vehicle's own words ("PreArm: Battery below minimum arming ...")."""

    def __init__(self, result: int, reasons: list[str], *, vehicle: str | None = None) -> None:
        self.reasons = reasons
        detail = "; ".join(reasons) if reasons else "no reason reported"
        super().__init__(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, result, vehicle=vehicle, detail=detail)


class MissionError(ProtocolError):
    """A MISSION_ACK with an error result (or a protocol step the vehicle did not follow)."""

    def __init__(
        self, mission_type: int, result: int | None, message: str, *, vehicle: str | None = None
    ) -> None:
        self.mission_type = mission_type
        self.result = result
        self.result_name = _enum_name("MAV_MISSION_RESULT", result) if result is not None else None
        kind = _enum_name("MAV_MISSION_TYPE", mission_type)
        super().__init__(f"{kind}: {message}", vehicle=vehicle)


class MissionMismatchError(MissionError):
    """The list read back differs from the list uploaded; `differences` names item and field."""

    def __init__(self, mission_type: int, differences: list[str], *, vehicle: str | None = None) -> None:
        self.differences = differences
        shown = "; ".join(differences[:5]) + (" ..." if len(differences) > 5 else "")
        super().__init__(mission_type, None, f"read-back differs: {shown}", vehicle=vehicle)


class ParamError(ProtocolError):
    """A parameter the vehicle does not have, or that it kept at another value."""

    def __init__(
        self,
        name: str,
        message: str,
        *,
        wanted: float | None = None,
        got: float | None = None,
        vehicle: str | None = None,
    ) -> None:
        self.name = name
        self.wanted = wanted
        self.got = got
        super().__init__(f"parameter {name}: {message}", vehicle=vehicle)


class NotReadyError(VehicleError):
    """The drone did not become ready to fly in time; `missing` names what it lacked, `reasons` are its own
    latest pre-arm texts ("PreArm: Need Position Estimate")."""

    def __init__(
        self, missing: list[str], reasons: list[str], waited_s: float, *, vehicle: str | None = None
    ) -> None:
        self.missing = missing
        self.reasons = reasons
        text = f"not ready after {waited_s:g} s: no {', no '.join(missing)}"
        super().__init__(f"{text} ({'; '.join(reasons)})" if reasons else text, vehicle=vehicle)


class FenceError(VehicleError, ValueError):
    """A fence that cannot be expressed (too few vertices, a zero radius, ...): names the field and why."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"field '{field}': {reason}" if field else reason)
