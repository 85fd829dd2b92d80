"""The service's view of a vehicle it can send: one small interface over the drone and robot drivers.

The orchestration (`controller.service.core`) never speaks MAVLink or VDA 5050; it asks a `Carrier` for a
snapshot, hands it a decided package, and gets a `DeliveryResult` back. Each driver family has one adapter
module (`carriers_drone`, `carriers_robot`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from controller.missions.results import DeliveryResult
from vehicles.spec import VehicleKind

EventSink = Callable[[dict[str, Any]], None]


@dataclass
class VehicleSnapshot:
    """What operators and the planner need to know about a vehicle right now."""

    vehicle_id: str
    kind: VehicleKind
    online: bool
    charge: float | None = None  # 0..1
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    heading_deg: float | None = None
    speed_mps: float | None = None
    mode: str | None = None
    link_age_s: float | None = None
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = str(self.kind)
        return data


@dataclass(frozen=True)
class Assignment:
    """A decided package as a carrier needs it: where to go, by which route, with what."""

    mission_id: str
    package_id: str
    vehicle_id: str
    station: tuple[float, float]  # (lat, lon)
    destination: tuple[float, float]  # (lat, lon)
    route: list[tuple[float, float]]  # (lat, lon) from station to destination, both ends included
    payload_kg: float
    predicted_energy_wh: float | None = None
    # the drone flight as the station's airspace booked it (`airspace_plan_dict`): pad, launch time,
    # layers, routes, holding point, landing pads; None for robots
    airspace: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Assignment:
        return cls(
            mission_id=data["mission_id"],
            package_id=data["package_id"],
            vehicle_id=data["vehicle_id"],
            station=tuple(data["station"]),  # type: ignore[arg-type]
            destination=tuple(data["destination"]),  # type: ignore[arg-type]
            route=[tuple(p) for p in data["route"]],  # type: ignore[misc]
            payload_kg=float(data["payload_kg"]),
            predicted_energy_wh=data.get("predicted_energy_wh"),
            airspace=data.get("airspace"),
        )


class Carrier(Protocol):
    """A vehicle behind its driver.

    A drone carrier also has an `airspace` attribute (`controller.service.airspace.ServiceAirspace` or
    None), which the service sets before a mission: its flights then lift off when booked and are cleared
    from their holding point by the station's airspace.
    """

    vehicle_id: str
    kind: VehicleKind

    def snapshot(self) -> VehicleSnapshot:
        """Latest telemetry; never blocks."""
        ...

    async def deliver(self, job: Assignment, on_event: EventSink) -> DeliveryResult:
        """Carry out one delivery to the end (back home, or failed); never raises for a failed trip."""
        ...

    async def resume(self, job: Assignment, on_event: EventSink) -> DeliveryResult:
        """After a controller restart: follow a delivery already under way, without starting it again."""
        ...

    async def abort(self) -> None:
        """Bring the vehicle home now; the running `deliver` then returns with reason_code 'aborted'."""
        ...
