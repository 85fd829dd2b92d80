"""Find the first launch time, layers and pads at which a flight's volumes meet nobody else's.

Launch times are tried from `earliest_s` on a grid of `step_s`; at each, the layer pairs in order of
preference, and the pads in the order given. Each combination asks the book once for every launch shift it
cannot take (`search.Forbidden`), so the first free one is found without trying the times in between.
When only the arrival is in the way (the last legs, the approach, the pad), an earlier launch can still
work with another landing pad or a hold at the landing pad's holding point; those are tried at the launch
times where only the arrival conflicts, earliest first, before settling for the first plain fit.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from controller.airspace.book import AirspaceBook, Conflict
from controller.airspace.errors import AirspaceBusy
from controller.airspace.flight import FlightIntent, Slot
from controller.airspace.layers import LayerPlan
from controller.airspace.margins import Margins
from controller.airspace.pads import Pad
from controller.airspace.search import Candidates, Forbidden, Search, arrival_start
from controller.airspace.volumes import Volume, VolumeArrays
from controller.errors import InputError

__all__ = ["Fit", "fit_flight", "hold_flight"]

_TINY_S = 1e-3  # past the deadline by a hair: a fit exactly at latest_s counts
_ARRIVAL_TRIES = 8  # launch times at which another landing pad or a hold is tried, at most
_ARRIVAL_SCAN = 256  # launch times looked at for those tries, at most


@dataclass(frozen=True)
class Fit:
    """A flight that fits: its intent (at the chosen slot), its volumes, and the slot itself."""

    intent: FlightIntent
    volumes: list[Volume]
    slot: Slot
    arrays: VolumeArrays | None = field(default=None, compare=False, repr=False)  # the same, for the book


def fit_flight(
    book: AirspaceBook,
    make_intent: FlightIntent | Callable[[Slot], FlightIntent],
    *,
    earliest_s: float,
    latest_s: float,
    layers: LayerPlan,
    pads: Sequence[Pad] | None = None,
    landing_pads: Sequence[Pad] | None = None,
    step_s: float = 15.0,
    margins: Margins | None = None,
    max_hold_s: float = 120.0,
    reserve: bool = False,
    landing: bool = True,
    candidates: Candidates | None = None,
) -> Fit:
    """The first launch in [earliest_s, latest_s] (on a `step_s` grid) whose volumes meet no other vehicle's.

    `make_intent` builds the flight for a `Slot` (launch time, pads, layers, hold); a `FlightIntent` stands
    for `intent.with_slot`. Its geometry must not depend on the launch time: volumes are built once per
    combination and shifted. `pads`: take-off pads to try, in order (default: the intent's pad);
    `landing_pads`: where it may land (default: `pads`, its own take-off pad first). Layers come from
    `layers` by the flight's headings. With `reserve`, the fit is booked in `book`. `landing=False` checks
    and books the flight only up to its holding point, the hold included (`FlightIntent.hold_s`, which a
    caller sets to the longest wait it reserves); the approach and the pad are booked later with
    `hold_flight`, once the drone's arrival is known to a few seconds (`controller.airspace.station`).
    Neither another landing pad nor a longer hold is then tried. `candidates`: volumes already built for
    the same `make_intent`, margins and `landing` by an earlier search of the same request (they are
    shifted, not rebuilt).

    Raises `AirspaceBusy` with `free_at_s` (the earliest launch not ruled out) and the blocking conflicts.
    """
    m = margins or layers.margins
    if not (math.isfinite(earliest_s) and math.isfinite(latest_s) and earliest_s <= latest_s):
        raise InputError(f"[{earliest_s}, {latest_s}] is not a time window", field="latest_s")
    if not step_s > 0:
        raise InputError(f"{step_s!r} must be positive", field="step_s")
    if isinstance(make_intent, FlightIntent):
        template = make_intent
        make: Callable[[Slot], FlightIntent] = template.with_slot
        pads = tuple(pads) if pads else (template.pad,)
    else:
        make = make_intent
        if not pads:
            raise InputError("needs at least one pad when make_intent is a function", field="pads")
        pads = tuple(pads)
    landing_at = tuple(landing_pads) if landing_pads else pads

    low = min(layers.for_sector(s)[0] for s in range(layers.sectors))
    probe = make(Slot(earliest_s, pads[0], pads[0] if pads[0] in landing_at else landing_at[0], low, low))
    choices = layers.choices(probe.heading_out_deg, probe.heading_back_deg)
    combos = [
        Slot(earliest_s, pad, pad if pad in landing_at else landing_at[0], out, back)
        for out, back in choices
        for pad in pads
    ]
    search = Search(book, make, m, earliest_s, landing=landing, candidates=candidates)
    span = latest_s - earliest_s

    # Plain fits: the first free shift of each combination; none needs to look past the best so far.
    found: list[Forbidden] = []
    free: list[float] = []
    for combo in combos:
        limit = min(span, min(free, default=math.inf) - step_s)
        s, forbidden = search.first_fit(combo, limit, step_s)
        found.append(forbidden)
        free.append(s)
        if s == 0.0:
            break
    best = int(np.argmin(free))  # argmin keeps the first of equals: the preferred combination
    stop = min(free[best], span + _TINY_S)

    # Earlier launches where the take-off is clear and the landing is not: land elsewhere, or hold.
    if landing and (max_hold_s > 0 or len(landing_at) > 1):
        tries = heapq.merge(*(_tagged(f.hold_candidates(stop, step_s), k) for k, f in enumerate(found)))
        tried = 0
        for s, k, hold in itertools.islice(tries, _ARRIVAL_SCAN):
            if len(landing_at) == 1 and hold > max_hold_s:
                continue  # the pad stays busy longer than the drone may hold
            if (tried := tried + 1) > _ARRIVAL_TRIES:
                break
            slot = dataclasses.replace(combos[k], t_launch_s=earliest_s + s)
            fixed = search.arrival(slot, landing_at, max_hold_s)
            if fixed is not None:
                return _finish(book, make, *fixed, reserve=reserve)

    if free[best] <= span:
        slot = dataclasses.replace(combos[best], t_launch_s=earliest_s + free[best])
        return _finish(book, make, slot, search.arrays(slot), reserve=reserve)

    # Busy: say what stands in the way of the best combination at its last launch time on the grid.
    last = math.floor(span / step_s + 1e-9) * step_s
    blocking: list[Conflict] = book._group(
        *search.attempt(dataclasses.replace(combos[best], t_launch_s=earliest_s + last))
    )
    raise AirspaceBusy(earliest_s + free[best], blocking, flight_id=probe.flight_id)


def _tagged(shifts: Iterator[tuple[float, float]], k: int) -> Iterator[tuple[float, int, float]]:
    """(shift, combination, hold): merged, equal shifts come in order of preference."""
    return ((s, k, hold) for s, hold in shifts)


def _finish(
    book: AirspaceBook, make: Callable[[Slot], FlightIntent], slot: Slot, arr: VolumeArrays, *, reserve: bool
) -> Fit:
    intent = make(slot)
    volumes = arr.to_volumes()
    if reserve:
        book.reserve(intent.flight_id, arr, intent=intent)
    return Fit(intent, volumes, slot, arr)


def hold_flight(
    book: AirspaceBook,
    intent: FlightIntent,
    *,
    now_s: float,
    max_hold_s: float = 600.0,
    landing_pads: Sequence[Pad] | None = None,
    margins: Margins | None = None,
    reserve: bool = False,
) -> Fit:
    """A flight under way whose arrival meets another's booking: land elsewhere or hold until it frees.

    This is how the later flight gives way when a late drone's `AirspaceBook.extend` reaches it. `intent`
    is the flight as it now stands (shift its `t_launch_s` by any lateness first); only its volumes still
    open at `now_s` count. It tries `landing_pads` (default: its own) and then the shortest extra hold, up to
    `max_hold_s`, at the landing pad's holding point; the fit replaces the flight's booking with `reserve`.

    Raises `InputError` when the drone is already past its holding point, and `AirspaceBusy` when what is in
    the way comes before the holding point (a hold cannot help: hold the other flight, or re-route).
    """
    m = margins or Margins()
    segments = intent.path(m).segments
    first_final = next(
        (i for i, s in enumerate(segments) if s.phase.startswith(("final", "approach"))), len(segments)
    )
    if intent.t_launch_s + segments[first_final - 1].tau1_s < now_s:
        raise InputError(
            f"flight is past its holding point at t={now_s:.0f} s", field="now_s", row=intent.flight_id
        )
    slot = Slot(intent.t_launch_s, intent.pad, intent.landing_pad, intent.cruise_alt_out_m,
                intent.cruise_alt_back_m, intent.hold_s)  # fmt: skip
    search = Search(book, intent.with_slot, m, intent.t_launch_s, since_s=now_s)
    arr, ci, sj = search.attempt(slot)
    found: tuple[Slot, VolumeArrays] | None = (slot, arr) if not len(ci) else None
    if found is None and ci.min() >= arrival_start(arr):
        found = search.arrival(
            slot, tuple(landing_pads) if landing_pads else (intent.landing_pad,), max_hold_s
        )
    if found is None:
        blocking = book._group(arr, ci, sj)
        raise AirspaceBusy(max(c.free_at_s for c in blocking), blocking, flight_id=intent.flight_id)
    return _finish(book, intent.with_slot, *found, reserve=reserve)
