"""The station's reserved volumes, and the question every plan asks: what would this flight run into?

Storage is a set of parallel numpy arrays with a slot per volume: bounding box, a disk known to lie inside
the shape, altitude band, time window, vehicle and flight. A query first keeps the slots whose windows can
meet the candidate's (one vectorized test per candidate volume), then compares bands and boxes on those
pairs; pairs whose inner disks meet are certain conflicts, and only the rest go to GEOS.

A shapely STRtree was measured against it (docs/airspace.md): queried with the `intersects` predicate it is
about 20 times slower, because near the station every pad, climb and descent column overlaps in plan and
GEOS tests thousands of polygon pairs that time alone dismisses; over bounding boxes, followed by the same
numpy tests, it is no faster, and it would have to be rebuilt after every reservation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely

from controller.airspace.errors import AirspaceConflict
from controller.airspace.volumes import Volume, VolumeArrays, footprints
from controller.errors import InputError

if TYPE_CHECKING:
    from controller.airspace.flight import FlightIntent

__all__ = ["AirspaceBook", "Conflict"]


@dataclass(frozen=True)
class Conflict:
    """A reserved flight in the way: its volumes that meet the candidate's, and when the last of them ends."""

    flight_id: str
    vehicle_id: str
    reserved: tuple[Volume, ...]
    against: tuple[Volume, ...]
    free_at_s: float

    @property
    def kinds(self) -> tuple[str, ...]:
        """Kinds of the reserved volumes in the way, each once, in flight order."""
        return tuple(dict.fromkeys(v.kind for v in self.reserved))


class AirspaceBook:
    """The volumes reserved at one station, by flight; each flight belongs to one vehicle.

    Volumes of the same vehicle never conflict with each other (a drone's next flight may book its pad
    while the landing of its previous flight is still booked); volumes of different vehicles must not
    intersect, which `reserve` enforces and `extend` reports.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._n = 0
        self._dead = 0
        self._alloc(max(16, capacity))
        self._slots: dict[str, list[int]] = {}
        self._intents: dict[str, FlightIntent] = {}
        self._codes: dict[str, int] = {}

    # ---- storage ---------------------------------------------------------------------------------------

    def _alloc(self, capacity: int) -> None:
        def grow(old: np.ndarray | None, shape: tuple[int, ...], dtype: object, fill: object) -> np.ndarray:
            new = np.full(shape, fill, dtype=dtype)  # type: ignore[call-overload]
            if old is not None:
                new[: self._n] = old[: self._n]
            return new

        g = self.__dict__.get
        self._box = grow(g("_box"), (capacity, 4), float, np.nan)  # xmin, ymin, xmax, ymax
        self._disk = grow(g("_disk"), (capacity, 3), float, np.nan)  # x, y, radius inside the shape
        self._band = grow(g("_band"), (capacity, 2), float, np.nan)  # alt lo, hi
        self._win = grow(g("_win"), (capacity, 2), float, np.nan)  # t0, t1
        self._veh = grow(g("_veh"), (capacity,), np.int64, -1)
        self._flt = grow(g("_flt"), (capacity,), np.int64, -1)
        self._alive = grow(g("_alive"), (capacity,), bool, False)
        self._shapes = grow(g("_shapes"), (capacity,), object, None)
        self._vols: list[Volume | None] = g("_vols", [])  # type: ignore[assignment]

    def _code(self, name: str) -> int:
        return self._codes.setdefault(name, len(self._codes))

    def _add(self, volumes: Sequence[Volume], arrays: VolumeArrays | None = None) -> list[int]:
        if self._n + len(volumes) > len(self._alive):
            self._alloc(2 * (self._n + len(volumes)))
        slots = list(range(self._n, self._n + len(volumes)))
        if arrays is not None and arrays.boxes is not None and arrays.disks is not None:
            boxes, disks = arrays.boxes, arrays.disks  # the same shapes: their footprints are known
        else:
            boxes, disks = footprints(np.array([v.shape for v in volumes], dtype=object))
        for k, (i, v) in enumerate(zip(slots, volumes, strict=True)):
            self._box[i] = boxes[k]
            self._disk[i] = disks[k]
            self._band[i] = (v.alt_lo_m, v.alt_hi_m)
            self._win[i] = (v.t0_s, v.t1_s)
            self._veh[i] = self._code("v:" + v.vehicle_id)
            self._flt[i] = self._code("f:" + v.flight_id)
            self._alive[i] = True
            self._shapes[i] = v.shape
            self._vols.append(v)
        self._n += len(volumes)
        return slots

    def _kill(self, slots: Iterable[int]) -> None:
        for i in slots:
            if self._alive[i]:
                self._alive[i] = False
                self._vols[i] = None
                self._dead += 1
        if self._dead > 256 and self._dead * 2 > self._n:
            self._compact()

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: self._n])
        remap = {int(old): new for new, old in enumerate(keep)}
        for name in ("_box", "_disk", "_band", "_win", "_veh", "_flt", "_alive", "_shapes"):
            arr = getattr(self, name)
            arr[: len(keep)] = arr[keep]
            arr[len(keep) : self._n] = np.nan if arr.dtype == float else (None if arr.dtype == object else 0)
        self._alive[len(keep) : self._n] = False
        self._veh[len(keep) : self._n] = -1
        self._flt[len(keep) : self._n] = -1
        self._vols = [self._vols[i] for i in keep]
        self._slots = {f: [remap[i] for i in s] for f, s in self._slots.items()}
        self._n, self._dead = len(keep), 0

    # ---- queries ---------------------------------------------------------------------------------------

    def _pairs(
        self, cand: VolumeArrays, shift_lo: float = 0.0, shift_hi: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """(candidate index, slot) of every pair that meets, with volumes of other vehicles and flights.

        With a range of shifts, the pairs that would meet were the candidate moved by any shift in
        [shift_lo, shift_hi] (seconds, later positive): what a search over launch times needs to know once
        rather than at every step.
        """
        n = self._n
        if n == 0 or len(cand) == 0:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
        veh = self._codes.get("v:" + cand.vehicle_id, -2)
        flt = self._codes.get("f:" + cand.flight_id, -2)
        # Slots that can meet the candidate at all: alive, another vehicle, a window inside its span.
        live = np.flatnonzero(
            self._alive[:n]
            & (self._veh[:n] != veh)
            & (self._flt[:n] != flt)
            & (self._win[:n, 1] >= cand.t0_s.min() + shift_lo)
            & (self._win[:n, 0] <= cand.t1_s.max() + shift_hi)
        )
        if not len(live):
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
        # Time first: it is what separates the columns over the pads, where everything meets in plan.
        win = self._win[live]
        mask = (win[:, 0] <= cand.t1_s[:, None] + shift_hi) & (cand.t0_s[:, None] + shift_lo <= win[:, 1])
        ci, k = np.nonzero(mask)
        sj = live[k]
        band, box, cb = self._band[sj], self._box[sj], cand.boxes[ci]  # type: ignore[index]
        keep = (
            (band[:, 0] <= cand.alt_hi_m[ci])
            & (cand.alt_lo_m[ci] <= band[:, 1])
            & (box[:, 0] <= cb[:, 2])
            & (cb[:, 0] <= box[:, 2])
            & (box[:, 1] <= cb[:, 3])
            & (cb[:, 1] <= box[:, 3])
        )
        ci, sj = ci[keep], sj[keep]
        if not len(ci):
            return ci, sj
        a, b = cand.disks[ci], self._disk[sj]  # type: ignore[index]
        sure = np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1]) <= a[:, 2] + b[:, 2]
        unsure = np.flatnonzero(~sure)
        if len(unsure):
            sure[unsure] = shapely.intersects(cand.shapes[ci[unsure]], self._shapes[sj[unsure]])
        return ci[sure], sj[sure]

    def _group(self, cand: VolumeArrays, ci: np.ndarray, sj: np.ndarray) -> list[Conflict]:
        if not len(ci):
            return []
        cvols = cand.to_volumes()
        by_flight: dict[str, tuple[dict[int, None], dict[int, None]]] = {}
        for c, s in zip(ci.tolist(), sj.tolist(), strict=True):
            vol = self._vols[s]
            assert vol is not None
            mine, theirs = by_flight.setdefault(vol.flight_id, ({}, {}))
            mine[c] = None
            theirs[s] = None
        out = []
        for flight_id, (mine, theirs) in by_flight.items():
            vols = [self._vols[s] for s in theirs]
            reserved = tuple(sorted(vols, key=lambda v: v.t0_s))  # type: ignore[arg-type, return-value]
            out.append(
                Conflict(
                    flight_id=flight_id,
                    vehicle_id=reserved[0].vehicle_id,
                    reserved=reserved,
                    against=tuple(cvols[c] for c in sorted(mine)),
                    free_at_s=max(v.t1_s for v in reserved),
                )
            )
        return sorted(out, key=lambda c: (c.free_at_s, c.flight_id))

    def conflicts(self, volumes: Sequence[Volume] | VolumeArrays) -> list[Conflict]:
        """Reserved flights of other vehicles whose volumes intersect `volumes`, soonest freed first.

        `volumes` are one flight's; the flight's own reservation, if any, is not counted against it.
        """
        cand = _arrays(volumes)
        return self._group(cand, *self._pairs(cand))

    # ---- changes ---------------------------------------------------------------------------------------

    def reserve(
        self,
        flight_id: str,
        volumes: Sequence[Volume] | VolumeArrays,
        *,
        intent: FlightIntent | None = None,
    ) -> list[Volume]:
        """Book `volumes` for `flight_id` (replacing its booking) unless another vehicle's are in the way.

        Raises `AirspaceConflict` (and changes nothing) when any volume intersects another vehicle's.
        """
        cand = _arrays(volumes)
        if len(cand) and cand.flight_id != flight_id:
            raise InputError(f"volumes are of flight {cand.flight_id!r}", field="flight_id", row=flight_id)
        vols = volumes.to_volumes() if isinstance(volumes, VolumeArrays) else list(volumes)
        for v in vols:
            if v.flight_id != flight_id or v.vehicle_id != cand.vehicle_id:
                raise InputError(
                    f"a volume of flight {v.flight_id!r}, vehicle {v.vehicle_id!r} in the booking of flight "
                    f"{flight_id!r}, vehicle {cand.vehicle_id!r}",
                    field="volumes",
                    row=flight_id,
                )
        found = self._group(cand, *self._pairs(cand))
        if found:
            raise AirspaceConflict(flight_id, found)
        self._store(flight_id, vols, intent, cand)
        return vols

    def replace(
        self,
        flight_id: str,
        volumes: Sequence[Volume] | VolumeArrays,
        *,
        intent: FlightIntent | None = None,
    ) -> list[Conflict]:
        """Book the volumes of a flight under way as they now are, whatever they meet; return what they meet.

        For `FlightIntent.progressed` volumes: a drone seen on its plan needs less room ahead (its margins
        restart), a late one needs it later. Either way the drone is where it is, so the booking is made,
        and the conflicts it causes are for the caller to resolve by holding the later flight.
        """
        cand = _arrays(volumes)
        vols = volumes.to_volumes() if isinstance(volumes, VolumeArrays) else list(volumes)
        if any(v.flight_id != flight_id for v in vols):
            raise InputError("volumes of another flight", field="flight_id", row=flight_id)
        found = self._group(cand, *self._pairs(cand))
        self._store(flight_id, vols, intent or self._intents.get(flight_id), cand)
        return found

    def _store(
        self, flight_id: str, vols: list[Volume], intent: FlightIntent | None, cand: VolumeArrays
    ) -> None:
        self.release(flight_id)
        if vols:
            self._slots[flight_id] = self._add(vols, cand)
            if intent is not None:
                self._intents[flight_id] = intent

    def release(self, flight_id: str) -> int:
        """Drop every volume of `flight_id` (landed, cancelled, or about to be re-planned); how many."""
        slots = self._slots.pop(flight_id, [])
        self._intents.pop(flight_id, None)
        self._kill(slots)
        return len(slots)

    def release_before(self, t_s: float) -> int:
        """Drop volumes whose window ended before `t_s`; a flight with none left is forgotten. How many."""
        n = self._n
        ended = np.flatnonzero(self._alive[:n] & (self._win[:n, 1] < t_s))
        if not len(ended):
            return 0
        gone = set(ended.tolist())
        for flight_id in list(self._slots):
            left = [s for s in self._slots[flight_id] if s not in gone]
            if left:
                self._slots[flight_id] = left
            else:
                del self._slots[flight_id]
                self._intents.pop(flight_id, None)
        self._kill(ended.tolist())
        return len(ended)

    def extend(self, flight_id: str, delay_s: float, now_s: float) -> list[Conflict]:
        """A flight `delay_s` behind its booking at `now_s`: its unfinished volumes end `delay_s` later.

        Windows grow at the end and keep their start (the drone may still catch up), so the booking covers
        any lateness from 0 to `delay_s`. It is applied whatever it meets, because a late drone is where it
        is; the conflicts it now causes with other flights are returned so the caller can hold or re-plan
        those (the later ones), never hope.
        """
        if not delay_s >= 0:
            raise InputError(f"{delay_s!r} must not be negative", field="delay_s", row=flight_id)
        slots = [s for s in self._slots.get(flight_id, []) if self._win[s, 1] >= now_s - delay_s]
        for s in slots:
            self._win[s, 1] += delay_s
            vol = self._vols[s]
            assert vol is not None
            self._vols[s] = dataclasses.replace(vol, t1_s=vol.t1_s + delay_s)
        mine = [self._vols[s] for s in slots]
        if not mine:
            return []
        return self.conflicts(mine)  # type: ignore[arg-type]

    # ---- read access -----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n - self._dead

    def __contains__(self, flight_id: object) -> bool:
        return flight_id in self._slots

    def has_vehicle(self, vehicle_id: str) -> bool:
        """True when a volume of `vehicle_id` is booked. A search for a vehicle with none sees the same sky as
        for any other such vehicle (a vehicle's own volumes never block it), so its answer can be shared."""
        code = self._codes.get("v:" + vehicle_id)
        if code is None:
            return False
        n = self._n
        return bool(np.any(self._alive[:n] & (self._veh[:n] == code)))

    def volumes(self, flight_id: str | None = None) -> list[Volume]:
        """Reserved volumes (of one flight, or all), each flight's in flight order."""
        ids = [flight_id] if flight_id is not None else list(self._slots)
        return [self._vols[s] for f in ids for s in self._slots.get(f, [])]  # type: ignore[misc]

    def intents(self) -> dict[str, tuple[Volume, ...]]:
        """Operational intents: every reserved flight's volumes, by flight id."""
        return {f: tuple(self._vols[s] for s in slots) for f, slots in self._slots.items()}  # type: ignore[misc]

    def flight_intent(self, flight_id: str) -> FlightIntent | None:
        """The plan a flight was booked with, when `reserve` was given one (the volumes are the truth)."""
        return self._intents.get(flight_id)


def _arrays(volumes: Sequence[Volume] | VolumeArrays) -> VolumeArrays:
    if isinstance(volumes, VolumeArrays):
        return volumes
    vols = list(volumes)
    vehicles = {v.vehicle_id for v in vols}
    flights = {v.flight_id for v in vols}
    if len(vehicles) > 1 or len(flights) > 1:
        raise InputError(
            f"volumes of several flights {sorted(flights)} / vehicles {sorted(vehicles)}; check one flight",
            field="volumes",
        )
    return VolumeArrays.from_volumes(vols)
