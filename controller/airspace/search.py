"""The machinery of `fit_flight`: forbidden launch shifts as intervals, and the arrival's own remedies.

Shifting a launch by s shifts every window of the flight by s (margins depend on elapsed flight time
only). A candidate volume [c0, c1] and a reserved one [r0, r1] that meet in space and altitude therefore
conflict exactly for s in [r0 - c1, r1 - c0]: one book query per combination of pads and layers gives every
launch time it rules out, and the first free one on the grid follows by a sweep, however busy the sky.
"""

from __future__ import annotations

import dataclasses
import itertools
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

__all__ = ["Candidates", "Forbidden", "Search", "arrival_start", "first_free"]

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


class Candidates:
    """One flight's volumes per combination (pads, layers, hold), built once at `ref_s` and shifted in time.

    Building a combination's volumes (path, buffers, footprints) costs more than asking the book about
    them, and one `StationAirspace.plan` asks `fit_flight` several times over the same pads (a first fit,
    then pad by pad, then again after the landing sequence refused): shared by those searches, each
    combination is built once per request instead of once per search. Valid for one `make` whose geometry
    does not depend on the launch time (fit_flight's rule), one set of margins and one `landing`.
    """

    def __init__(
        self,
        make: Callable[[Slot], FlightIntent],
        margins: Margins,
        ref_s: float,
        *,
        landing: bool = True,
        departures: dict[tuple[object, ...], VolumeArrays] | None = None,
    ) -> None:
        self.make, self.margins, self.ref_s, self.landing = make, margins, ref_s, landing
        self._built: dict[tuple[Pad, Pad, float, float, float, bool], VolumeArrays] = {}
        self._shapes: dict[tuple[float, ...], Polygon] = {}  # buffers shared by the combinations
        # Shared between requests by the caller (one set of margins): see `_departure`.
        self._departures = departures

    def at_ref(self, slot: Slot, *, columns: bool = False) -> VolumeArrays:
        """The volumes of `slot`'s combination launched at `ref_s` (only those over the pads with `columns`).

        The columns come out of the whole flight's volumes when those are built already.
        """
        combo = (slot.pad, slot.landing_pad, slot.cruise_alt_out_m, slot.cruise_alt_back_m, slot.hold_s)
        key = (*combo, columns)
        arr = self._built.get(key)
        if arr is None:
            whole = self._built.get((*combo, False)) if columns else None
            if whole is not None:
                arr = whole.take(np.array([p.startswith(_COLUMNS) for p in whole.phases], dtype=bool))
            else:
                intent = self.make(Slot(self.ref_s, *combo))
                arr = self._departure(intent) if columns else None
                if arr is None:
                    arr = flight_volume_arrays(
                        intent,
                        self.margins,
                        phases=_COLUMNS if columns else None,
                        shape_cache=self._shapes,
                        landing=self.landing,
                    )
            self._built[key] = arr
        return arr

    def _departure(self, intent: FlightIntent) -> VolumeArrays | None:
        """The pad columns of `intent` from the shared `departures`, when they are its take-off alone.

        Without the landing (`landing=False`) and from the launch on (`confirmed_tau_s` 0), the volumes over
        the pads are the take-off's: the pad and the vertical climb to the outbound layer, whose shapes,
        bands and windows depend on the pad, the layer and the climb only, never on the route. Every request
        at a station asks for the same few, so they are built once per station and relabelled.
        """
        if self._departures is None or self.landing or intent.confirmed_tau_s != 0.0:
            return None
        key = (intent.pad, intent.cruise_alt_out_m, intent.climb_rate_mps, intent.accel_z_mps2,
               intent.jerk_mps3)  # fmt: skip
        base = self._departures.get(key)  # launched at t = 0
        if base is None:
            arr = flight_volume_arrays(intent, self.margins, phases=_COLUMNS, landing=False)
            base = self._departures[key] = arr.shifted(-intent.t_launch_s)
        return dataclasses.replace(
            base.shifted(intent.t_launch_s), flight_id=intent.flight_id, vehicle_id=intent.vehicle_id
        )


class Search:
    """Volumes per combination, built once and shifted; attempts at exact launch times."""

    def __init__(
        self,
        book: AirspaceBook,
        make: Callable[[Slot], FlightIntent],
        margins: Margins,
        earliest_s: float,
        since_s: float | None = None,
        *,
        landing: bool = True,
        candidates: Candidates | None = None,
    ) -> None:
        self.book, self.make, self.margins, self.earliest_s = book, make, margins, earliest_s
        self.since_s = since_s  # only volumes still open at this time count (a flight under way)
        self.landing = landing  # False: volumes up to the holding point only (the landing is booked later)
        if candidates is not None and candidates.landing != landing:
            raise ValueError("candidates built with another `landing`")
        self.candidates = candidates or Candidates(make, margins, earliest_s, landing=landing)

    def arrays(self, slot: Slot, *, columns: bool = False) -> VolumeArrays:
        """The volumes of `slot` (only those over the pads with `columns`), built once per combination."""
        arr = self.candidates.at_ref(slot, columns=columns).shifted(slot.t_launch_s - self.candidates.ref_s)
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

    def columns_free_all(
        self, slots: Sequence[Slot], limit: float, step: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """`columns_free` of each of `slots` from one book query for all of them, and the first shift free at
        all (off the grid too: a lower bound for a search on another grid).

        A station with 40 pads asks this of every pad before any search: one query over a few hundred
        candidate volumes costs about what one pad's query costs. Past `limit` a value is only a lower
        bound (like `columns_free` in that case).
        """
        arrs = [self.arrays(slot, columns=True) for slot in slots]
        owner = np.repeat(np.arange(len(arrs)), [len(a) for a in arrs])
        cat = VolumeArrays.concat(arrs)
        ci, sj = self.book._pairs(cat, 0.0, max(limit, 0.0))
        lo, hi, who = self.book._win[sj, 0] - cat.t1_s[ci], self.book._win[sj, 1] - cat.t0_s[ci], owner[ci]
        order = np.argsort(who, kind="stable")
        lo, hi, who = lo[order], hi[order], who[order]
        cuts = itertools.pairwise(np.searchsorted(who, np.arange(len(arrs) + 1)).tolist())
        free = [(first_free(lo[a:b], hi[a:b], 0.0, step), first_free(lo[a:b], hi[a:b], 0.0, _TINY_S))
                for a, b in cuts]  # fmt: skip
        return np.array([f[0] for f in free]), np.array([f[1] for f in free])

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
