"""Which pending packages a look-ahead round needs to check, so a long queue is not checked whole each round.

A round places at most one package per vehicle, and some optimal matching gives each vehicle one of its
own `capacity` cheapest feasible packages (`controller.matching._candidate_rows`). For a package with no
time window, a vehicle's cost is its free time plus a per-spec figure (trip time, energy, less bonuses)
that does not change from round to round: so each spec's packages are ranked once, and a round checks the
cheapest still open of each ranking (a *prefix*), plus every package with a window. That is enough when
every vehicle finds `capacity` packages it can take in its spec's prefix, or none anywhere; if not, the
round checks the whole queue, as before. At the example station with 50,000 packages, the 55 rounds of
the 8 h look-ahead checked some 20,000 open packages each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller import feasibility as fz

PREFIX_PER_VEHICLE = 4  # a prefix holds this many packages per vehicle (at least MIN_PREFIX)
MIN_PREFIX = 256


@dataclass(frozen=True)
class _Ranking:
    kind: int
    spec: int
    rows: np.ndarray  # the packages this spec could ever carry (no window), cheapest first


@dataclass(frozen=True)
class Window:
    """The rows of one round: `rows` (sorted), and per ranking the positions in `rows` of its prefix (None
    when the prefix is the whole ranking), with the least trip time and energy of the ranking's open rows."""

    rows: np.ndarray
    prefixes: list[tuple[_Ranking, np.ndarray | None, float, float]]


class RowWindows:
    """Rankings made once per plan; `take` picks a round's rows, `enough` says whether they suffice."""

    def __init__(
        self,
        tables: list[fz.SpecTable],
        bonus_s: np.ndarray,
        earliest_s: np.ndarray,
        energy_s_per_wh: float,
        capacity: int,
    ) -> None:
        self.capacity = capacity
        self.prefix = max(MIN_PREFIX, PREFIX_PER_VEHICLE * capacity)
        self.windowed = np.flatnonzero(earliest_s > 0.0)
        self.rankings: list[_Ranking] = []
        plain = earliest_s <= 0.0
        for k, table in enumerate(tables):
            for s in range(table.code.shape[1]):
                rows = np.flatnonzero((table.code[:, s] == fz.OK) & plain)
                base = table.to_drop_s[rows, s] + energy_s_per_wh * table.energy_wh[rows, s] - bonus_s[rows]
                self.rankings.append(_Ranking(k, s, rows[np.argsort(base, kind="stable")]))

    def take(self, open_rows: np.ndarray, tables: list[fz.SpecTable]) -> Window | None:
        """The rows to check this round, or None when the prefixes would hold most of the queue anyway."""
        chosen = [self.windowed[open_rows[self.windowed]]]
        picks = []
        for r in self.rankings:
            ranked = r.rows[open_rows[r.rows]]
            if ranked.size == 0:
                continue
            prefix = ranked[: self.prefix]
            least_s = float(tables[r.kind].to_drop_s[ranked, r.spec].min())
            least_wh = float(tables[r.kind].energy_wh[ranked, r.spec].min())
            picks.append((r, prefix, prefix.size < ranked.size, least_s, least_wh))
            chosen.append(prefix)
        rows = np.unique(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.intp)
        if rows.size * 2 > int(open_rows.sum()):
            return None
        prefixes = [
            (r, np.searchsorted(rows, prefix) if cut else None, least_s, least_wh)
            for r, prefix, cut, least_s, least_wh in picks
        ]
        return Window(rows, prefixes)

    def enough(self, window: Window, matrices: list[fz.PairMatrix], horizon_s: float) -> bool:
        """Every vehicle finds `capacity` feasible rows in its spec's prefix, or can take no open row at all
        (offline, booked until past the horizon for even the quickest trip, or too little charge for the
        lightest)."""
        for r, positions, least_s, least_wh in window.prefixes:
            if positions is None:
                continue
            m = matrices[r.kind]
            cols = np.flatnonzero(m.spec_of == r.spec)
            found = m.feasible[np.ix_(positions, cols)].sum(axis=0)
            none_anywhere = (
                ~m.online[cols] | (m.free_in_s[cols] + least_s > horizon_s) | (m.usable_wh[cols] < least_wh)
            )
            if not ((found >= self.capacity) | none_anywhere).all():
                return False
        return True
