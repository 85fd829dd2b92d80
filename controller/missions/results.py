"""The outcome of one delivery attempt, the same shape for drones and robots.

One type for both kinds keeps the orchestration (and the store) blind to which protocol carried the package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

# Rounding of a proof's figures: 6 decimals of a degree is 0.11 m of latitude, finer than any vehicle's
# position fix (GPS a metre or two, a robot's localisation a few cm to a decimetre); altitudes to 0.1 m.
PROOF_DECIMALS = 6
ALT_DECIMALS = 1


@dataclass(frozen=True)
class DeliveryProof:
    """Where and when the package left the vehicle, and how we know.

    `confirmed_by` is "vehicle" when the vehicle itself said so (a drone's gripper texts, a robot's drop
    action FINISHED) and "inferred" when the word went unheard (a link gap, a controller restart) and the
    release was read from mission progress; then the position is the vehicle's at the time it was inferred
    (drone) or the planned drop point (robot). `photo_url` is attached later by a vehicle integration.
    """

    vehicle_id: str
    kind: Literal["drone", "robot"]
    at: datetime  # UTC
    lat: float | None
    lon: float | None
    confirmed_by: Literal["vehicle", "inferred"]
    event: str  # the vehicle's own words ("Gripper load releasing", "drop FINISHED"), or how it was inferred
    method: str  # gripper, winch, payload_place (drone); the drop action's type (robot)
    alt_amsl_m: float | None = None  # drone: altitude above mean sea level (GLOBAL_POSITION_INT.alt)
    alt_agl_m: float | None = None  # drone: above the home's ground (relative_alt), when known
    photo_url: str | None = None

    @classmethod
    def now(cls, **fields: Any) -> DeliveryProof:
        """A proof stamped with the current UTC time, its figures rounded (see `PROOF_DECIMALS`)."""
        for name in ("lat", "lon"):
            if fields.get(name) is not None:
                fields[name] = round(float(fields[name]), PROOF_DECIMALS)
        for name in ("alt_amsl_m", "alt_agl_m"):
            if fields.get(name) is not None:
                fields[name] = round(float(fields[name]), ALT_DECIMALS)
        return cls(at=datetime.now(UTC), **fields)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the time as ISO 8601 UTC), as stored with the delivered event."""
        return {
            "vehicle_id": self.vehicle_id, "kind": self.kind, "at": self.at.isoformat(), "lat": self.lat,
            "lon": self.lon, "alt_amsl_m": self.alt_amsl_m, "alt_agl_m": self.alt_agl_m,
            "confirmed_by": self.confirmed_by, "event": self.event, "method": self.method,
            "photo_url": self.photo_url,
        }  # fmt: skip


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
    proof: DeliveryProof | None = None  # set whenever `delivered`
