"""The fleet as the planner sees it: which vehicle, of which kind and spec, how charged, free from when.

This is planning state, not telemetry: drivers update it from the vehicles (charge, online), the planner
from its own decisions (busy until a trip's return).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from controller.station import StationConfig
from vehicles.spec import VehicleKind, VehicleSpec


@dataclass(frozen=True)
class FleetVehicle:
    """One vehicle available to the planner."""

    id: str
    kind: VehicleKind
    spec: VehicleSpec
    charge: float = 1.0  # state of charge, 0..1
    online: bool = True  # linked, not grounded, not in error
    free_in_s: float = 0.0  # seconds from the planning instant until it is back and ready

    def after_trip(self, *, free_in_s: float, charge: float) -> FleetVehicle:
        """The same vehicle once it has been given a trip."""
        return replace(self, free_in_s=free_in_s, charge=charge)


def fleet_from_station(station: StationConfig) -> list[FleetVehicle]:
    """The station file's fleet as planner vehicles, each at its configured charge and free now."""
    return [
        FleetVehicle(id=v.id, kind=v.kind, spec=v.vehicle_spec(), charge=v.charge, online=v.online)
        for v in station.fleet
    ]


@dataclass(frozen=True)
class FleetArrays:
    """Column view of vehicles of one kind, for vectorized checks; `spec_index` groups equal specs."""

    vehicles: tuple[FleetVehicle, ...]
    specs: tuple[VehicleSpec, ...]
    spec_index: np.ndarray  # (V,) index into specs
    charge: np.ndarray  # (V,)
    online: np.ndarray  # (V,) bool
    free_in_s: np.ndarray  # (V,)

    @classmethod
    def of(cls, vehicles: Sequence[FleetVehicle]) -> FleetArrays:
        """Group vehicles by spec so energy is computed once per distinct spec, not once per vehicle."""
        specs: list[VehicleSpec] = []
        index: list[int] = []
        for vehicle in vehicles:
            try:
                index.append(specs.index(vehicle.spec))
            except ValueError:
                specs.append(vehicle.spec)
                index.append(len(specs) - 1)
        return cls(
            vehicles=tuple(vehicles),
            specs=tuple(specs),
            spec_index=np.asarray(index, dtype=np.intp),
            charge=np.asarray([v.charge for v in vehicles], dtype=float),
            online=np.asarray([v.online for v in vehicles], dtype=bool),
            free_in_s=np.asarray([v.free_in_s for v in vehicles], dtype=float),
        )

    def __len__(self) -> int:
        return len(self.vehicles)
