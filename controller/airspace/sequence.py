"""Approach sequencing: which drone lands when, planned at launch, so the station never launches more
drones than its pads' columns can take back.

The 4D book only holds a landing once it is booked late (`StationAirspace.on_progress`), so on its own it
would let departures fill a column that drones already in the air will need: they would come home to a
queue. The sequencer keeps, per column of air (pads closer than two pad radii share one), a landing slot
for every flight from its launch on: a time interval on one axis, where the 4D book has four. A launch is
only admitted when its own slot fits between the others (a planned wait at the holding point may move it),
and a departure may not take the column during another flight's slot. When the real landing is booked, its
slot becomes what the book holds.

A slot has two starts: `over` (the drone comes over the pads) and `low` (it descends below the altitude at
which a second drone can wait above the one landing). Two landings must not overlap from `low` on; a
departure, which climbs through everything, must stay out from `over` on.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

from controller.airspace.pads import Pad

__all__ = ["LandingSlot", "Sequencer", "columns"]


@dataclass(frozen=True)
class LandingSlot:
    """When a landing uses its column (clock seconds).

    Over the pads from `over`, low from `low`, until `end`.
    """

    over: float
    low: float
    end: float

    def shifted(self, dt_s: float) -> LandingSlot:
        """The same slot `dt_s` seconds later."""
        return LandingSlot(self.over + dt_s, self.low + dt_s, self.end + dt_s)


def columns(pads: Iterable[Pad], reach_m: float) -> dict[str, int]:
    """Pad name -> column number.

    Pads closer than `reach_m` (two pad radii), directly or in a chain, share one.
    """
    pads = list(pads)
    group = list(range(len(pads)))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i, j in itertools.combinations(range(len(pads)), 2):
        if math.dist(pads[i].xy, pads[j].xy) <= reach_m:
            group[root(j)] = root(i)
    roots = sorted({root(i) for i in range(len(pads))})
    return {p.name: roots.index(root(i)) for i, p in enumerate(pads)}


class Sequencer:
    """Landing slots per column: `fits`, `first_fit` and `departure_free` are what planning asks."""

    def __init__(self) -> None:
        self._slots: dict[str, tuple[int, LandingSlot]] = {}

    def __contains__(self, flight_id: object) -> bool:
        return flight_id in self._slots

    def set(self, flight_id: str, column: int, slot: LandingSlot) -> None:
        """Keep `slot` for `flight_id` (replacing its previous one)."""
        self._slots[flight_id] = (column, slot)

    def drop(self, flight_id: str) -> None:
        """The flight landed or was cancelled."""
        self._slots.pop(flight_id, None)

    def _others(self, column: int, flight_id: str) -> list[LandingSlot]:
        return [s for f, (c, s) in self._slots.items() if c == column and f != flight_id]

    def blocker(self, flight_id: str, column: int, slot: LandingSlot) -> LandingSlot | None:
        """Another flight's slot that overlaps `slot` from `low` on (None: it fits)."""
        for s in self._others(column, flight_id):
            if slot.low <= s.end and s.low <= slot.end:
                return s
        return None

    def first_fit(
        self, flight_id: str, column: int, slot: LandingSlot, latest_shift_s: float
    ) -> float | None:
        """The smallest shift in [0, latest_shift_s] that makes `slot` fit, or None."""
        shift = 0.0
        for _ in range(len(self._slots) + 1):
            if shift > latest_shift_s:
                return None
            s = self.blocker(flight_id, column, slot.shifted(shift))
            if s is None:
                return shift
            shift = s.end - slot.low + 1e-3
        return None

    def departure_free(self, flight_id: str, column: int, t0: float, t1: float) -> float | None:
        """None when a departure may use the column over [t0, t1]; else when the slot in its way ends."""
        ends = [s.end for s in self._others(column, flight_id) if t0 <= s.end and s.over <= t1]
        return max(ends) if ends else None

    def prune(self, before_s: float) -> None:
        """Forget slots that ended before `before_s`."""
        self._slots = {f: v for f, v in self._slots.items() if v[1].end >= before_s}
