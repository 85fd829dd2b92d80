"""One planning round's matching, solved over classes of interchangeable vehicles.

A round pairs pending packages with vehicles at the least total cost (ETA + energy - bonuses), as many
pairs as can be made. `linear_sum_assignment` solved it per vehicle, but vehicles of one model have the
same cost column, the worst case for shortest augmenting paths: at 10,000 x 1,000 the solve was 40-130
times slower than on a random matrix of that shape. Here vehicles that are interchangeable for the round
form a *class*: same kind and spec, the same feasible packages (charge and deadline bands), and costs
that differ only by a constant per vehicle (when it is free), which holds unless a package's time window
binds (then only vehicles free at the same instant share a class). The round is then a transportation
problem, packages x classes, solved as a min-cost flow (OR-Tools' `SimpleMinCostFlow`; a package left
without a vehicle takes a bypass priced above any pair, so as many pairs as can be made come first, as
pricing infeasible pairs out did for the per-vehicle solve); its optimum is the per-vehicle optimum
(`tests/controller/test_assignment_classes.py`). A model's charge bands, whose feasible packages nest,
are a chain in the flow rather than a class each. Vehicles are handed out inside each class afterwards.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow

from controller.feasibility import PairMatrix

# Costs go to the solver as integers: micro-seconds, unless that could overflow its int64 arithmetic.
_COST_SCALE = 1e6
_INT_BUDGET = 2e17


@dataclass(frozen=True)
class Pair:
    """A package (row of the round) given to a vehicle (index in its kind's fleet)."""

    row: int
    kind: int
    vehicle: int


@dataclass
class _Class:
    kind: int
    spec: int
    vehicles: np.ndarray  # indices in the kind's fleet
    column: np.ndarray  # (R,) the class's cost over all rows of the round, less the vehicle's free time


def match_round(matrices: list[PairMatrix], bonus_s: np.ndarray, energy_s_per_wh: float) -> list[Pair]:
    """The most pairs at the least cost of `to_drop + free/earliest wait + energy_s_per_wh * Wh - bonus`."""
    classes = _classes(matrices, bonus_s, energy_s_per_wh, rows=None)
    if not classes:
        return []
    capacity = sum(len(c.vehicles) for c in classes)
    n_rows = len(bonus_s)
    if n_rows > 2 * capacity:
        keep = _candidate_rows(matrices, classes, capacity)
        classes = _classes(matrices, bonus_s, energy_s_per_wh, rows=keep)
    else:
        keep = np.arange(n_rows)
    return _solve(matrices, classes, keep, bonus_s)


def _free_key(m: PairMatrix, cols: np.ndarray, spec: int) -> np.ndarray:
    """Per vehicle: nan when its cost is (its free time) + (a column of the spec), else its free time.

    eta = max(free + to_drop, earliest): the free time adds a constant to the vehicle's whole column unless
    some package it could take has a window that opens after it could be there.
    """
    free = m.free_in_s[cols]
    window = np.flatnonzero(m.earliest_s > 0.0)
    if window.size == 0:
        return np.full(cols.size, np.nan)
    opens = m.earliest_s[window] - m.to_drop_s[window, spec]
    binds = (m.feasible[np.ix_(window, cols)] & (opens[:, None] > free[None, :])).any(axis=0)
    return np.where(binds, free, np.nan)


def _classes(
    matrices: list[PairMatrix], bonus_s: np.ndarray, w: float, rows: np.ndarray | None
) -> list[_Class]:
    """Vehicles grouped by (kind, spec, free time where it is not a shift, feasible rows among `rows`)."""
    classes: list[_Class] = []
    for k, m in enumerate(matrices):
        feasible = m.feasible if rows is None else m.feasible[rows]
        useful = feasible.any(axis=0)
        for s in np.unique(m.spec_of[useful]):
            cols = np.flatnonzero(useful & (m.spec_of == s))
            keys = _free_key(m, cols, int(s))
            packed = np.packbits(feasible[:, cols], axis=0).T
            groups: dict[tuple[float | None, bytes], list[int]] = {}
            for v, key, bits in zip(cols.tolist(), keys.tolist(), packed, strict=True):
                groups.setdefault((None if np.isnan(key) else key, bits.tobytes()), []).append(v)
            columns: dict[float | None, np.ndarray] = {}
            for (key, _), members in groups.items():
                if key not in columns:
                    columns[key] = _column(m, int(s), key, bonus_s, w)
                classes.append(_Class(k, int(s), np.asarray(members), columns[key]))
    return classes


def _column(m: PairMatrix, s: int, free: float | None, bonus_s: np.ndarray, w: float) -> np.ndarray:
    """A class's cost over every row of the round, less the free time of whichever vehicle carries it."""
    to_drop = m.to_drop_s[:, s]
    energy = m.trip_energy_wh[:, s]
    # eta - free: to_drop where no window binds
    arrive = to_drop if free is None else np.maximum(free + to_drop, m.earliest_s) - free
    return arrive + w * energy - bonus_s


def _candidate_rows(matrices: list[PairMatrix], classes: list[_Class], capacity: int) -> np.ndarray:
    """The rows an optimal matching needs: the union of every class's `capacity` cheapest feasible rows.

    If a class held a row outside its `capacity` cheapest, one of those is free (the other pairs hold at
    most capacity - 1 rows), and moving there costs no more. Vehicles of one model rank packages alike,
    so the union is small. Classes of one cost column whose rows nest (a model's charge bands: 525 of them
    over 10,000 rows at 10,000 x 1,000) sort the column once: band i's cheapest are the first `capacity`
    of the sorted rows that band i can take.
    """
    keep = np.zeros(len(classes[0].column), dtype=bool)
    for group in _by_column(classes).values():
        sets = _sets(matrices, group, None)
        chain = _nesting(sets)
        if chain is None:
            for c, feasible in zip(group, sets, strict=True):
                rows = np.flatnonzero(feasible)
                if rows.size > capacity:
                    rows = rows[np.argpartition(c.column[rows], capacity - 1)[:capacity]]
                keep[rows] = True
            continue
        band = len(chain) - sets.sum(axis=0)  # nested: the lowest band that can take each row
        rows = np.flatnonzero(band < len(chain))
        rows = rows[np.argsort(group[0].column[rows], kind="stable")]
        bands = band[rows]
        for position in range(len(chain)):
            keep[rows[np.flatnonzero(bands <= position)[:capacity]]] = True
    return np.flatnonzero(keep)


def _sets(matrices: list[PairMatrix], group: list[_Class], rows: np.ndarray | None) -> np.ndarray:
    """(classes, rows): each class's feasible rows, one contiguous row each (a column of the pair matrix
    is a strided read, and the nesting checks read each several times)."""
    m = matrices[group[0].kind]
    feasible = m.feasible if rows is None else m.feasible[rows]
    return np.ascontiguousarray(feasible[:, [c.vehicles[0] for c in group]].T)


def _by_column(classes: list[_Class]) -> dict[int, list[_Class]]:
    """Classes that share a cost column (one kind, spec and free-time key)."""
    groups: dict[int, list[_Class]] = {}
    for c in classes:
        groups.setdefault(id(c.column), []).append(c)
    return groups


def _nesting(sets: np.ndarray) -> list[int] | None:
    """The order (smallest first) in which these feasible sets (one a row) nest, or None if they do not."""
    if len(sets) < 2:
        return None
    order = np.argsort(sets.sum(axis=1), kind="stable")
    ordered = sets[order]
    if (ordered[:-1] & ~ordered[1:]).any():
        return None
    return order.tolist()


def _solve(
    matrices: list[PairMatrix], classes: list[_Class], rows: np.ndarray, bonus_s: np.ndarray
) -> list[Pair]:
    """Min-cost max-flow: source -> row (1) -> class (1, its column) -> sink (a vehicle's free time).

    Classes that share a cost column and whose feasible rows nest (charge bands of one model, free
    together: each band takes all the lower one takes) form a chain: a row enters at the lowest band
    that can carry it and may climb (free arcs band -> next band). One arc a row instead of one a
    (row, band): at 10,000 x 1,000 that took the flow from some 10^5 arcs to a few thousand.
    """
    n_rows, n_classes = len(rows), len(classes)
    arc_rows, arc_classes, arc_cost = [], [], []
    chains: list[list[int]] = []
    groups: dict[int, list[int]] = {}
    for j, c in enumerate(classes):
        groups.setdefault(id(c.column), []).append(j)
    for members in groups.values():
        sets = _sets(matrices, [classes[j] for j in members], rows)
        order = _nesting(sets)
        column = classes[members[0]].column[rows]
        if order is not None:
            chain = [members[i] for i in order]
            chains.append(chain)
            entry = np.full(n_rows, -1)
            for i in reversed(order):
                entry[sets[i]] = members[i]
            r = np.flatnonzero(entry >= 0)
            arc_rows.append(r)
            arc_classes.append(entry[r])
            arc_cost.append(column[r])
            continue
        for j, feasible in zip(members, sets, strict=True):
            r = np.flatnonzero(feasible)
            arc_rows.append(r)
            arc_classes.append(np.full(r.size, j))
            arc_cost.append(column[r])
    tail = np.concatenate(arc_rows)
    head = np.concatenate(arc_classes)
    cost = np.concatenate(arc_cost)
    if tail.size == 0:
        return []
    cost = cost - cost.min()  # every pair crosses one such arc: a constant changes no choice
    climb = [(a, b) for chain in chains for a, b in itertools.pairwise(chain)]
    sink_tail, sink_cap, sink_cost, sink_members = [], [], [], []
    for j, c in enumerate(classes):
        free = matrices[c.kind].free_in_s[c.vehicles]
        for value in np.unique(free):
            members = c.vehicles[free == value]
            sink_tail.append(j)
            sink_cap.append(members.size)
            sink_cost.append(value)
            sink_members.append(members)
    sink_costs = np.asarray(sink_cost, dtype=float)
    sink_costs -= sink_costs.min()
    nodes = n_rows + n_classes + 2
    top = max(float(cost.max()), float(sink_costs.max()), 1.0)
    scale = min(_COST_SCALE, _INT_BUDGET / (top * 2 * nodes))
    source, sink = n_rows + n_classes, n_rows + n_classes + 1
    flow = min_cost_flow.SimpleMinCostFlow()
    n_arcs, n_sinks = tail.size, len(sink_tail)
    climb_from = np.array([a for a, _ in climb], dtype=np.int64)
    climb_to = np.array([b for _, b in climb], dtype=np.int64)
    flow.add_arcs_with_capacity_and_unit_cost(
        np.concatenate([np.full(n_rows, source), tail, n_rows + np.asarray(sink_tail), n_rows + climb_from]),
        np.concatenate([np.arange(n_rows), n_rows + head, np.full(n_sinks, sink), n_rows + climb_to]),
        np.concatenate([np.ones(n_rows + n_arcs), sink_cap, np.full(len(climb), n_rows)]).astype(np.int64),
        np.concatenate(
            [np.zeros(n_rows), np.rint(cost * scale), np.rint(sink_costs * scale), np.zeros(len(climb))]
        ).astype(np.int64),
    )
    # A row left without a vehicle goes straight to the sink at a price above any pair's: as many pairs as
    # can be made first, then the cheapest (what pricing infeasible pairs out did for the per-vehicle solve).
    flow.add_arc_with_capacity_and_unit_cost(source, sink, n_rows, int(np.rint(3 * top * scale)) + 2)
    flow.set_node_supply(source, n_rows)
    flow.set_node_supply(sink, -n_rows)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed: {status}")
    flows = flow.flows(np.arange(n_rows, n_rows + n_arcs + n_sinks))
    used = flows[:n_arcs] > 0
    taken = flows[n_arcs:]
    got, class_of = rows[tail[used]], head[used]
    if chains:
        got, class_of = _climb(matrices, classes, chains, got, class_of, taken, sink_tail)
    return _hand_out(matrices, classes, got, class_of, bonus_s, (taken, sink_tail, sink_members))


def _climb(
    matrices: list[PairMatrix],
    classes: list[_Class],
    chains: list[list[int]],
    rows: np.ndarray,
    class_of: np.ndarray,
    taken: np.ndarray,
    sink_tail: list[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Which band of a chain serves each row that entered it: every band keeps as many as its vehicles took,
    the lightest trips of those that reached it; the hardest climb to the better-charged bands."""
    served = np.zeros(len(classes), dtype=np.int64)
    np.add.at(served, np.asarray(sink_tail, dtype=np.intp), taken)
    class_of = class_of.copy()
    for chain in chains:
        c = classes[chain[0]]
        energy = matrices[c.kind].trip_energy_wh[:, c.spec]
        pool = np.empty(0, dtype=np.intp)
        for j in chain:
            pool = np.concatenate([pool, np.flatnonzero(class_of == j)])
            pool = pool[np.argsort(energy[rows[pool]], kind="stable")]
            stay, pool = pool[: served[j]], pool[served[j] :]
            class_of[stay] = j
            class_of[pool] = -1  # still climbing
        assert pool.size == 0, "a chain's flow left rows without a vehicle"
    return rows, class_of


def _hand_out(
    matrices: list[PairMatrix],
    classes: list[_Class],
    rows: np.ndarray,
    class_of: np.ndarray,
    bonus_s: np.ndarray,
    sinks: tuple[np.ndarray, list[int], list[np.ndarray]],
) -> list[Pair]:
    """Inside a class any vehicle serves any of its rows at the same total cost: the vehicles free soonest
    go to the highest bonus, and among those free at once, the best charge to the hardest trip."""
    taken, sink_class, sink_members = sinks
    chosen: dict[int, list[np.ndarray]] = {}
    for j, n, members in zip(sink_class, taken.tolist(), sink_members, strict=True):
        if n:
            m = matrices[classes[j].kind]
            best = members[np.argsort(-m.usable_wh[members], kind="stable")[:n]]
            chosen.setdefault(j, []).append(best)
    pairs: list[Pair] = []
    for j, picks in chosen.items():
        c = classes[j]
        m = matrices[c.kind]
        vehicles = np.concatenate(picks)
        vehicles = vehicles[np.lexsort((-m.usable_wh[vehicles], m.free_in_s[vehicles]))]
        mine = rows[class_of == j]
        mine = mine[np.argsort(-bonus_s[mine], kind="stable")]
        # vehicles are in blocks of one free time: inside each, the hardest trip first
        _, block = np.unique(m.free_in_s[vehicles], return_inverse=True)
        mine = mine[np.lexsort((-m.trip_energy_wh[mine, c.spec], block))]
        pairs.extend(map(Pair, mine.tolist(), [c.kind] * len(mine), vehicles.tolist()))
    return pairs
