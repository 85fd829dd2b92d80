"""Matching by class (issue 19): the min-cost flow over classes of vehicles finds the per-vehicle optimum.

The reference is what the planner did before: `linear_sum_assignment` over every (package, vehicle) pair,
infeasible pairs priced out, on the same round of the same planner, so the two can only differ in how
they solve it. Fleets are small and random: drones of two models and robots, charges that split a model
into feasibility bands, vehicles busy until different times, offline ones, deadlines, time windows and
priorities.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from controller import feasibility as fz
from controller.assignment import DEADLINE_BONUS_S, ENERGY_S_PER_WH, PRIORITY_S, Demand, Planner, _soonest
from controller.matching import match_round
from tests.controller.test_assignment import AT, drone, make_station, pkg, robot
from vehicles.spec import DRONE_DEFAULT

BIG_DRONE = DRONE_DEFAULT.model_copy(
    update={"model": "big", "battery_wh": DRONE_DEFAULT.battery_wh * 1.5, "cruise_speed_mps": 15.0}
)

package_st = st.tuples(
    st.floats(0.2, 4.0),  # kg
    st.floats(-14000, 14000),  # x
    st.floats(-14000, 14000),  # y
    st.integers(0, 2),  # priority
    st.sampled_from([None, 20.0, 40.0, 90.0]),  # deadline, min from now
    st.sampled_from([None, None, 30.0, 70.0]),  # earliest, min from now
)
vehicle_st = st.tuples(
    st.sampled_from(["drone", "big", "robot"]),
    st.sampled_from([0.35, 0.5, 0.5, 0.7, 1.0, 1.0]),  # charge: repeats make classes
    st.sampled_from([0.0, 0.0, 0.0, 300.0, 900.0]),  # busy for (s)
    st.sampled_from([True, True, True, False]),  # online (mostly)
)


def _round(station, packages: list[Demand], fleet, horizon_s: float = 8 * 3600.0):
    """The planner's first round, as it sets it up: matrices per kind, and the packages' bonuses."""
    planner = Planner(station, at=AT, horizon_s=horizon_s)
    n = len(packages)
    weight = np.array([p.weight_kg for p in packages])
    lat = np.array([p.dest_lat for p in packages])
    lon = np.array([p.dest_lon for p in packages])
    deadline = np.array([planner._seconds(p.deadline, np.inf) for p in packages])
    earliest = np.array([planner._seconds(p.earliest, 0.0) for p in packages])
    priority = np.array([p.priority for p in packages], dtype=float)
    kinds = planner._kinds(fleet, weight, lat, lon)
    rows = np.arange(n)
    matrices = [
        fz.pair_matrix(k.table, k.fleet, rows, deadline_s=deadline, earliest_s=earliest, horizon_s=horizon_s)
        for k in kinds
    ]
    bonus = PRIORITY_S * priority + DEADLINE_BONUS_S * np.isfinite(deadline)
    return matrices, bonus


def _pair_cost(m: fz.PairMatrix, bonus: np.ndarray, row: int, v: int) -> float:
    return float(m.eta_s(row, v) + ENERGY_S_PER_WH * m.energy_wh(row, v) - bonus[row])


def _per_vehicle_optimum(matrices: list[fz.PairMatrix], bonus: np.ndarray) -> tuple[int, float]:
    """Pairs and total cost of `linear_sum_assignment` over every vehicle, as the planner used to solve."""
    n = len(bonus)
    columns = []
    for m in matrices:
        for v in range(m.feasible.shape[1]):
            rows = np.arange(n)
            cost = np.array([_pair_cost(m, bonus, r, v) for r in rows])
            columns.append(np.where(m.feasible[:, v], cost, 1e12))
    if not columns:
        return 0, 0.0
    cost = np.column_stack(columns)
    r, c = linear_sum_assignment(cost)
    ok = cost[r, c] < 1e12
    return int(ok.sum()), float(cost[r, c][ok].sum())


def _fleet(vehicles):
    fleet = []
    for i, (model, charge, busy, online) in enumerate(vehicles):
        if model == "robot":
            v = robot(f"r{i}", charge)
        else:
            v = drone(f"d{i}", charge, online=online)
            if model == "big":
                v = replace(v, spec=BIG_DRONE)
        fleet.append(replace(v, free_in_s=busy))
    return fleet


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    packages=st.lists(package_st, min_size=1, max_size=14),
    vehicles=st.lists(vehicle_st, min_size=1, max_size=9),
)
def test_class_solve_equals_the_per_vehicle_optimum(tmp_path, packages, vehicles) -> None:
    station = make_station(tmp_path, [])
    demands = [
        pkg(
            f"p{i}",
            kg,
            x,
            y,
            priority=prio,
            deadline=None if due is None else AT + timedelta(minutes=due),
            earliest=None if opens is None else AT + timedelta(minutes=opens),
        )
        for i, (kg, x, y, prio, due, opens) in enumerate(packages)
    ]
    matrices, bonus = _round(station, demands, _fleet(vehicles))
    pairs = match_round(matrices, bonus, ENERGY_S_PER_WH)
    n = len(demands)

    assert len({p.row for p in pairs}) == len(pairs)  # a package once
    assert len({(p.kind, p.vehicle) for p in pairs}) == len(pairs)  # a vehicle once
    assert all(matrices[p.kind].feasible[p.row, p.vehicle] for p in pairs)
    total = sum(_pair_cost(matrices[p.kind], bonus, p.row, p.vehicle) for p in pairs)
    n_best, best = _per_vehicle_optimum(matrices, bonus)
    assert len(pairs) == n_best
    assert abs(total - best) <= 1e-3 * max(1, n_best), (total, best)
    for m in matrices:  # a busy tick's queue: each package's soonest ETA, worked out without (R, V) floats
        every = [
            [m.eta_s(r, v) if m.feasible[r, v] else np.inf for v in range(len(m.spec_of))] for r in range(n)
        ]
        assert np.array_equal(_soonest(m), np.min(every, axis=1, initial=np.inf))


def test_a_class_hands_its_best_charge_to_its_hardest_trip(tmp_path) -> None:
    """Two drones of one model that can both fly both trips are one class; the fuller takes the longer."""
    station = make_station(tmp_path, [])
    fleet = [drone("low", 0.9), drone("high", 1.0)]
    decisions = {
        d.package_id: d
        for d in Planner(station, at=AT).plan([pkg("near", 1.0, 2000, 0), pkg("far", 1.0, 6000, 0)], fleet)
    }
    assert decisions["far"].vehicle_id == "high" and decisions["near"].vehicle_id == "low"


def test_many_drones_of_one_model_are_few_classes(tmp_path) -> None:
    """The case issue 19 measured: 200 drones of one model, free together, in a handful of charge bands,
    for 600 packages: every drone gets a package it can fly, the far ones the charged drones."""
    station = make_station(tmp_path, [])
    rng = np.random.default_rng(5)
    charges = rng.choice([0.4, 0.6, 0.8, 1.0], 200)
    fleet = [drone(f"d{i}", float(c)) for i, c in enumerate(charges)]
    xs = rng.uniform(500, 15000, 600)
    demands = [pkg(f"p{i}", 1.5, float(x), 0) for i, x in enumerate(xs)]
    matrices, bonus = _round(station, demands, fleet)
    pairs = match_round(matrices, bonus, ENERGY_S_PER_WH)
    n_best, best = _per_vehicle_optimum(matrices, bonus)
    total = sum(_pair_cost(matrices[p.kind], bonus, p.row, p.vehicle) for p in pairs)
    assert len(pairs) == n_best == 200
    assert abs(total - best) <= 1e-3 * n_best


def test_a_long_look_ahead_checks_a_window_of_the_queue_and_decides_the_same(tmp_path, monkeypatch) -> None:
    """Rounds after the first check only the cheapest open packages of each model's ranking (plus those
    with a time window) when that is provably enough; the plan is the same as checking the whole queue."""
    from controller import lookahead

    station = make_station(tmp_path, [])
    rng = np.random.default_rng(8)
    demands = []
    for i in range(400):
        x, y = rng.uniform(-12000, 12000, 2)
        due = AT + timedelta(minutes=float(rng.uniform(30, 150))) if i % 2 == 0 else None
        opens = AT + timedelta(minutes=float(rng.uniform(20, 120))) if i % 17 == 0 else None
        kg = float(rng.uniform(0.3, 4.0))
        demands.append(pkg(f"p{i}", kg, x, y, priority=int(i % 3 == 0), deadline=due, earliest=opens))
    fleet = [drone(f"d{i}", c) for i, c in enumerate([1.0, 1.0, 0.8, 0.6, 0.45, 0.9])]
    fleet += [drone("off", online=False), robot("r1"), robot("r2", 0.6)]

    def decide() -> dict[str, tuple]:
        decisions = Planner(station, at=AT, horizon_s=4 * 3600.0).plan(demands, fleet)
        assert all(d.reasons for d in decisions if d.status == "van")
        return {d.package_id: (d.status, d.vehicle_id, d.eta) for d in decisions}

    whole = decide()  # 400 packages, 8 vehicles: every round's prefixes hold most of the queue
    windows = []
    enough = lookahead.RowWindows.enough

    def spy(self, window, matrices, horizon_s):
        ok = enough(self, window, matrices, horizon_s)
        windows.append((window.rows.size, ok))
        return ok

    monkeypatch.setattr(lookahead, "MIN_PREFIX", 8)
    monkeypatch.setattr(lookahead, "PREFIX_PER_VEHICLE", 2)
    monkeypatch.setattr(lookahead.RowWindows, "enough", spy)
    windowed = decide()
    assert sum(ok for _, ok in windows) >= 5, windows  # most rounds checked a window of the queue
    assert windowed == whole
    assert sum(s == "queued" for s, *_ in whole.values()) > 50
