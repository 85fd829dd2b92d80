"""The van-routing data: what the controller is asked (stops, vans) and what it answers (routes, plan).

Kept free of solver details so the API layer and the dispatcher's client can import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class VanStop:
    """One package for a van: where it goes, what it weighs, and when it may be handed over.

    `earliest`..`deadline` bound the planned arrival (the start of the hand-over); `service_s` is the
    time at the door (parking, walking, hand-over), added after the arrival.
    """

    package_id: str
    lat: float
    lon: float
    weight_kg: float
    volume_m3: float | None = None
    earliest: datetime | None = None
    deadline: datetime | None = None
    service_s: float = 120.0


@dataclass(frozen=True)
class Van:
    """One van of the station's fleet: how much it carries and when it works.

    `capacity_m3=None` means volume is not limited (only weight is); `speed_mps` is the average road
    speed including traffic (11 m/s is about 40 km/h, a typical urban delivery average).
    """

    id: str
    capacity_kg: float
    capacity_m3: float | None = None
    speed_mps: float = 11.0
    shift_start: datetime | None = None
    shift_end: datetime | None = None


@dataclass
class VanRoute:
    """One van's tour: leaves the depot at `departure`, visits `stops` in order, is back at `back_at`."""

    van_id: str
    stops: list[str]
    distance_m: float
    duration_s: float
    load_kg: float
    arrivals: list[datetime]
    departure: datetime | None = None
    back_at: datetime | None = None
    load_m3: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 strings, numbers rounded to what a dispatcher can use."""
        return {
            "van_id": self.van_id,
            "stops": list(self.stops),
            "arrivals": [t.isoformat() for t in self.arrivals],
            "departure": self.departure.isoformat() if self.departure else None,
            "back_at": self.back_at.isoformat() if self.back_at else None,
            "distance_m": round(self.distance_m, 1),
            "duration_s": round(self.duration_s, 1),
            "load_kg": round(self.load_kg, 3),
            "load_m3": None if self.load_m3 is None else round(self.load_m3, 4),
        }


@dataclass
class VanPlan:
    """The answer to `GET /v1/van-routes`: routes, and every package no van takes with the reason.

    `feasible` is true when every route keeps its van's capacity, every stop's window and the van's
    shift (as checked by the solver on the integer model); packages the plan could not fit are in
    `unassigned`, never silently dropped.
    """

    routes: list[VanRoute]
    unassigned: list[str]
    distance_m: float
    duration_s: float
    solver_s: float
    feasible: bool
    unassigned_reasons: dict[str, str] = field(default_factory=dict)
    # How PyVRP was asked: "all_required" (every screened stop fits; PyVRP's own CVRP search, the best
    # routes) or "prizes" (they do not all fit; serve as many as possible, then minimise distance).
    mode: str = "all_required"
    iterations: int = 0  # PyVRP's search iterations, over both solves when the first gave up

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, the body of `GET /v1/van-routes`."""
        return {
            "routes": [r.as_dict() for r in self.routes],
            "unassigned": [
                {"package_id": p, "reason": self.unassigned_reasons.get(p, "")} for p in self.unassigned
            ],
            "distance_m": round(self.distance_m, 1),
            "duration_s": round(self.duration_s, 1),
            "solver_s": round(self.solver_s, 3),
            "feasible": self.feasible,
        }
