"""Feasibility of every (package, vehicle) pair, as numpy arrays, with a reason for every "no".

Two layers, so the expensive part runs once:
- per package and vehicle *spec* (`SpecTable`): payload, wind, energy for the whole trip with the payload
  (out with it, back without), time to the drop. Computed once per plan; vehicles of one model share it.
- per package and *vehicle* (`pair_matrix`): the vehicle's own charge above its reserve, whether it is
  online, and when it can be there (its wait plus the flight) against the deadline and the planning
  horizon. Recomputed each planning round, as vehicles get busy; only the verdicts are per pair.
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
    Reason.NO_VEHICLE_AVAILABLE,  # 8: it would reach the door only after the planning horizon
)
GEOMETRY, OVERWEIGHT, WIND, FULL_BATTERY, CHARGE, OFFLINE, LATE, BEYOND = range(1, 9)

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
    """Per (package, vehicle) verdicts for one planning round, shape (R, V) over the given rows.

    Only the verdicts are (R, V) arrays, one byte a pair; times and energies stay per (row, spec) and per
    vehicle, and a pair's figures are worked out when asked (`launch`, `eta`, `margin`...). At 10,000 x 1,000
    six float arrays of the pairs took 480 MB and a fifth of a tick to fill, for the few pairs ever read.
    """

    code: np.ndarray  # int8, OK where feasible
    feasible: np.ndarray  # code == OK, computed once
    closest: (
        np.ndarray
    )  # (R,) per package the highest failing code (the vehicle that came closest), 0 if none
    spec_of: np.ndarray  # (V,) the spec column of each vehicle
    free_in_s: np.ndarray  # (V,) when each vehicle is free, as the round started
    usable_wh: np.ndarray  # (V,) energy above the reserve now
    online: np.ndarray  # (V,)
    to_drop_s: np.ndarray  # (R, S) from launch to the door (incl. launch prep)
    trip_energy_wh: np.ndarray  # (R, S)
    trip_s: np.ndarray  # (R, S) from launch until back
    earliest_s: np.ndarray  # (R,) the package's window opens

    def launch_s(self, row: int | np.ndarray, v: int | np.ndarray) -> np.ndarray:
        """When the vehicle would leave: when it is free, or later when the package's window is not open."""
        s = self.spec_of[v]
        return np.maximum(self.free_in_s[v], self.earliest_s[row] - self.to_drop_s[row, s])

    def eta_s(self, row: int | np.ndarray, v: int | np.ndarray) -> np.ndarray:
        return self.launch_s(row, v) + self.to_drop_s[row, self.spec_of[v]]

    def energy_wh(self, row: int | np.ndarray, v: int | np.ndarray) -> np.ndarray:
        return self.trip_energy_wh[row, self.spec_of[v]]

    def margin_wh(self, row: int | np.ndarray, v: int | np.ndarray) -> np.ndarray:
        """Energy left above the reserve after the trip (negative: it cannot fly it on this charge)."""
        return self.usable_wh[v] - self.energy_wh(row, v)

    def duration_s(self, row: int | np.ndarray, v: int | np.ndarray) -> np.ndarray:
        return self.trip_s[row, self.spec_of[v]]


def pair_matrix(
    table: SpecTable,
    fleet: FleetArrays,
    rows: np.ndarray,
    *,
    deadline_s: np.ndarray,
    earliest_s: np.ndarray,
    horizon_s: float = np.inf,
) -> PairMatrix:
    """Check every pending package (`rows`) against every vehicle of one kind, vectorized.

    Per spec, each check compares a (R,) column of the packages with a (V,) row of the vehicles, so no
    (R, V) float array is ever made. A trip that would reach the door after the horizon is `BEYOND`: a van
    is the honest answer for it, not a promise days ahead.
    """
    spec_of = fleet.spec_index
    code = np.take(table.code[rows], spec_of, axis=1)  # rows first: a gather of (R, S), then of columns
    battery = np.array([s.battery_wh for s in fleet.specs])
    reserve = np.array([s.reserve_fraction for s in fleet.specs])
    usable = battery[spec_of] * (fleet.charge - reserve[spec_of])  # (V,) energy above the reserve now
    energy = table.energy_wh[rows]
    to_drop = table.to_drop_s[rows]
    deadline, earliest = deadline_s[rows], earliest_s[rows]
    free = fleet.free_in_s
    for s in range(len(fleet.specs)):
        cols = np.flatnonzero(spec_of == s)
        if cols.size == 0:
            continue
        whole = cols.size == len(spec_of)  # one model: work in place, no copy of the block
        block = code if whole else code[:, cols]
        ok = block == OK
        if whole:
            feasible = ok  # kept up to date by every check below
        _mark(block, ok, energy[:, s][:, None] > usable[None, cols], CHARGE)
        if not fleet.online[cols].all():
            _mark(block, ok, ~fleet.online[None, cols], OFFLINE)
        # eta = max(free + to_drop, earliest): late when either term passes the limit
        for limit, mark in ((deadline, LATE), (np.full(len(rows), horizon_s), BEYOND)):
            slack = limit - to_drop[:, s]
            if (free[cols].max(initial=-np.inf) > slack.min(initial=np.inf)) or (earliest > limit).any():
                _mark(block, ok, (free[None, cols] > slack[:, None]) | (earliest > limit)[:, None], mark)
        if not whole:
            code[:, cols] = block
    if len(fleet.specs) != 1:
        feasible = code == OK
    closest = code.max(axis=1) if code.shape[1] else np.zeros(len(rows), dtype=np.int8)
    return PairMatrix(
        code=code,
        feasible=feasible,
        closest=closest,
        spec_of=spec_of,
        free_in_s=free.copy(),
        usable_wh=usable,
        online=fleet.online,
        to_drop_s=to_drop,
        trip_energy_wh=energy,
        trip_s=table.duration_s[rows],
        earliest_s=earliest,
    )


def _mark(block: np.ndarray, ok: np.ndarray, failing: np.ndarray, mark: int) -> None:
    """Give `mark` to the pairs still OK that fail this check; `ok` follows (checks apply in order)."""
    hit = ok & failing
    np.copyto(block, np.int8(mark), where=hit)
    ok &= ~hit
