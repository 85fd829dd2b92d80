"""Who carries each package: feasibility first, then an optimal matching, then the van for the rest.

A plan is built in rounds. Each round checks the pending packages against every vehicle (drones and
robots together, `controller.feasibility`) and solves one assignment problem, optimal for the round, over
classes of interchangeable vehicles (`controller.matching`) on a cost of arrival time and energy, less a
bonus for priority and deadlines. Round 0's pairs launch now; later rounds are the queue: the vehicle is
busy with an earlier trip (plus a battery swap), so the package waits, with an honest ETA, never past the
planning horizon; later rounds check a window of a long queue where that suffices (`controller.lookahead`).
A package that no round can place (nobody can carry it, or only too late) goes to a van with every
reason, per vehicle kind, and what would have made it eligible.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

import numpy as np

from controller import feasibility as fz
from controller.fleet import FleetArrays, FleetVehicle
from controller.lookahead import RowWindows
from controller.matching import match_round
from controller.packages import PackageIn
from controller.reasons import (
    Reason,
    battery_hint,
    deadline_hint,
    overweight_hint,
    sort_reasons,
    wind_hint,
)
from controller.routing import KindRouter, KindRoutes, trip_signature
from controller.station import StationConfig
from geofences import Route
from vehicles.spec import VehicleKind, VehicleSpec

# Cost weights (seconds-equivalent): 1 Wh costs as much as 2 s of delivery time; each priority level is
# worth 15 min; having a deadline at all is worth 20 min, so deadline packages are served first.
ENERGY_S_PER_WH = 2.0
PRIORITY_S = 900.0
DEADLINE_BONUS_S = 1200.0
# Rounds stop once every vehicle is booked this far ahead: beyond it a van is the honest answer.
DEFAULT_HORIZON_S = 8 * 3600.0


class PackageLike(Protocol):
    """What the planner needs of a package (the store's `Package` and CSV rows both fit)."""

    @property
    def id(self) -> str: ...
    @property
    def weight_kg(self) -> float: ...
    @property
    def dest_lat(self) -> float: ...
    @property
    def dest_lon(self) -> float: ...
    @property
    def deadline(self) -> datetime | None: ...
    @property
    def earliest(self) -> datetime | None: ...
    @property
    def priority(self) -> int: ...


@dataclass(frozen=True)
class Demand:
    """A package as the planner needs it; for requests not yet stored, the client's key is its id."""

    id: str
    weight_kg: float
    dest_lat: float
    dest_lon: float
    deadline: datetime | None = None
    earliest: datetime | None = None
    priority: int = 0

    @classmethod
    def from_request(cls, request: PackageIn) -> Demand:
        return cls(
            request.key,
            request.weight_kg,
            request.dest_lat,
            request.dest_lon,
            request.deadline,
            request.earliest,
            request.priority,
        )


Status = Literal["assigned", "queued", "van"]


@dataclass
class Decision:
    """The plan for one package."""

    package_id: str
    status: Status
    mode: Literal["drone", "robot", "van"]
    vehicle_id: str | None = None
    launch_at: datetime | None = None
    eta: datetime | None = None
    back_at: datetime | None = None  # when the vehicle is expected back at the station
    energy_wh: float | None = None
    margin_wh: float | None = None  # energy above the reserve left at the end of the trip
    route: list[tuple[float, float]] | None = None  # (lon, lat) out; the return flies it backwards
    detoured: bool = False
    reasons: list[Reason] = field(default_factory=list)  # why not drone/robot (van only)
    hints: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> reason -> what would fix it

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form, for `--json` and the API."""
        return {
            "package_id": self.package_id,
            "status": self.status,
            "mode": self.mode,
            "vehicle_id": self.vehicle_id,
            "launch_at": self.launch_at.isoformat() if self.launch_at else None,
            "eta": self.eta.isoformat() if self.eta else None,
            "back_at": self.back_at.isoformat() if self.back_at else None,
            "energy_wh": None if self.energy_wh is None else round(self.energy_wh, 1),
            "margin_wh": None if self.margin_wh is None else round(self.margin_wh, 1),
            "route": self.route,
            "detoured": self.detoured,
            "reasons": [str(r) for r in self.reasons],
            "hints": self.hints,
        }


@dataclass
class _Kind:
    """Everything the rounds need about one vehicle kind."""

    kind: VehicleKind
    routes: KindRoutes
    table: fz.SpecTable
    fleet: FleetArrays
    turnaround_s: float


@dataclass(frozen=True)
class _VanFacts:
    """What explaining van decisions needs about one kind, as plain lists: read once a pass, not a package.

    Per package, indexing numpy arrays row by row (a dozen small calls each) cost more than the rest of the
    explanation; most packages of a quiet station need only `closest` and `any_feasible`.
    """

    name: str
    payload: VehicleSpec  # the spec with the highest payload limit of the kind: what "too heavy" is against
    matrix: fz.PairMatrix | None
    closest: list[int]
    any_feasible: list[bool]

    def overweight_hint(self, weight_kg: float) -> str:
        spec = self.payload
        return overweight_hint(
            self.name, weight_kg, spec.max_payload_kg, inclusive=spec.max_payload_inclusive
        )

    @classmethod
    def of(cls, k: _Kind, m: fz.PairMatrix | None) -> _VanFacts:
        return cls(
            name=str(k.kind),
            payload=max(k.fleet.specs, key=lambda s: (s.max_payload_kg, s.max_payload_inclusive)),
            matrix=m,
            closest=m.closest.tolist() if m is not None else [],
            any_feasible=m.feasible.any(axis=1).tolist() if m is not None else [],
        )


class Planner:
    """Plans packages onto a station's fleet at one instant. Build once per tick; zones are indexed once."""

    def __init__(
        self,
        station: StationConfig,
        *,
        at: datetime,
        horizon_s: float = DEFAULT_HORIZON_S,
        previous: Planner | None = None,
    ) -> None:
        """`previous`: the last tick's planner; its routes are reused where the same zones are in force."""
        self.station = station
        self.at = at
        self.horizon_s = horizon_s
        self._routers: dict[VehicleKind, KindRouter] = {}
        self._previous = previous._routers if previous is not None else {}

    def router(self, kind: VehicleKind, radius_m: float, altitude_m: float | None) -> KindRouter:
        """One zone index (and detour graph) per kind, reused across plans at this instant."""
        if kind not in self._routers:
            previous = self._previous.get(kind)
            signature = trip_signature(self.station.zones, str(kind), radius_m, self.at, altitude_m)
            if previous is not None and previous.signature == signature:
                self._routers[kind] = previous  # same zones in force: same index, routes and detour graph
            else:
                self._routers[kind] = KindRouter(
                    self.station.zones,
                    self.station.frame,
                    str(kind),
                    radius_m=radius_m,
                    at=self.at,
                    altitude_m=altitude_m,
                )
        return self._routers[kind]

    def plan(
        self, packages: Sequence[PackageLike], fleet: Sequence[FleetVehicle], *, max_rounds: int | None = None
    ) -> list[Decision]:
        """Decide every package: launch now, wait for a vehicle (queued), or go by van.

        `max_rounds` bounds the look-ahead (1 = only what launches now, as a busy tick does); packages that
        could still be carried when it stops are queued without a vehicle rather than sent to a van.
        """
        with _collector_paused():
            return self._plan(packages, fleet, max_rounds)

    def _plan(
        self, packages: Sequence[PackageLike], fleet: Sequence[FleetVehicle], max_rounds: int | None
    ) -> list[Decision]:
        n = len(packages)
        if n == 0:
            return []
        weight = np.array([p.weight_kg for p in packages], dtype=float)
        lat = np.array([p.dest_lat for p in packages], dtype=float)
        lon = np.array([p.dest_lon for p in packages], dtype=float)
        deadline = np.array([self._seconds(p.deadline, np.inf) for p in packages])
        earliest = np.array([self._seconds(p.earliest, 0.0) for p in packages])
        priority = np.array([p.priority for p in packages], dtype=float)

        kinds = self._kinds(fleet, weight, lat, lon)
        decisions: list[Decision | None] = [None] * n
        pending = np.arange(n)
        # The round whose matrices explain each package if it ends with a van, and its row there.
        rounds: list[dict[VehicleKind, fz.PairMatrix]] = []
        seen_in = np.full(n, -1, dtype=np.intp)
        seen_row = np.full(n, -1, dtype=np.intp)
        # A full look-ahead checks only the cheapest of a long queue after round 0 (`controller.lookahead`).
        windows = self._windows(kinds, priority, deadline, earliest) if max_rounds is None else None
        is_open = np.ones(n, dtype=bool)
        round_no = 0
        while pending.size and kinds and (max_rounds is None or round_no < max_rounds):
            rows, matrices = self._round_rows(
                kinds, windows if round_no else None, is_open, pending, deadline, earliest
            )
            seen_in[rows] = len(rounds)
            seen_row[rows] = np.arange(rows.size)
            rounds.append(matrices)
            placed = self._match_round(
                kinds, matrices, rows, priority, deadline, round_no, decisions, packages
            )
            if placed.size == 0:
                break
            keep = _still_open(matrices, rows.size)
            keep[placed] = False
            is_open[rows[~keep]] = False
            pending = rows[keep] if rows is pending else np.flatnonzero(is_open)
            if self._past_horizon(kinds, matrices):
                break
            round_no += 1

        if windows is not None and rounds:
            # Open packages the last rounds' windows left out: explained by the fleet as the rounds left it.
            stale = np.flatnonzero(is_open & (seen_in < len(rounds) - 1))
            if stale.size:
                _, matrices = self._round_rows(kinds, None, is_open, stale, deadline, earliest)
                seen_in[stale] = len(rounds)
                seen_row[stale] = np.arange(stale.size)
                rounds.append(matrices)
        cut_short = max_rounds is not None and round_no >= max_rounds
        last_round = len(rounds) - 1
        waiting_kind = self._waiting_kinds(kinds, rounds[-1]) if cut_short and rounds else None
        facts: dict[int, list[_VanFacts]] = {}
        rounds_of, rows_of = seen_in.tolist(), seen_row.tolist()
        weights, deadlines = weight.tolist(), deadline.tolist()
        for i in [i for i, d in enumerate(decisions) if d is None]:
            seen = rounds_of[i]
            row = rows_of[i] if seen >= 0 else None
            if seen not in facts:
                facts[seen] = [
                    _VanFacts.of(k, rounds[seen].get(k.kind) if seen >= 0 else None) for k in kinds
                ]
            k = waiting_kind[row] if waiting_kind is not None and seen == last_round else -1
            if k >= 0:  # the bounded look-ahead stopped before reaching it: queued, no vehicle yet
                decisions[i] = Decision(
                    package_id=packages[i].id,
                    status="queued",
                    mode=_mode(kinds[k].kind),
                    route=_waypoints(kinds[k].routes.routes[i]),
                )
            else:
                decisions[i] = self._van(i, packages[i], kinds, facts[seen], row, weights[i], deadlines[i])
        return [d for d in decisions if d is not None]

    def _windows(
        self, kinds: list[_Kind], priority: np.ndarray, deadline: np.ndarray, earliest: np.ndarray
    ) -> RowWindows:
        bonus = PRIORITY_S * priority + DEADLINE_BONUS_S * np.isfinite(deadline)
        capacity = sum(int(k.fleet.online.sum()) for k in kinds)
        return RowWindows([k.table for k in kinds], bonus, earliest, ENERGY_S_PER_WH, capacity)

    def _round_rows(
        self,
        kinds: list[_Kind],
        windows: RowWindows | None,
        is_open: np.ndarray,
        pending: np.ndarray,
        deadline: np.ndarray,
        earliest: np.ndarray,
    ) -> tuple[np.ndarray, dict[VehicleKind, fz.PairMatrix]]:
        """The rows this round checks, and their matrices: a window of the queue where that is enough."""

        def check(rows: np.ndarray) -> dict[VehicleKind, fz.PairMatrix]:
            return {
                k.kind: fz.pair_matrix(
                    k.table, k.fleet, rows, deadline_s=deadline, earliest_s=earliest, horizon_s=self.horizon_s
                )
                for k in kinds
            }

        window = windows.take(is_open, [k.table for k in kinds]) if windows is not None else None
        if windows is not None and window is not None:
            matrices = check(window.rows)
            if windows.enough(window, [matrices[k.kind] for k in kinds], self.horizon_s):
                return window.rows, matrices
        return pending, check(pending)

    def _past_horizon(self, kinds: list[_Kind], matrices: dict[VehicleKind, fz.PairMatrix]) -> bool:
        """Every vehicle that could take a package of this round is booked past the horizon.

        Only those count: an offline vehicle, or one suited to none of the packages, stays free at 0 for ever,
        and counting it kept the look-ahead going until every package had a trip days ahead instead of
        reaching the vans.
        """
        for k in kinds:
            useful = matrices[k.kind].feasible.any(axis=0)
            if useful.any() and float(k.fleet.free_in_s[useful].min()) <= self.horizon_s:
                return False
        return True

    # --- rounds -------------------------------------------------------------------------------------------

    def _kinds(
        self, fleet: Sequence[FleetVehicle], weight: np.ndarray, lat: np.ndarray, lon: np.ndarray
    ) -> list[_Kind]:
        kinds: list[_Kind] = []
        for kind in (VehicleKind.DRONE, VehicleKind.ROBOT):
            members = [v for v in fleet if v.kind is kind]
            if not members:
                continue
            arrays = FleetArrays.of(members)
            radius = max(s.max_range_m for s in arrays.specs)
            altitude = (
                max((s.cruise_altitude_m or 0.0) for s in arrays.specs) if kind is VehicleKind.DRONE else 0.0
            )
            routes = self.router(kind, radius, altitude).routes(lat, lon)
            table = fz.spec_table(
                kind,
                arrays.specs,
                routes,
                weight,
                wind_speed_mps=self.station.weather.wind_speed_mps,
                wind_from_deg=self.station.weather.wind_from_deg,
            )
            # A vehicle with its own, shorter radius: fold it into the geometry code of its spec column.
            for j, spec in enumerate(arrays.specs):
                table.code[(routes.distance_m > spec.max_range_m) & (table.code[:, j] == fz.OK), j] = (
                    fz.GEOMETRY
                )
            turnaround = (
                self.station.drone_turnaround_s
                if kind is VehicleKind.DRONE
                else self.station.robot_turnaround_s
            )
            kinds.append(_Kind(kind, routes, table, arrays, turnaround))
        return kinds

    def _match_round(
        self,
        kinds: list[_Kind],
        matrices: dict[VehicleKind, fz.PairMatrix],
        rows: np.ndarray,
        priority: np.ndarray,
        deadline: np.ndarray,
        round_no: int,
        decisions: list[Decision | None],
        packages: Sequence[PackageLike],
    ) -> np.ndarray:
        """One optimal matching over all kinds' vehicles (`controller.matching`); books the chosen vehicles.
        Returns the rows placed."""
        blocks = [matrices[k.kind] for k in kinds]
        bonus = PRIORITY_S * priority[rows] + DEADLINE_BONUS_S * np.isfinite(deadline[rows])
        pairs = match_round(blocks, bonus, ENERGY_S_PER_WH)
        for k, kind in enumerate(kinds):
            mine = [p for p in pairs if p.kind == k]
            if mine:
                r = np.array([p.row for p in mine], dtype=np.intp)
                v = np.array([p.vehicle for p in mine], dtype=np.intp)
                self._book(kind, blocks[k], r, v, rows[r], round_no, decisions, packages)
        return np.array([pair.row for pair in pairs], dtype=np.intp)

    def _book(
        self,
        kind: _Kind,
        m: fz.PairMatrix,
        row: np.ndarray,
        v: np.ndarray,
        index: np.ndarray,
        round_no: int,
        decisions: list[Decision | None],
        packages: Sequence[PackageLike],
    ) -> None:
        """Book the round's pairs of one kind (rows `row` of the round, packages `index`, vehicles `v`);
        the figures of all of them in one go, not a dozen numpy scalars a pair."""
        launch = m.launch_s(row, v)
        duration = m.duration_s(row, v)
        figures = zip(
            index.tolist(),
            v.tolist(),
            launch.tolist(),
            m.eta_s(row, v).tolist(),
            (launch + duration).tolist(),
            m.energy_wh(row, v).tolist(),
            m.margin_wh(row, v).tolist(),
            strict=True,
        )
        mode = _mode(kind.kind)
        for i, vehicle, leave, eta, back, energy, margin in figures:
            route = kind.routes.routes[i]
            decisions[i] = Decision(
                package_id=packages[i].id,
                status="assigned" if round_no == 0 and leave <= 0.0 else "queued",
                mode=mode,
                vehicle_id=kind.fleet.vehicles[vehicle].id,
                launch_at=self.at + timedelta(seconds=leave),
                eta=self.at + timedelta(seconds=eta),
                back_at=self.at + timedelta(seconds=back),
                energy_wh=energy,
                margin_wh=margin,
                route=_waypoints(route),
                detoured=bool(route.detoured) if route else False,
            )
        # The vehicle is busy until it is back, then swaps its battery (drones) or recharges (robots).
        kind.fleet.free_in_s[v] = launch + duration + kind.turnaround_s
        kind.fleet.charge[v] = 1.0

    @staticmethod
    def _waiting_kinds(kinds: list[_Kind], last: dict[VehicleKind, fz.PairMatrix]) -> np.ndarray:
        """Per row of the last round: the kind that could carry it soonest (index into kinds), or -1."""
        stacked = np.vstack([_soonest(last[k.kind]) for k in kinds])
        best = stacked.argmin(axis=0)
        return np.where(np.isfinite(stacked.min(axis=0)), best, -1)

    # --- van fallback -------------------------------------------------------------------------------------

    def _van(
        self,
        i: int,
        package: PackageLike,
        kinds: list[_Kind],
        facts: list[_VanFacts],
        row: int | None,
        weight_kg: float,
        deadline_s: float,
    ) -> Decision:
        reasons: set[Reason] = set()
        hints: dict[str, dict[str, str]] = {}
        if not kinds:
            reasons.add(Reason.NO_VEHICLE_AVAILABLE)
            hints["fleet"] = {str(Reason.NO_VEHICLE_AVAILABLE): "the station has no drones or robots"}
        for k, known in zip(kinds, facts, strict=True):
            why = self._why_not(k, known, i, row, weight_kg, deadline_s)
            reasons.update(why)
            hints[known.name] = {str(code): text for code, text in why.items()}
        return Decision(
            package_id=package.id, status="van", mode="van", reasons=sort_reasons(reasons), hints=hints
        )

    def _why_not(
        self, k: _Kind, known: _VanFacts, i: int, row: int | None, weight_kg: float, deadline_s: float
    ) -> dict[Reason, str]:
        """Every reason this kind could not take package i, each with what would have made it eligible."""
        name = known.name
        route_reason = k.routes.reason[i]
        if route_reason is not None:
            why = {route_reason: k.routes.hint[i] or ""}
            if known.payload.overweight(weight_kg):  # too heavy matters as much as too far: say both
                why[Reason.OVERWEIGHT] = known.overweight_hint(weight_kg)
            return why
        m = known.matrix
        if m is None or row is None:
            return {Reason.NO_VEHICLE_AVAILABLE: f"every {name} is booked beyond the planning horizon"}
        # Report the vehicles that came closest (passed the most checks): "d2 would be late" says more than
        # "d8 is offline" when both are true.
        closest = known.closest[row] if not known.any_feasible[row] else fz.OK
        if closest == fz.OFFLINE:  # the common answer of a quiet station, without touching the arrays
            return {Reason.NO_VEHICLE_AVAILABLE: f"no {name} is online"}
        if closest == fz.BEYOND:  # the common answer of a long queue
            return {Reason.NO_VEHICLE_AVAILABLE: self._beyond_hint(name)}
        if closest == fz.OK:  # feasible pairs remained when the rounds stopped at the planning horizon
            return {Reason.NO_VEHICLE_AVAILABLE: f"every {name} is booked beyond the planning horizon"}
        if closest == fz.OVERWEIGHT:  # the heaviest payload any of them takes is already known
            return {Reason.OVERWEIGHT: known.overweight_hint(weight_kg)}
        return self._why_code(k, m, row, closest, weight_kg, deadline_s)

    def _why_code(
        self, k: _Kind, m: fz.PairMatrix, row: int, code: int, weight_kg: float, deadline_s: float
    ) -> dict[Reason, str]:
        """The reason behind one failing check (not overweight: `_why_not` words that), worded from the
        vehicles that failed it."""
        name, fleet = str(k.kind), k.fleet
        cols = np.flatnonzero(m.code[row] == code)
        if code == fz.WIND:
            spec = fleet.specs[int(fleet.spec_index[cols[0]])]
            return {Reason.WIND: wind_hint(name, self.station.weather.wind_speed_mps, spec.max_wind_mps)}
        if code in (fz.FULL_BATTERY, fz.CHARGE):
            best = cols[np.argmax(m.margin_wh(row, cols))]
            best_spec = fleet.specs[int(fleet.spec_index[best])]
            missing = -float(m.margin_wh(row, best)) / best_spec.battery_wh
            if code == fz.FULL_BATTERY:
                missing = (float(m.energy_wh(row, best)) / best_spec.battery_wh) - (
                    1 - best_spec.reserve_fraction
                )
            hint = battery_hint(name, fleet.vehicles[best].id, missing, code == fz.FULL_BATTERY)
            return {Reason.INSUFFICIENT_BATTERY: hint}
        if code == fz.LATE:
            late = float((m.eta_s(row, cols) - deadline_s).min())
            return {Reason.DEADLINE: deadline_hint(name, late)}

        return {Reason.OUT_OF_RANGE: f"beyond the radius of every {name} model"}  # fz.GEOMETRY

    def _beyond_hint(self, name: str) -> str:
        return f"no {name} could be at the door within the {self.horizon_s / 3600.0:g} h planning horizon"

    def _seconds(self, when: datetime | None, default: float) -> float:
        if when is None:
            return default
        return (when - self.at).total_seconds()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off for one plan: a plan makes a decision, a route list and a hints dict a
    package, none of them in a cycle, and at 50,000 packages the full collections they set off (each walks
    a heap that holds every route) were a third of the plan (2.6 s instead of 3.9-4.9 s). Reference counting
    still frees everything as usual; the collector runs again after the plan."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _waypoints(route: Route | None) -> list[tuple[float, float]] | None:
    return list(route.waypoints) if route else None


def _mode(kind: VehicleKind) -> Literal["drone", "robot"]:
    return "drone" if kind is VehicleKind.DRONE else "robot"


def _still_open(matrices: dict[VehicleKind, fz.PairMatrix], n_rows: int) -> np.ndarray:
    """Rows a later round could still place: some vehicle can take it, or could once its battery is swapped.

    Every other "no" stays: the package's size and route, an offline vehicle, and (vehicles only get busier)
    a deadline or the horizon. Those rows leave the rounds, keeping this round's explanation; at a big
    station that is most of the queue, checked again every round for nothing.
    """
    keep = np.zeros(n_rows, dtype=bool)
    for m in matrices.values():
        keep |= ((m.code == fz.OK) | (m.code == fz.CHARGE)).any(axis=1)
    return keep


def _soonest(m: fz.PairMatrix) -> np.ndarray:
    """Per row, the soonest ETA of any vehicle that can take it (inf if none), without an (R, V) float array:
    per spec, the feasible vehicle free first, then the package's own window."""
    soonest = np.full(m.feasible.shape[0], np.inf)
    for s in np.unique(m.spec_of):
        cols = np.flatnonzero(m.spec_of == s)
        times = m.free_in_s[cols]
        if cols.size == len(m.spec_of) and (times == times[0]).all():  # one model, free together: no gather
            free = np.where(m.feasible.any(axis=1), times[0], np.inf)
        else:
            cols = cols[np.argsort(times, kind="stable")]
            feasible = m.feasible[:, cols]
            first = feasible.argmax(axis=1)
            free = np.where(feasible.any(axis=1), m.free_in_s[cols][first], np.inf)
        eta = np.maximum(free + m.to_drop_s[:, s], m.earliest_s)
        soonest = np.minimum(soonest, eta)
    return soonest
