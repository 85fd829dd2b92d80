"""The solver layer: integer matrices in, PyVRP routes out; knows nothing of coordinates or datetimes.

Node 0 is the depot, nodes 1..n the clients. Keeping this layer free of lat/lon lets the tests drive it
with published benchmark instances (CVRPLIB, Solomon) and compare against their best-known costs, so
"the optimiser is good" is measured, not assumed.

PyVRP wants integers: the caller picks the unit (metres, seconds, grams, ...) and rounds.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pyvrp import Client, Depot, Location, ProblemData, VehicleType, solve
from pyvrp.exceptions import PenaltyBoundWarning
from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria, NoImprovement, StoppingCriterion

from controller.errors import InputError

NO_LIMIT = int(np.iinfo(np.int64).max)  # PyVRP's own "unbounded" for windows and shifts
# Stop early after max(STALL_MIN, STALL_PER_CLIENT x n) search iterations without a better solution. A
# 6-stop instance runs ~25,000 iterations a second, so the API answers in about 0.2 s instead of waiting
# out the time limit; a 100-stop one runs ~2,000 a second and is stopped by its time limit as before.
STALL_MIN = 5_000
STALL_PER_CLIENT = 200


@dataclass
class MatrixRoute:
    """One vehicle's tour in node indices; times in the caller's integer unit from time 0."""

    vehicle: int  # index into `capacities`
    clients: list[int]  # node indices 1..n, in visiting order
    starts: list[int]  # service start at each client (after any wait for its window)
    depart: int  # leaves the depot
    back: int  # back at the depot
    distance: int
    duration: int  # back - depart, waits and service included


@dataclass
class MatrixSolution:
    """The solver's answer. `unvisited` is only ever non-empty when clients were optional (prizes)."""

    routes: list[MatrixRoute]
    unvisited: list[int]
    distance: int
    feasible: bool
    solver_s: float
    iterations: int


def solve_matrix(
    distance: npt.ArrayLike,
    duration: npt.ArrayLike | Sequence[npt.ArrayLike],
    demand: npt.ArrayLike,
    capacities: Sequence[int | Sequence[int]],
    *,
    windows: npt.ArrayLike | None = None,
    service: npt.ArrayLike | None = None,
    shifts: Sequence[tuple[int, int]] | None = None,
    profiles: Sequence[int] | None = None,
    prizes: npt.ArrayLike | None = None,
    time_limit_s: float = 2.0,
    seed: int = 1,
    early_stop: bool = True,
    give_up_s: float | None = None,
    max_iterations: int | None = None,
) -> MatrixSolution:
    """Minimise total distance over routes from and back to node 0.

    - `distance`: (n+1) x (n+1) integers; `duration`: one such matrix, or one per profile.
    - `demand`: n integers (one load dimension) or n x d; `capacities`: one entry per vehicle, an
      integer or d integers.
    - `windows`: (n+1) x 2 [early, late] on the start of service, row 0 the depot's opening hours.
    - `service`: n service durations. `shifts`: per vehicle (earliest departure, latest return).
    - `profiles`: per vehicle, which duration matrix it drives on (vehicles of different speeds).
    - `prizes`: n integers; given, clients become optional and a client is left out only when no
      vehicle can fit it (set prizes above any insertion cost). Absent, every client is required.
    Stops at `time_limit_s`, or (`early_stop`) once the search has stalled (see STALL_MIN), or (`give_up_s`)
    when no feasible solution has turned up after that many seconds: with every client required, that is
    how a caller learns early that they do not all fit and can try again with prizes. `max_iterations` also
    stops the search after that many iterations: a budget that, unlike time, gives the same routes on any
    machine and under any load (the benchmarks compare solvers with it).
    Identical vehicles are grouped into one PyVRP vehicle type (a smaller search space).
    """
    dist = _int_matrix(distance, "distance")
    n = dist.shape[0] - 1
    durs = _durations(duration, n)
    load = _int_array(demand, "demand")
    load = load.reshape(n, -1) if load.size else np.zeros((n, 1), np.int64)
    if load.shape[0] != n:
        raise InputError(f"expected {n} rows, got {load.shape[0]}", field="demand")
    dims = load.shape[1]
    caps = [_capacity(c, dims, k) for k, c in enumerate(capacities)]
    if not caps:
        raise InputError("at least one vehicle is needed", field="capacities")
    tw = _windows(windows, n)
    svc = np.zeros(n, np.int64) if service is None else _int_array(service, "service").reshape(n)
    shift = list(shifts) if shifts is not None else [(0, NO_LIMIT)] * len(caps)
    prof = list(profiles) if profiles is not None else [0] * len(caps)
    if len(shift) != len(caps) or len(prof) != len(caps):
        raise InputError("shifts and profiles need one entry per vehicle", field="shifts")
    if any(not 0 <= p < len(durs) for p in prof):
        raise InputError(f"profile index outside 0..{len(durs) - 1}", field="profiles")
    prize = None if prizes is None else _int_array(prizes, "prizes").reshape(n)

    if n == 0:
        return MatrixSolution([], [], 0, True, 0.0, 0)

    locations = [Location(0, 0) for _ in range(n + 1)]
    depots = [Depot(location=0, tw_early=int(tw[0, 0]), tw_late=int(tw[0, 1]))]
    clients = [
        Client(
            location=i + 1,
            delivery=[int(x) for x in load[i]],
            service_duration=int(svc[i]),
            tw_early=int(tw[i + 1, 0]),
            tw_late=int(tw[i + 1, 1]),
            prize=0 if prize is None else int(prize[i]),
            required=prize is None,
        )
        for i in range(n)
    ]
    groups: dict[tuple[object, ...], list[int]] = {}
    for k in range(len(caps)):
        groups.setdefault((tuple(caps[k]), tuple(shift[k]), prof[k]), []).append(k)
    members = list(groups.values())
    vehicle_types = [
        VehicleType(
            num_available=len(ks),
            capacity=caps[ks[0]],
            tw_early=int(shift[ks[0]][0]),
            tw_late=int(shift[ks[0]][1]),
            profile=prof[ks[0]],
        )
        for ks in members
    ]
    distances: list[Any] = [dist] * len(durs)  # PyVRP's stubs type matrices as ndarray[int]
    durations: list[Any] = list(durs)
    data = ProblemData(locations, clients, depots, vehicle_types, distances, durations)

    t0 = time.perf_counter()
    criteria: list[StoppingCriterion] = [MaxRuntime(time_limit_s)]
    if early_stop:
        criteria.append(NoImprovement(max(STALL_MIN, STALL_PER_CLIENT * n)))
    if give_up_s is not None:
        criteria.append(_NoFeasibleWithin(give_up_s))
    if max_iterations is not None:
        criteria.append(MaxIterations(max_iterations))
    stop: StoppingCriterion = criteria[0] if len(criteria) == 1 else MultipleCriteria(criteria)
    with warnings.catch_warnings():
        if give_up_s is not None:
            # Clients that cannot all fit drive the penalties to their bound, and PyVRP warns so; here that
            # is the expected way to find out (the caller falls back to prizes), not a problem to report.
            warnings.simplefilter("ignore", PenaltyBoundWarning)
        result = solve(data, stop, seed=seed, collect_stats=False, display=False)
    solver_s = time.perf_counter() - t0

    best = result.best
    routes: list[MatrixRoute] = []
    free = [list(ks) for ks in members]
    served: set[int] = set()
    for route in best.routes():
        vehicle = free[route.vehicle_type()].pop(0)
        acts = [a for a in route.schedule() if a.is_client()]
        clients_idx = [a.idx + 1 for a in acts]
        served.update(clients_idx)
        routes.append(
            MatrixRoute(
                vehicle=vehicle,
                clients=clients_idx,
                starts=[int(a.start_time) for a in acts],
                depart=int(route.start_time()),
                back=int(route.end_time()),
                distance=int(route.distance()),
                duration=int(route.duration()),
            )
        )
    routes.sort(key=lambda r: r.vehicle)
    unvisited = [i for i in range(1, n + 1) if i not in served]
    feasible = best.is_feasible() and (prize is not None or not unvisited)
    return MatrixSolution(routes, unvisited, int(best.distance()), feasible, solver_s, result.num_iterations)


class _NoFeasibleWithin:
    """Stop when the best solution is still infeasible `seconds` after the search began.

    PyVRP hands the criterion the cost of its best solution, which is the largest int64 (not a finite
    figure) while no feasible solution has been found; once one is found the best stays feasible.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: float | None = None

    def __call__(self, best_cost: float) -> bool:
        now = time.perf_counter()
        if self.started is None:
            self.started = now
        return best_cost >= NO_LIMIT and now - self.started >= self.seconds


def _int_matrix(values: npt.ArrayLike, name: str) -> npt.NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
        raise InputError(f"expected a square matrix, got shape {arr.shape}", field=name)
    return _checked_int(arr, name)


def _int_array(values: npt.ArrayLike, name: str) -> npt.NDArray[np.int64]:
    return _checked_int(np.asarray(values), name)


def _checked_int(arr: npt.NDArray[np.generic], name: str) -> npt.NDArray[np.int64]:
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating):
            raise InputError(f"expected numbers, got {arr.dtype}", field=name)
        floats = arr.astype(np.float64)
        if not np.all(np.isfinite(floats)):
            raise InputError("expected finite numbers", field=name)
        if np.any(floats != np.round(floats)):
            raise InputError("expected integers: round in the caller's unit first", field=name)
    out = arr.astype(np.int64)
    if np.any(out < 0):
        raise InputError("must not be negative", field=name)
    return out


def _durations(duration: npt.ArrayLike | Sequence[npt.ArrayLike], n: int) -> list[npt.NDArray[np.int64]]:
    arr = np.asarray(duration)
    mats = [arr] if arr.ndim == 2 else list(arr)
    out = [_int_matrix(m, "duration") for m in mats]
    if not out or any(m.shape != (n + 1, n + 1) for m in out):
        raise InputError(f"expected {n + 1} x {n + 1} matrices like distance", field="duration")
    return out


def _capacity(capacity: int | Sequence[int], dims: int, k: int) -> list[int]:
    cap = [int(c) for c in np.atleast_1d(np.asarray(capacity))]
    if len(cap) != dims:
        raise InputError(f"expected {dims} load dimension(s), got {len(cap)}", field="capacities", row=k)
    if any(c < 0 for c in cap):
        raise InputError("must not be negative", field="capacities", row=k)
    return cap


def _windows(windows: npt.ArrayLike | None, n: int) -> npt.NDArray[np.int64]:
    if windows is None:
        tw = np.zeros((n + 1, 2), np.int64)
        tw[:, 1] = NO_LIMIT
        return tw
    tw = _int_array(windows, "windows")
    if tw.shape != (n + 1, 2):
        raise InputError(f"expected shape ({n + 1}, 2), got {tw.shape}", field="windows")
    bad = np.flatnonzero(tw[:, 1] < tw[:, 0])
    if bad.size:
        raise InputError("window closes before it opens", field="windows", row=int(bad[0]))
    return tw
