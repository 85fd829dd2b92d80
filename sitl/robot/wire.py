"""The robot side of VDA 5050 on the wire: topics, headers and the fields that differ by version.

Deliberately independent of `vehicles.vda5050` (the driver): the simulator speaks the protocol from the
schemas itself, so a driver bug cannot hide behind a shared helper. Field names per version were read from
`../shared/vda5050-schemas/v2.1.0` and `v3.0.0` and `../shared/vda5050-schemas-v2.0.0` (connection, state,
factsheet schemas). 2.0.0 differs from 2.1.0 in the instant actions' key (`instantActions`), integer
`reach`, and no object-valued action parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["WIRE", "Wire", "iso_now"]


@dataclass(frozen=True)
class Wire:
    """Version-specific names a robot needs."""

    version: str
    prefix: str  # interface/majorVersion topic levels
    broken: str  # last-will connectionState
    battery: str  # state object holding the charge
    charge: str  # its field, percent
    position: str  # state object holding the pose
    localized: str  # its "position is valid" flag
    text: str  # suffix of free-text fields: Description / Descriptor
    action_result: str  # actionState free text: resultDescription / actionResult
    separate_instant_states: bool  # 3.0.0 has `instantActionStates`
    estop_field: str  # safetyState: eStop / activeEmergencyStop
    operating_mode: str
    instant_key: str = "actions"  # the instantActions message's array: 2.0.0 calls it `instantActions`

    @property
    def major(self) -> str:
        """ "2" for 2.0.0 and 2.1.0: a message of another major version is refused."""
        return self.version.split(".", 1)[0]

    def topic(self, manufacturer: str, serial: str, subtopic: str) -> str:
        return f"{self.prefix}/{manufacturer}/{serial}/{subtopic}"


WIRE: dict[str, Wire] = {
    "2.0.0": Wire(
        "2.0.0",
        "uagv/v2",
        "CONNECTIONBROKEN",
        "batteryState",
        "batteryCharge",
        "agvPosition",
        "positionInitialized",
        "Description",
        "resultDescription",
        False,
        "eStop",
        "AUTOMATIC",
        "instantActions",
    ),
    "2.1.0": Wire(
        "2.1.0",
        "uagv/v2",
        "CONNECTIONBROKEN",
        "batteryState",
        "batteryCharge",
        "agvPosition",
        "positionInitialized",
        "Description",
        "resultDescription",
        False,
        "eStop",
        "AUTOMATIC",
    ),
    "3.0.0": Wire(
        "3.0.0",
        "vda5050/v3",
        "CONNECTION_BROKEN",
        "powerSupply",
        "stateOfCharge",
        "mobileRobotPosition",
        "localized",
        "Descriptor",
        "actionResult",
        True,
        "activeEmergencyStop",
        "AUTOMATIC",
    ),
}


def iso_now() -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-11-21T23:40:03.123Z."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def dumps(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()
