"""Van routes for the packages no drone or robot can carry: the answer to `GET /v1/van-routes`.

Two layers, separable on purpose:
- `plan_van_routes` speaks the dispatcher's language: stops in lat/lon with kg, m³ and datetimes, vans
  with capacities and shifts; it estimates road distances (great circle x circuity 1.3) and screens out
  what no van can do, with reasons.
- `solve_matrix` is the bare optimiser (PyVRP): integer distance/duration matrices, demands, windows and
  capacities; the tests and `bench/vans.py` hold it to published best-known solutions.
See docs/vans.md.
"""

from controller.vans._geo import CIRCUITY, great_circle_matrix, road_distance_matrix
from controller.vans._instances import Instance, load_instance, route_cost, solve_instance
from controller.vans._model import Van, VanPlan, VanRoute, VanStop
from controller.vans._plan import plan_van_routes, plan_violations
from controller.vans._solver import NO_LIMIT, MatrixRoute, MatrixSolution, solve_matrix
from controller.vans._validate import stop_from_dict, van_from_dict

__all__ = [
    "CIRCUITY",
    "NO_LIMIT",
    "Instance",
    "MatrixRoute",
    "MatrixSolution",
    "Van",
    "VanPlan",
    "VanRoute",
    "VanStop",
    "great_circle_matrix",
    "load_instance",
    "plan_van_routes",
    "plan_violations",
    "road_distance_matrix",
    "route_cost",
    "solve_instance",
    "solve_matrix",
    "stop_from_dict",
    "van_from_dict",
]
