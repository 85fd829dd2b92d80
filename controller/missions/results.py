"""The outcome of one delivery attempt, the same shape for drones and robots.

One type for both kinds keeps the orchestration (and the store) blind to which protocol carried the package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DeliveryResult:
    """What happened to one package on one vehicle.

    `reason` is for people ("battery failsafe: Battery 1 is low 21.0V used 8000 mAh"); `reason_code` is for
    programs (`battery_failsafe`, `fence_breach`, `link_lost`, `prearm_refused`, `mission_rejected`,
    `connection_broken`, `vehicle_error`, `aborted`).
    """

    package_id: str
    vehicle_id: str
    delivered: bool
    reason: str | None = None
    reason_code: str | None = None
    energy_used_wh: float | None = None
    release_position: tuple[float, float] | None = None  # (lat, lon) where the package was released
    returned: bool = False  # the vehicle is back at the station
    events: list[dict[str, Any]] = field(default_factory=list)
