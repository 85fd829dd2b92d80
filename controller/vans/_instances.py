"""Published VRP instances (VRPLIB and Solomon files) as input for the solver layer.

Used by the tests and `bench/vans.py` to hold `solve_matrix` against best-known solutions, so a change
that makes the optimiser worse shows up as a number, not as a complaint from the van dispatcher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import vrplib

from controller.vans._solver import NO_LIMIT, MatrixSolution, solve_matrix


@dataclass
class Instance:
    """One single-depot instance: float distances (node 0 the depot) and the integer model's inputs."""

    name: str
    distance: npt.NDArray[np.float64]  # the instance's own distances, for costing
    demand: npt.NDArray[np.int64]  # n clients
    capacity: int
    vehicles: int
    windows: npt.NDArray[np.float64] | None  # (n+1) x 2, row 0 the depot
    service: npt.NDArray[np.float64] | None  # n clients
    rounded: bool  # CVRPLIB convention: distances rounded to integers before costing
    best_known: float | None  # the cost stated in the .sol file beside the instance, if any
    best_routes: list[list[int]] | None  # that solution's routes (client node indices)

    @property
    def best_known_cost(self) -> float | None:
        """The best-known routes costed on `distance`, the same measure as our own routes.

        Solomon-type .sol files state costs on distances truncated to one decimal (C101: 827.3), while we
        cost on exact distances (the same routes: 828.94); comparing like with like needs this.
        """
        return None if self.best_routes is None else route_cost(self.distance, self.best_routes)


def load_instance(path: str | Path) -> Instance:
    """Read a VRPLIB (`NAME : ...` header) or Solomon file, and its `.sol` when one sits beside it."""
    path = Path(path)
    first = path.read_text(encoding="utf-8").lstrip().split("\n", 1)[0]
    solomon = ":" not in first
    raw = vrplib.read_instance(path, instance_format="solomon" if solomon else "vrplib")
    depots = np.atleast_1d(raw.get("depot", np.array([0])))
    if depots.size != 1 or int(depots[0]) != 0:
        raise ValueError(f"{path.name}: only single-depot instances with the depot first are supported")
    n = int(raw["edge_weight"].shape[0]) - 1
    kind = str(raw.get("type", "VRPTW" if solomon else "CVRP")).upper()
    rounded = not solomon and "TW" not in kind  # CVRPLIB sets cost on rounded distances
    distance = np.asarray(raw["edge_weight"], dtype=np.float64)
    if rounded:
        distance = np.round(distance)
    windows = service = None
    if "time_window" in raw:
        windows = np.asarray(raw["time_window"], dtype=np.float64)
        svc = np.broadcast_to(np.asarray(raw.get("service_time", 0), dtype=np.float64), (n + 1,))
        service = np.array(svc[1:])
    sol = path.with_suffix(".sol")
    best = routes = None
    if sol.exists():
        known = vrplib.read_solution(sol)
        best = float(known["cost"])
        routes = [[int(c) for c in r] for r in known["routes"] if len(r)]
    return Instance(
        name=str(raw.get("name", path.stem)),
        distance=distance,
        demand=np.asarray(raw["demand"], dtype=np.int64)[1:],
        capacity=int(raw["capacity"]),
        vehicles=int(raw.get("vehicles", n)),
        windows=windows,
        service=service,
        rounded=rounded,
        best_known=best,
        best_routes=routes,
    )


def solve_instance(
    inst: Instance,
    *,
    time_limit_s: float,
    seed: int = 1,
    scale: int = 100,
    max_iterations: int | None = None,
) -> tuple[MatrixSolution, float]:
    """Solve with `solve_matrix` on distances and times x `scale` (rounded); return it and its true cost.

    Travel time equals distance, as in Solomon's instances; every vehicle must be back by the depot's
    closing time. `max_iterations` also caps the search by iterations: the same result on any machine.
    """
    dist = np.round(inst.distance * scale).astype(np.int64)
    windows = service = None
    shifts: Sequence[tuple[int, int]] | None = None
    if inst.windows is not None and inst.service is not None:
        windows = np.round(inst.windows * scale).astype(np.int64)
        service = np.round(inst.service * scale).astype(np.int64)
        shifts = [(int(windows[0, 0]), int(windows[0, 1]))] * inst.vehicles
    else:
        shifts = [(0, NO_LIMIT)] * inst.vehicles
    sol = solve_matrix(
        dist,
        dist,
        inst.demand,
        [inst.capacity] * inst.vehicles,
        windows=windows,
        service=service,
        shifts=shifts,
        time_limit_s=time_limit_s,
        seed=seed,
        max_iterations=max_iterations,
    )
    return sol, route_cost(inst.distance, [r.clients for r in sol.routes])


def route_cost(distance: npt.NDArray[np.float64], routes: Sequence[Sequence[int]]) -> float:
    """Total length of routes (node indices, depot 0 implied at both ends) on a distance matrix."""
    total = 0.0
    for clients in routes:
        path = [0, *clients, 0]
        total += float(distance[path[:-1], path[1:]].sum())
    return total
