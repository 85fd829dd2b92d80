"""One station's airspace in WGS84: what the service (and the day benchmark) calls to launch, follow and land.

`StationAirspace` owns the station's `AirspaceBook` and speaks latitude, longitude and seconds on the
caller's clock. A flight is booked in two steps, because that is what lets one column of air over a group
of pads take a flight a minute or more (docs/airspace.md, "Late landing slots"):

1. `plan` at launch books the departure, the outbound legs, the drop, the return legs and a wait of
   `max_hold_s` at the flight's holding point, at its inbound layer: everything up to the approach. A
   returning drone therefore always has somewhere safe to wait, whatever happens at the pads.
2. `on_progress`, once the drone is back from its drop and within `landing_book_m` of home, books the
   approach and the pad from where the drone is. Its timing is then known to a few seconds instead of the
   launch's 5 % of the whole flight, so the pad column is held for about a minute instead of three. If the
   column is busy the drone is told to hold at the holding point until its slot (`HoldInstruction`).

Every call to `on_progress` also re-books the rest of the flight when the drone is off its schedule by more
than `rebook_after_s`: a hold absorbs lateness before the approach, and the conflicts a late drone still
causes are resolved by the later flight giving way (a later launch, or a longer hold), never by hoping.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from controller.airspace.book import AirspaceBook, Conflict
from controller.airspace.deconflict import Fit, fit_flight
from controller.airspace.errors import AirspaceBusy
from controller.airspace.flight import (
    ARRIVAL_PHASES,
    FlightIntent,
    Slot,
    arrival_index,
    flight_volume_arrays,
)
from controller.airspace.geojson import to_geojson
from controller.airspace.layers import LayerPlan
from controller.airspace.pads import Pad
from controller.airspace.path import FlightPath
from controller.airspace.search import Candidates, Search, arrival_start
from controller.airspace.sequence import LandingSlot, Sequencer, columns
from controller.airspace.station_config import AirspaceConfig
from controller.airspace.volumes import XY, Volume, VolumeArrays
from controller.errors import InputError
from geofences import LocalFrame

__all__ = ["AirspacePlan", "AirspaceStats", "HoldInstruction", "StationAirspace"]

LatLon = tuple[float, float]
_AT_STATION_M = 1.0  # a route's first point this close to the station's centre or a pad is the station
_DEPARTURE = ("departure", "climb-out", "cruise out")  # a take-off: up to its first cruise volume
DIVERT_PATIENCE_S = 3600.0  # how much later a launch in an aborted drone's way may be moved
# Holding points tried for an aborted drone beside the line home, metres to its left (+) or right (-): a
# corridor reaches 32 m from its line and so does a hold volume from its point, so 80 m clears both.
_DIVERT_SIDES_M = (0.0, 80.0, -80.0, 160.0, -160.0)
_PADS_PER_ROUND = 3  # columns tried at one launch time when the landing sequence refuses the first (cost)
_PADS_PER_SEARCH = 8  # pads searched for one launch at most, those whose column frees first (cost, below)


@dataclass(frozen=True)
class AirspacePlan:
    """What a mission needs from the airspace, in WGS84; altitudes above the station's ground.

    `route_out`: waypoints after the take-off pad, destination last. `route_back`: waypoints from the
    destination to the holding point (both excluded); the drone then flies to the holding point, waits
    `hold_s` there (leaving no earlier than `hold_until_s`), and flies to its landing pad. Before the
    landing is booked (`landing_booked` False) a drone that reaches the holding point waits there until it
    is. `intent` is the plan the book holds, for following the drone's progress.
    """

    flight_id: str
    vehicle_id: str
    pad: str
    pad_lat: float
    pad_lon: float
    launch_at_s: float
    delay_s: float
    cruise_alt_out_m: float
    cruise_alt_back_m: float
    route_out: tuple[LatLon, ...]
    route_back: tuple[LatLon, ...]
    hold_lat: float
    hold_lon: float
    hold_s: float
    hold_until_s: float | None
    landing_booked: bool
    landing_pad: str
    landing_lat: float
    landing_lon: float
    arrival_s: float
    intent: FlightIntent

    @property
    def hold_alt_m(self) -> float:
        """A drone holds at its inbound layer."""
        return self.cruise_alt_back_m


@dataclass(frozen=True)
class HoldInstruction:
    """Wait at (lat, lon, alt_m) until `until_s`, then fly to the landing pad.

    `cleared` False: the landing is not booked yet; wait at most until `until_s` (the end of the reserved
    wait) and ask again. `hold_s` is the wait counted from the planned arrival at the holding point.
    """

    flight_id: str
    lat: float
    lon: float
    alt_m: float
    hold_s: float
    until_s: float
    cleared: bool
    landing_pad: str
    landing_lat: float
    landing_lon: float


@dataclass
class AirspaceStats:
    """What the station's airspace did: for the benchmark and for operators' metrics."""

    plans: int = 0
    delays_s: list[float] = field(default_factory=list)  # of every launch booked, 0 when on time
    busy: int = 0  # plan refused with AirspaceBusy
    landings: int = 0  # approaches booked
    holds_s: list[float] = field(default_factory=list)  # booked waits at the holding point (> 0)
    rebooks: int = 0  # re-bookings from a drone off its schedule
    gave_way: int = 0  # flights moved (later launch, longer hold) for a late drone
    forced: int = 0  # waits extended past the reserve, whatever they met
    unresolved: int = 0  # conflicts a late drone caused that no later launch or hold removed
    diverts: int = 0  # flights turned home early (operator abort), their way home booked from where they were


class _Book(AirspaceBook):
    """The book, counting its changes: a refusal stays valid while nothing changed (`_columns_or_busy`)."""

    version = 0

    def reserve(self, *args: Any, **kw: Any) -> list[Volume]:
        self.version += 1
        return super().reserve(*args, **kw)

    def replace(self, *args: Any, **kw: Any) -> list[Conflict]:
        self.version += 1
        return super().replace(*args, **kw)

    def release(self, flight_id: str) -> int:
        self.version += 1
        return super().release(flight_id)

    def release_before(self, t_s: float) -> int:
        n = super().release_before(t_s)
        self.version += bool(n)
        return n


@dataclass
class _Flight:
    """A booked flight and what the station knows of it."""

    intent: FlightIntent  # as booked; until the landing is booked, hold_s is the reserved wait
    request: dict[str, Any]  # what `plan` was asked, to launch it later if it must give way
    planned_at_s: float
    landing_booked: bool = False
    tau_s: float = 0.0  # last plan time the drone was seen at
    path: FlightPath = field(init=False)
    tau_drop_s: float = field(init=False)  # plan time at which the drop starts
    tau_hold_s: float = field(init=False)  # plan time at which the drone reaches the holding point
    tau_leave_s: float = field(init=False)  # plan time at which it leaves it

    cached: AirspacePlan | None = None  # `_plan_of` for this intent and landing state
    marks: set[str] = field(default_factory=set)  # milestones already booked again from
    waiting: bool = False  # on its way home, its landing tried and not booked yet

    def set(self, intent: FlightIntent) -> None:
        self.intent = intent
        self.cached = None
        self.path = intent.path()
        segs = self.path.segments
        self.tau_drop_s = next((s.tau0_s for s in segs if s.phase in ("drop", "door climb")), 0.0)
        k = arrival_index(segs)
        self.tau_leave_s = segs[k].tau0_s if k < len(segs) else self.path.duration_s
        self.tau_hold_s = self.tau_leave_s - intent.hold_s


class StationAirspace:
    """The station's pads, layers and reservations, spoken in WGS84 (see the module docstring)."""

    def __init__(
        self,
        config: AirspaceConfig,
        lat: float,
        lon: float,
        *,
        ceiling_m: float = 120.0,
        frame: LocalFrame | None = None,
        epoch: datetime | None = None,
        vehicle_max_alt_m: float | None = None,
    ) -> None:
        config.check_station(lat, lon, ceiling_m, vehicle_max_alt_m)
        self.config = config
        self.frame = frame or LocalFrame(lat, lon)
        self.epoch = epoch
        self.margins = config.margins.to_margins()
        self.layers = LayerPlan(
            tuple(config.layers_m),
            ceiling_m=ceiling_m,
            vehicle_max_alt_m=vehicle_max_alt_m,
            sectors=config.sectors,
            margins=self.margins,
        )
        self.pads = self._pads(config)
        self._column = columns(self.pads, 2 * self.margins.pad_buffer_m)
        self.seq = Sequencer()
        self.book: AirspaceBook = _Book()
        # The last refusal of `_columns_or_busy`: (book version, now, latest, pads, vehicle), free at.
        self._refused: tuple[tuple[object, ...], float] | None = None
        self.stats = AirspaceStats()
        self._flights: dict[str, _Flight] = {}
        self._ground: dict[str, list[tuple[float, float, str]]] = {p.name: [] for p in self.pads}
        self._used: dict[str, float] = dict.fromkeys(self._ground, -math.inf)
        # take-off columns do not depend on the route: built once per pad, layer and climb rate
        self._departure_cache: dict[tuple[object, ...], VolumeArrays] = {}

    def _pads(self, config: AirspaceConfig) -> tuple[Pad, ...]:
        if not config.pads:
            return (Pad("P1", (0.0, 0.0)),)
        out = []
        for p in config.pads:
            x, y = self.frame.to_local(p.lon, p.lat)
            hold = None
            if p.hold_lat is not None and p.hold_lon is not None:
                hx, hy = self.frame.to_local(p.hold_lon, p.hold_lat)
                hold = (float(hx), float(hy))
            out.append(Pad(p.name, (float(x), float(y)), hold_xy=hold))
        return tuple(out)

    # ---- launch ----------------------------------------------------------------------------------------

    def plan(
        self,
        flight_id: str,
        vehicle_id: str,
        route_latlon_out: Sequence[LatLon],
        *,
        now_s: float,
        speed_mps: float = 22.0,
        climb_rate_mps: float = 2.5,
        descent_rate_mps: float = 1.5,
        delivery_alt_m: float = 5.0,
        dwell_s: float = 15.0,
        latest_s: float | None = None,
        reserve: bool = True,
        pads: Sequence[str] | None = None,
    ) -> AirspacePlan:
        """Pad, launch time (>= `now_s`, on the `step_s` grid), layers and holding point of a delivery flight.

        `route_latlon_out` runs from the station to the destination (destination last); a first point at the
        station is dropped (the drone starts on its pad). Books the flight up to its approach with `reserve`.
        Raises `AirspaceBusy` (code `airspace_busy`, with `free_at_s`) when nothing fits by `latest_s`
        (default `now_s + max_delay_s`: kept short, because a launch booked far ahead would take the pad
        column from drones coming home, whose landings are only booked a couple of minutes ahead).
        `pads`: the pads it may take off from (a drone standing on a pad takes off from that one); default
        any.
        """
        if not route_latlon_out:
            raise InputError("needs at least the destination", field="route_latlon_out", row=flight_id)
        latest = now_s + self.config.max_delay_s if latest_s is None else latest_s
        request = self._request(
            vehicle_id, route_latlon_out, speed_mps, climb_rate_mps, descent_rate_mps, delivery_alt_m,
            dwell_s, self._pad_names(pads, flight_id),
        )  # fmt: skip
        if flight_id in self._flights:  # planned again: its old booking must not stand in its way
            self.finish(flight_id)
        try:
            fit, landing = self._fit(flight_id, request, now_s, latest)
        except AirspaceBusy:
            self.stats.busy += 1
            raise
        flight = _Flight(fit.intent, request, now_s)
        flight.set(fit.intent)
        if reserve:
            self.book.reserve(flight_id, fit.arrays or fit.volumes, intent=fit.intent)
            self._flights[flight_id] = flight
            self._take_off_ground(flight_id, fit.intent)
            self.seq.set(flight_id, self._column[fit.intent.landing_pad.name], landing)
            self.stats.plans += 1
            self.stats.delays_s.append(fit.intent.t_launch_s - now_s)
        return self._plan_of(flight_id, flight)

    def _request(
        self,
        vehicle_id: str,
        route: Sequence[LatLon],
        speed_mps: float,
        climb_rate_mps: float,
        descent_rate_mps: float,
        delivery_alt_m: float,
        dwell_s: float,
        pads: tuple[str, ...] | None,
    ) -> dict[str, Any]:
        """What a flight was asked for, kept to plan it again (`_give_way`)."""
        return {
            "vehicle_id": vehicle_id,
            "route": self._route_xy(route),
            "speed_mps": speed_mps,
            "climb_rate_mps": climb_rate_mps,
            "descent_rate_mps": descent_rate_mps,
            "delivery_alt_m": delivery_alt_m,
            "dwell_s": dwell_s,
            "pads": pads,
        }

    def _pad_names(self, pads: Sequence[str] | None, flight_id: str) -> tuple[str, ...] | None:
        if pads is None:
            return None
        known = {p.name for p in self.pads}
        unknown = [name for name in pads if name not in known]
        if unknown or not pads:
            raise InputError(
                f"no such pad {unknown[0]!r} (pads: {', '.join(sorted(known))})" if unknown else "is empty",
                field="pads",
                row=flight_id,
            )
        return tuple(pads)

    def pad_at(self, lat: float, lon: float, within_m: float = 5.0) -> str | None:
        """The pad a drone at (lat, lon) stands on: the nearest within `within_m`, else None."""
        x, y = (float(v) for v in self.frame.to_local(lon, lat))
        near = min(self.pads, key=lambda p: math.dist((x, y), p.xy))
        return near.name if math.dist((x, y), near.xy) <= within_m else None

    def _route_xy(self, route: Sequence[LatLon]) -> tuple[XY, ...]:
        lat = np.array([p[0] for p in route], dtype=float)
        lon = np.array([p[1] for p in route], dtype=float)
        x, y = self.frame.to_local(lon, lat)
        pts = [(float(a), float(b)) for a, b in zip(x, y, strict=True)]
        homes = [(0.0, 0.0), *(p.xy for p in self.pads)]
        while len(pts) > 1 and min(math.dist(pts[0], h) for h in homes) <= _AT_STATION_M:
            pts.pop(0)
        return tuple(pts)

    def _intent(self, flight_id: str, request: dict[str, Any], slot: Slot, hold_s: float) -> FlightIntent:
        """The flight from `slot.pad`, landing on the same pad by its own holding point, waiting `hold_s`."""
        route = request["route"]
        hold_xy, back = self._holding_point(route, slot.pad)
        return FlightIntent(
            flight_id=flight_id,
            vehicle_id=request["vehicle_id"],
            pad=slot.pad,
            route_out=route,
            route_back=back,
            landing_pad=Pad(slot.pad.name, slot.pad.xy, hold_xy=hold_xy),
            cruise_alt_out_m=slot.cruise_alt_out_m,
            cruise_alt_back_m=slot.cruise_alt_back_m,
            t_launch_s=slot.t_launch_s,
            hold_s=hold_s,
            delivery_alt_m=request["delivery_alt_m"],
            dwell_s=request["dwell_s"],
            speed_mps=request["speed_mps"],
            climb_rate_mps=request["climb_rate_mps"],
            descent_rate_mps=request["descent_rate_mps"],
        )

    def _holding_point(self, route: tuple[XY, ...], pad: Pad) -> tuple[XY, tuple[XY, ...]]:
        """(holding point, waypoints back before it): the pad's own, or `hold_distance_m` before the pad on
        the way home. Waypoints between that point and the pad are left out: the final leg is straight."""
        back = tuple(reversed(route[:-1]))
        if pad.hold_xy is not None:
            return pad.hold_xy, back
        points = [route[-1], *back, pad.xy]
        left = self.margins.hold_distance_m
        for i in range(len(points) - 1, 0, -1):
            a, b = points[i - 1], points[i]
            leg = math.dist(a, b)
            if left < leg:
                f = left / leg
                return (b[0] + f * (a[0] - b[0]), b[1] + f * (a[1] - b[1])), tuple(points[1:i])
            left -= leg
        # The destination is closer than that: wait beyond it, on the line from the pad.
        dx, dy = route[-1][0] - pad.xy[0], route[-1][1] - pad.xy[1]
        norm = math.hypot(dx, dy) or 1.0
        d = self.margins.hold_distance_m
        return (
            pad.xy[0] + d * (dx if norm > 1e-6 else 0.0) / norm,
            pad.xy[1] + d * (dy if norm > 1e-6 else norm) / norm,
        ), ()

    def _fit(
        self, flight_id: str, request: dict[str, Any], now_s: float, latest_s: float
    ) -> tuple[Fit, LandingSlot]:
        """The first launch that fits the 4D book, the landing sequence and the pads on the ground."""
        hold = self.config.max_hold_s

        def make(slot: Slot) -> FlightIntent:
            return self._intent(flight_id, request, slot, hold)

        if any(g.waiting for fid, g in self._flights.items() if fid != flight_id):
            # a drone coming home found no landing slot: the pads are its until it has one
            raise AirspaceBusy(now_s + self.config.step_s, [], flight_id=flight_id)
        prep = self.config.pad_prep_s
        allowed = request.get("pads")
        cands = Candidates(make, self.margins, now_s, landing=False, departures=self._departures())
        free = self._columns_or_busy(
            flight_id,
            request["vehicle_id"],
            cands,
            [p for p in self.pads if allowed is None or p.name in allowed],
            now_s,
            latest_s,
        )
        # Pads whose column stays busy to the deadline cannot launch it: no search over them. The others,
        # those nobody stands on first, then those whose column frees first (where a search ends at once),
        # then the least recently used; at most `_PADS_PER_SEARCH` of them. What stops a flight on the
        # first few pads is mostly on its way (other flights at its layers) and stops it from the others
        # too, while every pad searched costs a book query or two: at 40 pads, whole seconds a tick.
        pads = sorted(
            [p for p in self.pads if p.name in free and free[p.name] <= latest_s + 1e-6],
            key=lambda p: (
                not self._ground_free(p.name, now_s - prep, latest_s),
                free[p.name],
                self._used[p.name],
            ),
        )[:_PADS_PER_SEARCH]
        earliest = now_s
        while earliest <= latest_s + 1e-6:
            # The first fit over all pads; when the sequence refuses it, pads of a few other columns are
            # tried before that column's next chance, and the earliest launch the sequence admits wins.
            left, retry = list(pads), math.inf
            bound = latest_s
            for _ in range(_PADS_PER_ROUND):
                if not left or earliest > bound + 1e-6:
                    break
                try:
                    fit = self._fit_pads(cands, left, earliest, bound, free)
                except AirspaceBusy:
                    if len(left) == len(pads):
                        raise
                    break
                again, landing = self._sequence(flight_id, fit.intent, fit.arrays)
                if landing is not None:
                    return fit, landing
                retry = min(retry, max(again, fit.intent.t_launch_s + self.config.step_s))
                bound = min(latest_s, retry - 1e-3)
                column = self._column[fit.slot.pad.name]  # the sequence is per column: skip the whole column
                left = [p for p in left if self._column[p.name] != column]
            earliest = retry
        raise AirspaceBusy(earliest, [], flight_id=flight_id)

    def _fit_pads(
        self, cands: Candidates, pads: list[Pad], earliest_s: float, latest_s: float, free: dict[str, float]
    ) -> Fit:
        """fit_flight over `pads`, each pad from when no other drone stands on it while this one prepares.

        A pad another drone stands on at the first fit is not given up: it is tried again from when that
        drone has left it (a launch `pad_prep_s` after), and the earliest launch over all pads wins. `free`:
        per pad, a time before which its column refuses every launch (`_columns_or_busy`); pad by pad, the
        search starts there, and a pad whose column or ground frees after the best launch so far is not
        searched at all.
        """
        step = self.config.step_s

        def fit(on: list[Pad], e: float, latest: float) -> Fit:
            return fit_flight(
                self.book, cands.make, earliest_s=e, latest_s=latest, layers=self.layers, pads=on,
                step_s=step, margins=self.margins, max_hold_s=0.0, landing=False, candidates=cands,
            )  # fmt: skip

        first = fit(pads, earliest_s, latest_s)  # AirspaceBusy: nothing fits the book, whatever the ground
        if self._ground_next(first.slot.pad.name, first.intent.t_launch_s) is None:
            return first
        best: Fit | None = None
        for pad in pads:
            e = self._on_grid(earliest_s, free.get(pad.name, earliest_s))
            while True:
                bound = latest_s if best is None else min(latest_s, best.intent.t_launch_s - 1e-3)
                if e > bound + 1e-6:
                    break
                ground = self._ground_next(pad.name, e)
                if ground is not None:  # somebody stands on it: no launch before they leave
                    e = self._on_grid(earliest_s, ground)
                    continue
                try:
                    f = fit([pad], e, bound)
                except AirspaceBusy:
                    break
                t = f.intent.t_launch_s
                left = self._ground_next(pad.name, t)
                if left is None:
                    best = f
                    break
                e = self._on_grid(earliest_s, left)
        if best is None:
            raise AirspaceBusy(latest_s, [], flight_id="")
        return best

    def _on_grid(self, earliest_s: float, t_s: float) -> float:
        """The first launch time at or after `t_s` on the `step_s` grid of a search from `earliest_s`."""
        step = self.config.step_s
        return earliest_s + max(0, math.ceil((t_s - earliest_s) / step - 1e-9)) * step

    def _departures(self) -> dict[tuple[object, ...], VolumeArrays]:
        """The station's take-off columns by pad, layer and climb (`Candidates._departure`), made as asked."""
        return self._departure_cache

    def _ground_next(self, pad: str, t_s: float) -> float | None:
        """None when nobody else stands on `pad` while a drone prepares there for a launch at `t_s`; else the
        first launch after `t_s` for which that holds."""
        prep = self.config.pad_prep_s
        t = t_s
        while True:
            clash = [b for a, b, _ in self._ground[pad] if not (b < t - prep or a > t)]
            if not clash:
                return None if t == t_s else t
            t = max(clash) + prep + 1e-3

    def _sequence(
        self, flight_id: str, intent: FlightIntent, arrays: VolumeArrays | None = None
    ) -> tuple[float, LandingSlot | None]:
        """(0, its landing slot) when the launch of `intent` is admitted; else (a launch time worth trying
        next, None): its departure would take the column during another flight's landing, or its own
        landing finds no slot within `max_hold_s` of its arrival. `arrays`: the volumes of `intent` as
        found, whose departure is taken from them rather than built again."""
        column = self._column[intent.pad.name]
        launch = intent.t_launch_s
        if arrays is not None:
            up = arrays.take(np.array([p.startswith(_DEPARTURE) for p in arrays.phases], dtype=bool))
        else:
            up = flight_volume_arrays(intent, self.margins, phases=_DEPARTURE)
        first_cruise = next((i for i, k in enumerate(up.kinds) if k == "cruise"), len(up) - 1)
        t0, t1 = float(up.t0_s.min()), float(up.t1_s[: first_cruise + 1].max())
        busy_until = self.seq.departure_free(flight_id, column, t0, t1)
        if busy_until is not None:
            return launch + busy_until - t0 + 1e-3, None
        landing = self._landing_slot(dataclasses.replace(intent, hold_s=0.0))
        landing_column = self._column[intent.landing_pad.name]
        wait = 0.0
        for _ in range(4):  # a longer wait widens the margins after it a little: check the slot it gives
            shift = self.seq.first_fit(flight_id, landing_column, landing, self.config.max_hold_s - wait)
            if shift is None:
                need = self.seq.first_fit(flight_id, landing_column, landing, math.inf) or 0.0
                return launch + wait + need - self.config.max_hold_s, None
            if shift <= 0.0:
                return 0.0, landing
            wait += shift + 1.0
            landing = self._landing_slot(dataclasses.replace(intent, hold_s=wait))
        return launch + self.config.step_s, None

    def _landing_slot(self, intent: FlightIntent) -> LandingSlot:
        """When `intent`'s landing will use its column: its volumes as booked from the holding point."""
        segs = intent.path(self.margins).segments
        tau = segs[arrival_index(segs) - 1].tau1_s - intent.hold_s  # reaches the holding point
        seen = intent.progressed(intent.t_launch_s + tau, tau)
        return self._slot_of(flight_volume_arrays(seen, self.margins, phases=ARRIVAL_PHASES))

    def _slot_of(self, arr: VolumeArrays) -> LandingSlot:
        """The landing slot of booked (or about to be booked) volumes: over the pads from the final leg, low
        from the first volume that meets a pad volume below it, until the pad is clear."""
        m = self.margins
        pad_top = m.pad_transition_alt_m + m.vertical_buffer_m
        arrival = [i for i, p in enumerate(arr.phases) if p.startswith(ARRIVAL_PHASES)]
        low = [i for i in arrival if arr.alt_lo_m[i] <= pad_top]
        return LandingSlot(
            float(arr.t0_s[arrival].min()), float(arr.t0_s[low].min()), float(arr.t1_s[arrival].max())
        )

    def _columns_or_busy(
        self,
        flight_id: str,
        vehicle_id: str,
        cands: Candidates,
        pads: Sequence[Pad],
        now_s: float,
        latest_s: float,
    ) -> dict[str, float]:
        """Refuse at once when no pad column is free for a climb to the lowest layer before `latest_s`; else
        say, per pad, the first time at which its column is (a lower bound for any launch from it).

        Every climb passes through that one's volumes, so nothing else could fit either; this is one book
        query for all the pads where the full search would try every layer and pad. The refusal is
        remembered while the book, the times and the pads asked for are the same, for any vehicle with
        nothing booked (a vehicle's own volumes never block it, so all those see the same sky): the drones
        of one planning tick are refused by one search, not one each.
        """
        version = self.book.version  # type: ignore[attr-defined]
        mine = self.book.has_vehicle(vehicle_id) or flight_id in self.book
        key = (version, now_s, latest_s, tuple(sorted(p.name for p in pads)), vehicle_id if mine else None)
        if self._refused is not None and self._refused[0] == key:
            raise AirspaceBusy(self._refused[1], [], flight_id=flight_id)
        low = min(self.layers.for_sector(s)[0] for s in range(self.layers.sectors))
        search = Search(self.book, cands.make, self.margins, now_s, landing=False, candidates=cands)
        span, step = latest_s - now_s, self.config.step_s
        on_grid, at_all = search.columns_free_all([Slot(now_s, p, p, low, low) for p in pads], span, step)
        first = float(on_grid.min(initial=math.inf))
        if first > span + 1e-3:
            self._refused = (key, now_s + first)
            raise AirspaceBusy(now_s + first, [], flight_id=flight_id)
        return {p.name: now_s + float(t) for p, t in zip(pads, at_all, strict=True)}

    # ---- flight ----------------------------------------------------------------------------------------

    def on_progress(
        self, flight_id: str, lat: float, lon: float, alt_m: float, now_s: float
    ) -> HoldInstruction | None:
        """The drone was seen at (lat, lon, alt_m above the station's ground) at `now_s`: book its approach
        when it is time, re-book it when it is off schedule, and say whether it must hold.

        Returns the wait it must make at its holding point (None: none; fly on and land on the plan's
        landing pad, see `flight`).
        """
        f = self._flight(flight_id)
        if now_s < f.intent.t_launch_s:
            return self._instruction(f)
        x, y = (float(v) for v in self.frame.to_local(lon, lat))
        tau = f.path.progress((x, y, alt_m), now_s=now_s, after_tau_s=f.tau_s)
        f.tau_s = tau
        late = now_s - (f.intent.t_launch_s + tau)
        home = math.dist((x, y), f.intent.landing_pad.xy)
        due = not f.landing_booked and tau >= f.tau_drop_s and home <= self.config.landing_book_m
        if due:
            f.waiting = not self._book_landing(f, now_s, tau)
            if not f.waiting:
                return self._instruction(f)
        reserve_ends = f.intent.t_launch_s + f.tau_leave_s - self.config.rebook_after_s
        if not f.landing_booked and tau >= f.tau_hold_s - 1e-6 and now_s >= reserve_ends:
            self._extend_wait(f, now_s, tau)
        elif abs(late) > self.config.rebook_after_s or self._milestone(f, tau):
            self._rebook(f, now_s, tau)
        return self._instruction(f)

    def _milestone(self, f: _Flight, tau: float) -> bool:
        """True the first time the drone is seen past its drop, at its holding point, or leaving it.

        Margins grow with the time since the drone was last seen on its plan; booking again from there
        only shrinks its windows (it is on time) and gives the pads' column back sooner: at the holding
        point the pad is held about 15 s less than when booked 2.5 km out.
        """
        marks = (("drop", f.tau_drop_s), ("hold", f.tau_hold_s), ("leave", f.tau_leave_s))
        passed = {name for name, at in marks if tau >= at - 1e-6}
        if name := next((n for n, _ in marks if n in passed and n not in f.marks), None):
            f.marks |= passed
            return name != "leave" or f.intent.hold_s > 0
        return False

    def _book_landing(self, f: _Flight, now_s: float, tau: float) -> bool:
        """Book the approach and pad from plan time `tau`, with the shortest wait that fits; False if none
        within `max_hold_s`.

        First come, first served at the holding points: the landing slots planned at launch (`Sequencer`)
        kept the column's load within what it can land, but a drone that is here now goes before one that
        is only planned, which then waits a little longer when its turn comes.
        """
        fid = f.intent.flight_id
        waited = max(0.0, tau - f.tau_hold_s) if tau <= f.tau_leave_s + 1e-6 else 0.0
        start = dataclasses.replace(f.intent.progressed(now_s, tau), hold_s=waited)
        own = start.landing_pad
        pads = [own] + [Pad(p.name, p.xy, hold_xy=own.hold_xy) for p in self.pads if p.name != own.name]
        slot = Slot(start.t_launch_s, start.pad, own, start.cruise_alt_out_m, start.cruise_alt_back_m, waited)
        search = Search(self.book, start.with_slot, self.margins, start.t_launch_s, since_s=now_s)
        arr, ci, _ = search.attempt(slot)
        found = (slot, arr) if not len(ci) else None
        if found is None and ci.min() >= arrival_start(arr):
            found = search.arrival(slot, pads, self.config.max_hold_s)
        if found is not None:
            found = self._pad_on_the_ground(fid, search, *found, pads)
        if found is None:
            return False
        slot, arr = found
        intent = start.with_slot(slot)
        self.book.reserve(fid, arr.to_volumes(), intent=intent)
        self.seq.set(fid, self._column[slot.landing_pad.name], self._slot_of(arr))
        f.set(intent)
        f.landing_booked = True
        self._landing_ground(f)
        self.stats.landings += 1
        if intent.hold_s > waited:
            self.stats.holds_s.append(intent.hold_s - waited)
        return True

    def _pad_on_the_ground(
        self, flight_id: str, search: Search, slot: Slot, arr: VolumeArrays, pads: list[Pad]
    ) -> tuple[Slot, VolumeArrays] | None:
        """`slot`, or the same on another pad, whose pad nobody stands on at touchdown; None if none."""
        for pad in [slot.landing_pad, *(p for p in pads if p != slot.landing_pad)]:
            if pad != slot.landing_pad:
                slot = dataclasses.replace(slot, landing_pad=pad)
                arr, ci, _ = search.attempt(slot)
                if len(ci):
                    continue
            on_pad = [
                i for i, k in enumerate(arr.kinds) if k == "pad" and arr.phases[i].startswith("arrival")
            ]
            if not on_pad:  # a drone seen far off its plan: nothing of this landing is ahead to check
                continue
            t0, t1 = float(arr.t0_s[on_pad].min()), float(arr.t1_s[on_pad].max())
            if self._ground_free(pad.name, t0, t1, except_id=flight_id):
                return slot, arr
        return None

    def _rebook(self, f: _Flight, now_s: float, tau: float) -> None:
        """Book the rest of the flight from where the drone is; a wait ahead absorbs lateness if it can."""
        late = now_s - (f.intent.t_launch_s + tau)
        intent = f.intent.progressed(now_s, tau)
        if tau <= f.tau_leave_s and f.intent.hold_s > 0:  # keep the time it leaves the holding point
            waited = max(0.0, tau - f.tau_hold_s)
            intent = dataclasses.replace(intent, hold_s=max(waited, f.intent.hold_s - late))
        arr = flight_volume_arrays(intent, self.margins, landing=f.landing_booked)
        conflicts = self.book.replace(
            f.intent.flight_id, arr.take(arr.t1_s >= now_s).to_volumes(), intent=intent
        )
        f.set(intent)
        f.tau_s = tau
        if f.landing_booked and intent.landing_pad.name in self._column:  # not a rally point
            self.seq.set(f.intent.flight_id, self._column[intent.landing_pad.name], self._slot_of(arr))
        self.stats.rebooks += 1
        self._resolve(f, conflicts, now_s)

    def _extend_wait(self, f: _Flight, now_s: float, tau: float) -> None:
        """A drone at its holding point whose landing is still not booked at the end of the reserved wait:
        it waits on, booked whatever it meets, and the flights in the way give way."""
        intent = dataclasses.replace(
            f.intent.progressed(now_s, tau), hold_s=f.intent.hold_s + self.config.max_hold_s
        )
        arr = flight_volume_arrays(intent, self.margins, landing=False)
        conflicts = self.book.replace(
            f.intent.flight_id, arr.take(arr.t1_s >= now_s).to_volumes(), intent=intent
        )
        f.set(intent)
        self.stats.forced += 1
        self._resolve(f, conflicts, now_s)

    def _resolve(self, f: _Flight, conflicts: list[Conflict], now_s: float) -> None:
        """The later of two flights that meet gives way: a later launch, or a longer wait before landing."""
        for c in conflicts:
            other = self._flights.get(c.flight_id)
            theirs = min(v.t0_s for v in c.reserved)
            ours = min(v.t0_s for v in c.against)
            loser = other if other is not None and theirs >= ours else f
            if self._give_way(loser, now_s):
                self.stats.gave_way += 1
            else:
                self.stats.unresolved += 1

    def _give_way(self, g: _Flight, now_s: float, *, patience_s: float | None = None) -> bool:
        """`g` makes room: a later launch (within `patience_s`, default `max_delay_s`) if it is still on the
        ground, else its landing booked again (a longer wait or another pad); False if neither fits."""
        fid = g.intent.flight_id
        if now_s < g.intent.t_launch_s:  # still on the ground: launch later
            old = self.book.volumes(fid)
            self.book.release(fid)
            self._forget_ground(fid)
            t = g.intent.t_launch_s
            wait = self.config.max_delay_s if patience_s is None else patience_s
            try:
                fit, landing = self._fit(fid, g.request, t, t + wait)
            except AirspaceBusy:
                self.book.replace(fid, old, intent=g.intent)
                self._take_off_ground(fid, g.intent)
                return False
            self.book.reserve(fid, fit.volumes, intent=fit.intent)
            self.seq.set(fid, self._column[fit.intent.landing_pad.name], landing)
            g.set(fit.intent)
            self._take_off_ground(fid, fit.intent)
            return True
        tau = min(max(g.tau_s, now_s - g.intent.t_launch_s), g.path.duration_s)
        if g.intent.landing_pad.name not in self._column:  # bound for a rally point: nothing else to try
            return False
        if g.landing_booked and tau <= g.tau_leave_s:
            return self._book_landing(g, now_s, tau)
        return False

    def _instruction(self, f: _Flight) -> HoldInstruction | None:
        if f.landing_booked and f.intent.hold_s <= 0:
            return None
        if not f.landing_booked and f.tau_s < f.tau_drop_s:
            return None  # outbound: the question comes on the way back
        plan = self._plan_of(f.intent.flight_id, f)
        until = f.intent.t_launch_s + f.tau_leave_s
        return HoldInstruction(
            flight_id=plan.flight_id, lat=plan.hold_lat, lon=plan.hold_lon, alt_m=plan.hold_alt_m,
            hold_s=f.intent.hold_s, until_s=until, cleared=f.landing_booked, landing_pad=plan.landing_pad,
            landing_lat=plan.landing_lat, landing_lon=plan.landing_lon,
        )  # fmt: skip

    # ---- ground ----------------------------------------------------------------------------------------

    def _ground_free(self, pad: str, t0: float, t1: float, *, except_id: str = "") -> bool:
        """No other drone stands on `pad` (preparing, or just landed) during [t0, t1]."""
        return all(b < t0 or a > t1 or who == except_id for a, b, who in self._ground[pad])

    def _take_off_ground(self, flight_id: str, intent: FlightIntent) -> None:
        self._forget_ground(flight_id)
        t = intent.t_launch_s
        self._ground[intent.pad.name].append((t - self.config.pad_prep_s, t, flight_id))
        self._used[intent.pad.name] = t

    def _landing_ground(self, f: _Flight) -> None:
        fid = f.intent.flight_id
        self._forget_ground(fid, keep_before=f.intent.t_launch_s)
        pad = [v for v in self.book.volumes(fid) if v.kind == "pad" and v.pad == f.intent.landing_pad.name]
        if pad:
            self._ground[pad[-1].pad].append((pad[-1].t0_s, pad[-1].t1_s, fid))  # type: ignore[index]

    def _forget_ground(self, flight_id: str, keep_before: float = -math.inf) -> None:
        for name, rows in self._ground.items():
            self._ground[name] = [r for r in rows if r[2] != flight_id or r[1] <= keep_before]

    # ---- the rest --------------------------------------------------------------------------------------

    def _flight(self, flight_id: str) -> _Flight:
        f = self._flights.get(flight_id)
        if f is None:
            raise InputError("no such flight booked", field="flight_id", row=flight_id)
        return f

    def flight(self, flight_id: str) -> AirspacePlan:
        """The flight's plan as it now stands (landing pad, wait, launch time if it had to give way)."""
        return self._plan_of(flight_id, self._flight(flight_id))

    def finish(self, flight_id: str) -> None:
        """The drone is down and off its pad (or the flight is cancelled): free everything it held."""
        self.book.release(flight_id)
        self.seq.drop(flight_id)
        self._forget_ground(flight_id)
        self._flights.pop(flight_id, None)

    def release_before(self, now_s: float) -> int:
        """Drop volumes and pad bookings whose time has passed (each tick); how many volumes."""
        for name, rows in self._ground.items():
            self._ground[name] = [r for r in rows if r[1] >= now_s]
        self.seq.prune(now_s)
        for fid in [k for k, f in self._flights.items() if f.intent.arrival_s + 3600.0 < now_s]:
            self._flights.pop(fid)
        return self.book.release_before(now_s)

    def volumes_for(self, vehicle_id: str) -> list[Volume]:
        """The volumes booked for one drone, in flight order."""
        return [v for v in self.book.volumes() if v.vehicle_id == vehicle_id]

    def intents_geojson(self) -> dict[str, Any]:
        """Every booked volume as GeoJSON (WGS84; ISO times when the station has an epoch)."""
        return to_geojson(self.book.volumes(), self.frame, epoch=self.epoch)

    def _latlon(self, xy: XY) -> LatLon:
        lon, lat = self.frame.to_wgs84(xy[0], xy[1])
        return float(lat), float(lon)

    def _plan_of(self, flight_id: str, f: _Flight) -> AirspacePlan:
        if f.cached is not None and f.cached.landing_booked == f.landing_booked:
            return f.cached
        f.cached = self._make_plan(flight_id, f)
        return f.cached

    def _make_plan(self, flight_id: str, f: _Flight) -> AirspacePlan:
        it = f.intent
        assert it.landing_pad.hold_xy is not None and it.route_back is not None
        pad, landing, hold = (
            self._latlon(it.pad.xy),
            self._latlon(it.landing_pad.xy),
            self._latlon(it.landing_pad.hold_xy),
        )
        return AirspacePlan(
            flight_id=flight_id, vehicle_id=it.vehicle_id, pad=it.pad.name, pad_lat=pad[0], pad_lon=pad[1],
            launch_at_s=it.t_launch_s, delay_s=max(0.0, it.t_launch_s - f.planned_at_s),
            cruise_alt_out_m=it.cruise_alt_out_m, cruise_alt_back_m=it.cruise_alt_back_m,
            route_out=tuple(self._latlon(p) for p in it.route_out),
            route_back=tuple(self._latlon(p) for p in it.route_back),
            hold_lat=hold[0], hold_lon=hold[1], hold_s=it.hold_s if f.landing_booked else 0.0,
            hold_until_s=it.t_launch_s + f.tau_leave_s if f.landing_booked else None,
            landing_booked=f.landing_booked, landing_pad=it.landing_pad.name, landing_lat=landing[0],
            landing_lon=landing[1], arrival_s=it.arrival_s if f.landing_booked else it.arrival_s - it.hold_s,
            intent=it,
        )  # fmt: skip

    # ---- contingencies ---------------------------------------------------------------------------------

    def divert(
        self, flight_id: str, lat: float, lon: float, alt_m: float, now_s: float, *, rally: bool = False
    ) -> AirspacePlan:
        """The drone turns home now from (lat, lon, alt_m above the station's ground): book its way home.

        An aborted flight is a new flight from where the drone is (docs/airspace.md, "Contingencies"): a
        vertical change in place to an inbound layer of the heading home, straight to its holding point,
        the reserved wait there, and the landing booked later as for any flight (`on_progress`). The first
        way that meets no other flight is taken: its own pad, then the others (`_ways_home`: holding points
        farther out on the line home), each with the inbound layers of its heading. If every way meets
        some, the one meeting fewest is booked anyway (the drone is in the air and must come home) and the
        flights in its way give way: a later launch, a longer hold or another pad (`stats.gave_way`; what
        stays is `stats.unresolved`). Returns the new plan: `route_back` is empty, the holding point and
        `hold_alt_m` are where to fly and wait.

        `rally=True` (the station is closed): to the nearest alternate landing site of the station file
        that fits instead, landing there straight away, the landing booked now (`landing_pad` is the
        rally point's name, `hold_s` 0). `InputError` on `rally` if the station file has none.
        """
        f = self._flight(flight_id)
        x, y = (float(v) for v in self.frame.to_local(lon, lat))
        here, alt = (x, y), max(0.0, float(alt_m))
        best: tuple[int, FlightIntent, VolumeArrays] | None = None
        ways = self._ways_to_rally(here) if rally else self._ways_home(f.intent.landing_pad.name, here)
        for pad, hold_xy in ways:
            heading = math.degrees(math.atan2(hold_xy[0] - x, hold_xy[1] - y)) % 360.0
            for layer in self.layers.for_heading(heading):
                intent, arr = self._divert_intent(f, here, alt, layer, pad, hold_xy, now_s, land=rally)
                n = len(self.book.conflicts(arr))
                if best is None or n < best[0]:
                    best = (n, intent, arr)
                if n == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None  # LayerPlan leaves no heading without a usable layer
        _, intent, arr = best
        conflicts = self.book.replace(flight_id, arr.to_volumes(), intent=intent)
        f.set(intent)
        f.landing_booked, f.waiting, f.marks = rally, False, set()
        f.tau_s = intent.confirmed_tau_s
        if rally:  # no column of the station's: nothing to sequence
            self.seq.drop(flight_id)
        else:
            self.seq.set(flight_id, self._column[intent.landing_pad.name], self._landing_slot(intent))
        self._forget_ground(flight_id, keep_before=now_s)
        self.stats.diverts += 1
        self._others_give_way(conflicts, now_s)
        return self._plan_of(flight_id, f)

    def _ways_home(self, first: str, here: XY) -> list[tuple[Pad, XY]]:
        """(landing pad, holding point) to try for a drone turning home at `here`: its own pad first, then
        the others; for each, the pad's own holding point from the station file, or points near the
        straight line from the pad towards the drone: on it `hold_distance_m` out, then beside it.

        Beside, because every flight coming home along that line passes over the points on it at its
        inbound layer: an aborted drone waiting there for the whole reserved wait would meet them all.
        """
        out: list[tuple[Pad, XY]] = []
        for pad in sorted(self.pads, key=lambda p: p.name != first):
            if pad.hold_xy is not None:
                out.append((pad, pad.hold_xy))
                continue
            dx, dy = here[0] - pad.xy[0], here[1] - pad.xy[1]
            norm = math.hypot(dx, dy)
            ux, uy = (dx / norm, dy / norm) if norm > 1e-6 else (0.0, 1.0)
            d = self.margins.hold_distance_m
            for side in _DIVERT_SIDES_M:  # along the line, then across it (-uy, ux is its left)
                out.append((pad, (pad.xy[0] + d * ux - side * uy, pad.xy[1] + d * uy + side * ux)))
        return out

    def _ways_to_rally(self, here: XY) -> list[tuple[Pad, XY]]:
        """(rally point as a pad, its own position as the holding point: no wait), nearest first."""
        if not self.config.rally:
            raise InputError("the station file has no rally points to divert to", field="rally")
        points = []
        for r in self.config.rally:
            x, y = (float(v) for v in self.frame.to_local(r.lon, r.lat))
            points.append((Pad(r.name, (x, y)), (x, y)))
        return sorted(points, key=lambda p: math.dist(p[1], here))

    def _divert_intent(
        self,
        f: _Flight,
        here: XY,
        alt: float,
        layer: float,
        pad: Pad,
        hold_xy: XY,
        now_s: float,
        *,
        land: bool = False,
    ) -> tuple[FlightIntent, VolumeArrays]:
        """The way home from `here` as a `FlightIntent` seen at its "door": a flight whose destination is
        where the drone is, whose door climb (or descent) is the change to `layer`, then on as any flight.

        `FlightIntent` wants the door below both cruise altitudes, so the door is put 1 m below the lower of
        the drone's altitude and the layer: the plan then dips 1 m more than the drone will, which its
        volumes cover (a bigger band, a second longer), never the other way round. The segments before the
        door (a climb from a pad under the drone) are the past and are not booked.
        """
        door = max(0.5, min(alt, layer) - 1.0)
        template = dataclasses.replace(
            f.intent,
            pad=Pad(pad.name, here),
            route_out=(here,),
            route_back=(),
            landing_pad=Pad(pad.name, pad.xy, hold_xy=hold_xy),
            cruise_alt_out_m=max(alt, door + 0.5, self.margins.pad_transition_alt_m + 0.5),
            cruise_alt_back_m=layer,
            delivery_alt_m=door,
            dwell_s=0.0,
            hold_s=0.0 if land else self.config.max_hold_s,
            t_launch_s=now_s,
            confirmed_tau_s=0.0,
        )
        segs = template.path(self.margins).segments
        tau = next(s.tau0_s for s in segs if s.phase in ("door descent", "door climb", "drop"))
        intent = template.progressed(now_s, tau)
        arr = flight_volume_arrays(intent, self.margins, landing=land)
        ahead = np.array([not p.startswith(_DEPARTURE) for p in arr.phases], dtype=bool)
        return intent, arr.take(ahead & (arr.t1_s >= now_s))

    def adopt(
        self,
        flight_id: str,
        vehicle_id: str,
        route_latlon_out: Sequence[LatLon],
        *,
        pad: str,
        cruise_alt_out_m: float,
        cruise_alt_back_m: float,
        lat: float,
        lon: float,
        alt_m: float,
        now_s: float,
        speed_mps: float = 22.0,
        climb_rate_mps: float = 2.5,
        descent_rate_mps: float = 1.5,
        delivery_alt_m: float = 5.0,
        dwell_s: float = 15.0,
    ) -> AirspacePlan:
        """Book again a flight already in the air, booked by a controller that is gone (a restart, a
        standby taking over): the book lives in memory, the flight in the store and in the drone.

        The flight is rebuilt as it was planned (the same route, pad, layers and holding point: they are
        what the drone's mission holds), the drone is found on its path from where it is, and the rest of
        its flight is booked from there, landing later as for any flight. What it now meets gives way
        (`stats.gave_way`, else `stats.unresolved`), as for a diverted flight: a drone in the air cannot.
        """
        request = self._request(
            vehicle_id, route_latlon_out, speed_mps, climb_rate_mps, descent_rate_mps, delivery_alt_m,
            dwell_s, (pad,),
        )  # fmt: skip
        own = next((p for p in self.pads if p.name == pad), None)
        if own is None:
            raise InputError(f"no pad {pad!r} at this station", field="pad", row=flight_id)
        slot = Slot(now_s, own, own, cruise_alt_out_m, cruise_alt_back_m, self.config.max_hold_s)
        planned = self._intent(flight_id, request, slot, self.config.max_hold_s)
        x, y = (float(v) for v in self.frame.to_local(lon, lat))
        tau = planned.path(self.margins).progress((x, y, max(0.0, float(alt_m))))
        intent = planned.progressed(now_s, tau)
        if flight_id in self._flights:
            self.finish(flight_id)
        f = _Flight(intent, request, now_s)
        f.set(intent)
        f.tau_s = tau
        f.marks = {n for n, at in (("drop", f.tau_drop_s), ("hold", f.tau_hold_s)) if tau >= at - 1e-6}
        arr = flight_volume_arrays(intent, self.margins, landing=False)
        conflicts = self.book.replace(flight_id, arr.take(arr.t1_s >= now_s).to_volumes(), intent=intent)
        self._flights[flight_id] = f
        self.seq.set(flight_id, self._column[own.name], self._landing_slot(intent))
        self._others_give_way(conflicts, now_s)
        return self._plan_of(flight_id, f)

    def _others_give_way(self, conflicts: list[Conflict], now_s: float) -> None:
        """A drone in the air booked whatever it meets (diverted, adopted): it cannot wait, the others give
        way. A flight on the ground waits as long as it takes (its mission follows its booking): the drone
        in the air must never be left in conflict because a launch found no slot soon."""
        for c in conflicts:
            other = self._flights.get(c.flight_id)
            if other is not None and self._give_way(other, now_s, patience_s=DIVERT_PATIENCE_S):
                self.stats.gave_way += 1
            else:
                self.stats.unresolved += 1
