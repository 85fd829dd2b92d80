"""The machinery of `fit_flight`: forbidden launch shifts as intervals, and the arrival's own remedies.

Shifting a launch by s shifts every window of the flight by s (margins depend on elapsed flight time
only). A candidate volume [c0, c1] and a reserved one [r0, r1] that meet in space and altitude therefore
conflict exactly for s in [r0 - c1, r1 - c0]: one book query per combination of pads and layers gives every
launch time it rules out, and the first free one on the grid follows by a sweep, however busy the sky.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from shapely.geometry import Polygon

from controller.airspace.book import AirspaceBook
from controller.airspace.flight import FlightIntent, Slot, flight_volume_arrays
from controller.airspace.margins import Margins
from controller.airspace.pads import Pad
from controller.airspace.volumes import VolumeArrays

__all__ = ["Forbidden", "Search", "arrival_start", "first_free"]

_TINY_S = 1e-3  # past a window's end: closed intervals touch at equality
_COLUMNS = ("departure", "climb-out", "approach", "arrival")  # phases over the pads


def arrival_start(arr: VolumeArrays) -> int:
    """Index of the first volume after the holding point: what a hold or another landing pad can move."""
    for i, phase in enumerate(arr.phases):
        if phase.startswith(("final", "approach")):
            return i
    return len(arr)


def first_free(lo: np.ndarray, hi: np.ndarray, start: float, step: float) -> float:
    """The first multiple of `step` at or after `start` that lies in no closed interval [lo, hi]."""
    s = math.ceil(start / step - 1e-9) * step
    order = np.argsort(lo, kind="stable")
    for a, b in zip(lo[order].tolist(), hi[order].tolist(), strict=True):
        if a > s:
            break  # every later interval starts even later; every earlier one ends before s
        if b >= s:
            s = (math.floor(b / step + 1e-9) + 1) * step
    return s


@dataclass(frozen=True)
class Forbidden:
    """Launch shifts (seconds after the search's earliest time) ruled out by the pad columns of a combination.

    `pre`: the interval comes from a volume before the holding point (take-off and climb-out), which no
    hold or other landing pad can move.
    """

    lo: np.ndarray
    hi: np.ndarray
    pre: np.ndarray

    def hold_candidates(self, stop: float, step: float) -> Iterator[tuple[float, float]]:
        """(shift, hold it would take) below `stop` where the take-off is clear and the landing is not.

        The hold is an estimate from the columns alone: how long the arrival must wait for the pad.
        """
        pre = self.pre
        lo, hi = self.lo[pre], self.hi[pre]
        tail_lo, tail_hi = self.lo[~pre], self.hi[~pre]
        s = first_free(lo, hi, 0.0, step)
        while s < stop:
            covering = (tail_lo <= s) & (s <= tail_hi)
            if covering.any():
                yield s, float(np.max(tail_hi[covering]) - s)
            s = first_free(lo, hi, s + step, step)


class Search:
    """Volumes per combination, built once at `earliest_s` and shifted; attempts at exact launch times."""

    def __init__(
        self,
        book: AirspaceBook,
        make: Callable[[Slot], FlightIntent],
        margins: Margins,
        earliest_s: float,
        since_s: float | None = None,
        *,
        landing: bool = True,
    ) -> None:
        self.book, self.make, self.margins, self.earliest_s = book, make, margins, earliest_s
        self.since_s = since_s  # only volumes still open at this time count (a flight under way)
        self.landing = landing  # False: volumes up to the holding point only (the landing is booked later)
        self._cache: dict[tuple[Pad, Pad, float, float, float, bool], VolumeArrays] = {}
        self._shapes: dict[tuple[float, ...], Polygon] = {}  # buffers shared by the combinations

    def arrays(self, slot: Slot, *, columns: bool = False) -> VolumeArrays:
        """The volumes of `slot` (only those over the pads with `columns`), built once per combination."""
        key = (
            slot.pad,
            slot.landing_pad,
            slot.cruise_alt_out_m,
            slot.cruise_alt_back_m,
            slot.hold_s,
            columns,
        )
        if key not in self._cache:
            intent = self.make(Slot(self.earliest_s, *key[:5]))
            phases = _COLUMNS if columns else None
            self._cache[key] = flight_volume_arrays(
                intent, self.margins, phases=phases, shape_cache=self._shapes, landing=self.landing
            )
        arr = self._cache[key].shifted(slot.t_launch_s - self.earliest_s)
        return arr if self.since_s is None else arr.take(arr.t1_s >= self.since_s)

    def attempt(self, slot: Slot) -> tuple[VolumeArrays, np.ndarray, np.ndarray]:
        """The volumes of `slot` and the (candidate, reserved slot) pairs that conflict."""
        arr = self.arrays(slot)
        return (arr, *self.book._pairs(arr))

    def _first_free(
        self, arr: VolumeArrays, start: float, limit: float, step: float
    ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """First free shift >= `start` of `arr`, with the intervals (lo, hi, candidate) seen on the way.

        Looks ahead in windows that double from ten minutes, so a busy hour costs a few queries and a free
        sky one; stops past `limit` (the deadline, or a better combination's shift), where the shift
        returned is only a lower bound.
        """
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        width = max(600.0, 8 * step)
        while True:
            end = min(start + width, max(limit, start))
            ci, sj = self.book._pairs(arr, start, end)
            parts.append((self.book._win[sj, 0] - arr.t1_s[ci], self.book._win[sj, 1] - arr.t0_s[ci], ci))
            lo, hi, cand = (np.concatenate([p[k] for p in parts]) for k in range(3))
            s = first_free(lo, hi, start, step)
            if s <= end or end >= limit:
                return s, lo, hi, cand
            start, width = s, 2 * width

    def columns_free(self, slot: Slot, limit: float, step: float) -> float:
        """The first launch shift at which the pad columns of `slot` are free (a lower bound past `limit`)."""
        return self._first_free(self.arrays(slot, columns=True), 0.0, limit, step)[0]

    def first_fit(self, slot: Slot, limit: float, step: float) -> tuple[float, Forbidden]:
        """The first free launch shift of `slot` (a lower bound past `limit`), and what its pads forbid.

        The columns over the pads are where launches queue, and their few volumes are cheap to build and
        check: they are searched first, over the whole range, and the whole flight only from where they
        are free, so a combination whose pads are busy past the best so far costs little.
        """
        columns = self.arrays(slot, columns=True)
        s, lo, hi, cand = self._first_free(columns, 0.0, limit, step)
        forbidden = Forbidden(lo, hi, cand < arrival_start(columns))
        if s <= limit:
            s = self._first_free(self.arrays(slot), s, limit, step)[0]
        return s, forbidden

    def need_s(self, arr: VolumeArrays, ci: np.ndarray, sj: np.ndarray) -> float:
        """How much later the volumes must start to clear every pair that conflicts now."""
        return float(np.max(self.book._win[sj, 1] - arr.t0_s[ci])) + _TINY_S

    def arrival(
        self, slot: Slot, landing_pads: Sequence[Pad], max_hold_s: float
    ) -> tuple[Slot, VolumeArrays] | None:
        """`slot` with another landing pad, or a longer hold, when only its arrival conflicts; else None."""
        for pad in landing_pads:
            if pad != slot.landing_pad:
                other = dataclasses.replace(slot, landing_pad=pad)
                arr, ci, _ = self.attempt(other)
                if not len(ci):
                    return other, arr
        if max_hold_s <= 0:
            return None
        hold = slot.hold_s
        arr, ci, sj = self.attempt(slot)
        for _ in range(64):
            if len(ci) and ci.min() < arrival_start(arr):
                return None  # the hold itself, or what comes before it, is in the way
            # the windows after the hold start later by hold * (1 - time_fraction) at least
            grow = self.need_s(arr, ci, sj) / (1.0 - self.margins.time_fraction)
            hold = float(math.ceil(hold + max(grow, 1.0)))
            if hold > slot.hold_s + max_hold_s:
                return None
            held = dataclasses.replace(slot, hold_s=hold)
            arr, ci, sj = self.attempt(held)
            if not len(ci):
                return held, arr
        return None
