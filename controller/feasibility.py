"""Feasibility of every (package, vehicle) pair, as numpy arrays, with a reason for every "no".

Two layers, so the expensive part runs once:
- per package and vehicle *spec* (`SpecTable`): payload, wind, energy for the whole trip with the payload
  (out with it, back without), time to the drop. Computed once per plan; vehicles of one model share it.
- per package and *vehicle* (`pair_matrix`): the vehicle's own charge above its reserve, whether it is
  online, and when it can be there (its wait plus the flight) against the deadline. Recomputed each
  planning round, as vehicles get busy.
Reasons are small integer codes in arrays (`CODES`), turned into `Reason`s only for the packages that
end up with a van, so the hot path stays vectorized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.fleet import FleetArrays
from controller.reasons import Reason
from controller.routing import KindRoutes
from vehicles.energy import drone_trip_energy, robot_trip_energy
from vehicles.spec import VehicleKind, VehicleSpec

# Pair codes, in the order checks are applied: a pair reports the first that fails.
OK = 0
CODES: tuple[Reason | None, ...] = (
    None,
    Reason.OUT_OF_RANGE,  # 1: geometry (any kind-level route reason is folded into GEOMETRY below)
    Reason.OVERWEIGHT,  # 2
    Reason.WIND,  # 3
    Reason.INSUFFICIENT_BATTERY,  # 4: even a full battery is not enough
    Reason.INSUFFICIENT_BATTERY,  # 5: this vehicle's charge is not enough
    Reason.NO_VEHICLE_AVAILABLE,  # 6: offline, grounded or in error
    Reason.DEADLINE,  # 7
)
GEOMETRY, OVERWEIGHT, WIND, FULL_BATTERY, CHARGE, OFFLINE, LATE = range(1, 8)

# Seconds to prepare a launch (checks, mission upload, arming): part of every ETA.
LAUNCH_PREP_S = {VehicleKind.DRONE: 60.0, VehicleKind.ROBOT: 30.0, VehicleKind.VAN: 0.0}


@dataclass(frozen=True)
class SpecTable:
    """Per (package, spec) facts of one vehicle kind; shape (P, S)."""

    code: np.ndarray  # int8: OK or GEOMETRY/OVERWEIGHT/WIND/FULL_BATTERY
    energy_wh: np.ndarray  # whole trip; inf where the trip cannot be flown
    to_drop_s: np.ndarray  # from launch to the package at the door (incl. launch prep)
    duration_s: np.ndarray  # from launch until back at the station


def spec_table(
    kind: VehicleKind,
    specs: tuple[VehicleSpec, ...],
    routes: KindRoutes,
    weight_kg: np.ndarray,
    *,
    wind_speed_mps: float,
    wind_from_deg: float,
) -> SpecTable:
    """Energy and time of every package's trip with every spec of this kind, and the spec-level "no"s."""
    p, s = len(weight_kg), len(specs)
    code = np.zeros((p, s), dtype=np.int8)
    energy = np.full((p, s), np.inf)
    to_drop = np.full((p, s), np.inf)
    duration = np.full((p, s), np.inf)
    routed = ~np.isnan(routes.route_m)
    leg = np.where(routed, routes.route_m, 0.0)
    back_bearing = (routes.bearing_deg + 180.0) % 360.0
    for j, spec in enumerate(specs):
        if kind is VehicleKind.DRONE:
            trip = drone_trip_energy(
                spec,
                weight_kg,
                leg,
                leg,
                out_bearing_deg=routes.bearing_deg,
                back_bearing_deg=back_bearing,
                wind_speed_mps=wind_speed_mps,
                wind_from_deg=wind_from_deg,
            )
        else:
            trip = robot_trip_energy(spec, weight_kg, leg, leg)
        prep = LAUNCH_PREP_S[kind]
        energy[:, j] = np.where(trip.feasible, trip.energy_wh, np.inf)
        to_drop[:, j] = trip.time_to_delivery_s + prep
        duration[:, j] = trip.duration_s + prep
        column = np.zeros(p, dtype=np.int8)
        full_usable = spec.battery_wh * (1.0 - spec.reserve_fraction)
        column[energy[:, j] > full_usable] = FULL_BATTERY
        column[(wind_speed_mps > spec.max_wind_mps) | ~trip.feasible] = WIND
        column[spec.overweight(weight_kg)] = OVERWEIGHT
        column[~routed] = GEOMETRY
        code[:, j] = column
    return SpecTable(code=code, energy_wh=energy, to_drop_s=to_drop, duration_s=duration)


@dataclass(frozen=True)
class PairMatrix:
    """Per (package, vehicle) facts for one planning round; shape (R, V) over the given rows."""

    code: np.ndarray  # int8, OK where feasible
    launch_s: np.ndarray  # when the vehicle would leave, seconds from the planning instant
    eta_s: np.ndarray  # when the package would be at the door
    energy_wh: np.ndarray
    margin_wh: np.ndarray  # energy left above the reserve after the trip
    duration_s: np.ndarray
    feasible: np.ndarray  # code == OK, computed once
    closest: (
        np.ndarray
    )  # (R,) per package the highest failing code (the vehicle that came closest), 0 if none


def pair_matrix(
    table: SpecTable,
    fleet: FleetArrays,
    rows: np.ndarray,
    *,
    deadline_s: np.ndarray,
    earliest_s: np.ndarray,
) -> PairMatrix:
    """Check every pending package (`rows`) against every vehicle of one kind, vectorized."""
    spec_of = fleet.spec_index
    code = table.code[np.ix_(rows, spec_of)].copy()
    energy = table.energy_wh[np.ix_(rows, spec_of)]
    to_drop = table.to_drop_s[np.ix_(rows, spec_of)]
    duration = table.duration_s[np.ix_(rows, spec_of)]

    battery = np.array([fleet.specs[k].battery_wh for k in spec_of])
    reserve = np.array([fleet.specs[k].reserve_fraction for k in spec_of])
    usable = battery * (fleet.charge - reserve)  # (V,) energy above the reserve now
    margin = usable[None, :] - energy

    # Leave when the vehicle is free, or later when the package may not arrive before its window opens.
    launch = np.maximum(fleet.free_in_s[None, :], earliest_s[rows, None] - to_drop)
    eta = launch + to_drop

    ok = code == OK
    code[ok & (margin < 0.0)] = CHARGE
    ok = code == OK
    code[ok & ~fleet.online[None, :]] = OFFLINE
    ok = code == OK
    code[ok & (eta > deadline_s[rows, None])] = LATE
    feasible = code == OK
    closest = code.max(axis=1) if code.shape[1] else np.zeros(len(rows), dtype=np.int8)
    return PairMatrix(
        code=code,
        launch_s=launch,
        eta_s=eta,
        energy_wh=energy,
        margin_wh=margin,
        duration_s=duration,
        feasible=feasible,
        closest=closest,
    )
