"""A 4D volume: a horizontal polygon, an altitude band and a time window that one flight may occupy.

Volumes are what the station reserves and publishes (ASTM F3548 calls a flight's set of them its
operational intent). Everything is closed: two volumes that merely touch in space, in altitude or in time
count as intersecting. That is what turns "the volumes are disjoint" into a strict inequality on the
distance between the vehicles inside them (see docs/airspace.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import shapely
from shapely.geometry import Polygon

from controller.errors import InputError

__all__ = ["KINDS", "XY", "Kind", "Volume", "VolumeArrays", "footprints"]

XY = tuple[float, float]
Kind = Literal["pad", "climb", "cruise", "descent", "hold", "drop"]
KINDS: tuple[str, ...] = get_args(Kind)


@dataclass(frozen=True)
class Volume:
    """One piece of a flight: inside `shape` (local metres), within [alt_lo_m, alt_hi_m], during [t0_s, t1_s].

    Altitudes are above the station's ground; times are seconds on the planner's clock. `phase` is a label
    for people ("cruise out 2/7", "departure P1"); `pad` names the pad of a pad volume.
    """

    flight_id: str
    vehicle_id: str
    kind: Kind
    shape: Polygon
    alt_lo_m: float
    alt_hi_m: float
    t0_s: float
    t1_s: float
    phase: str = ""
    pad: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(
                f"{self.kind!r} is not one of {', '.join(KINDS)}", field="kind", row=self.flight_id
            )
        if not isinstance(self.shape, Polygon) or self.shape.is_empty or not self.shape.is_valid:
            raise InputError("must be a valid, non-empty shapely Polygon", field="shape", row=self.flight_id)
        for name in ("alt_lo_m", "alt_hi_m", "t0_s", "t1_s"):
            if not math.isfinite(getattr(self, name)):
                raise InputError(f"{getattr(self, name)!r} is not finite", field=name, row=self.flight_id)
        if self.alt_lo_m > self.alt_hi_m:
            raise InputError(
                f"{self.alt_lo_m} m is above alt_hi_m {self.alt_hi_m} m", field="alt_lo_m", row=self.flight_id
            )
        if self.t0_s > self.t1_s:
            raise InputError(f"{self.t0_s} s is after t1_s {self.t1_s} s", field="t0_s", row=self.flight_id)

    def intersects(self, other: Volume) -> bool:
        """True when the two volumes share a point (touching counts) in space, altitude and time at once."""
        return (
            self.t0_s <= other.t1_s
            and other.t0_s <= self.t1_s
            and self.alt_lo_m <= other.alt_hi_m
            and other.alt_lo_m <= self.alt_hi_m
            and bool(shapely.intersects(self.shape, other.shape))
        )

    def contains(self, x: float, y: float, alt_m: float, t_s: float) -> bool:
        """True when the point (x, y, alt) at time t lies inside the volume (boundary included)."""
        return (
            self.t0_s <= t_s <= self.t1_s
            and self.alt_lo_m <= alt_m <= self.alt_hi_m
            and bool(shapely.intersects_xy(self.shape, x, y))
        )

    def shifted(self, dt_s: float) -> Volume:
        """The same volume, `dt_s` seconds later."""
        return dataclasses.replace(self, t0_s=self.t0_s + dt_s, t1_s=self.t1_s + dt_s)


@dataclass(frozen=True)
class VolumeArrays:
    """Many volumes of one flight as parallel arrays: what the book and the search work on.

    Building `Volume` objects (with their checks) for every candidate launch time would cost more than
    the search itself; a shift in time is one addition on two arrays here.
    """

    flight_id: str
    vehicle_id: str
    kinds: tuple[str, ...]
    phases: tuple[str, ...]
    pads: tuple[str | None, ...]
    shapes: np.ndarray  # object array of Polygons
    alt_lo_m: np.ndarray
    alt_hi_m: np.ndarray
    t0_s: np.ndarray
    t1_s: np.ndarray
    boxes: np.ndarray | None = None  # (n, 4) bounds; computed when not given
    disks: np.ndarray | None = None  # (n, 3) x, y, radius of a disk inside each shape (see `footprints`)

    def __post_init__(self) -> None:
        if self.boxes is None or self.disks is None:
            boxes, disks = footprints(self.shapes)
            object.__setattr__(self, "boxes", boxes)
            object.__setattr__(self, "disks", disks)

    def __len__(self) -> int:
        return len(self.kinds)

    @classmethod
    def from_volumes(cls, volumes: Sequence[Volume]) -> VolumeArrays:
        """Arrays of `volumes`; flight and vehicle are the first volume's ('' when there is none)."""
        first = volumes[0] if volumes else None
        return cls(
            flight_id=first.flight_id if first else "",
            vehicle_id=first.vehicle_id if first else "",
            kinds=tuple(v.kind for v in volumes),
            phases=tuple(v.phase for v in volumes),
            pads=tuple(v.pad for v in volumes),
            shapes=_object_array([v.shape for v in volumes]),
            alt_lo_m=np.array([v.alt_lo_m for v in volumes], dtype=float),
            alt_hi_m=np.array([v.alt_hi_m for v in volumes], dtype=float),
            t0_s=np.array([v.t0_s for v in volumes], dtype=float),
            t1_s=np.array([v.t1_s for v in volumes], dtype=float),
        )

    @classmethod
    def concat(cls, parts: Sequence[VolumeArrays]) -> VolumeArrays:
        """One flight's volumes from several arrays of it (the first's flight and vehicle), footprints kept:
        one book query for many combinations at once (`Search.columns_free_all`)."""
        if not parts:
            return cls.from_volumes([])
        return dataclasses.replace(
            parts[0],
            kinds=tuple(k for p in parts for k in p.kinds),
            phases=tuple(k for p in parts for k in p.phases),
            pads=tuple(k for p in parts for k in p.pads),
            shapes=np.concatenate([p.shapes for p in parts]),
            alt_lo_m=np.concatenate([p.alt_lo_m for p in parts]),
            alt_hi_m=np.concatenate([p.alt_hi_m for p in parts]),
            t0_s=np.concatenate([p.t0_s for p in parts]),
            t1_s=np.concatenate([p.t1_s for p in parts]),
            boxes=np.concatenate([p.boxes for p in parts]),  # type: ignore[misc]
            disks=np.concatenate([p.disks for p in parts]),  # type: ignore[misc]
        )

    def shifted(self, dt_s: float) -> VolumeArrays:
        """The same volumes, `dt_s` seconds later."""
        return dataclasses.replace(self, t0_s=self.t0_s + dt_s, t1_s=self.t1_s + dt_s)

    def take(self, keep: np.ndarray) -> VolumeArrays:
        """Only the volumes where the boolean array `keep` is true."""
        idx = np.flatnonzero(keep)
        return dataclasses.replace(
            self,
            kinds=tuple(self.kinds[i] for i in idx),
            phases=tuple(self.phases[i] for i in idx),
            pads=tuple(self.pads[i] for i in idx),
            shapes=self.shapes[idx],
            alt_lo_m=self.alt_lo_m[idx],
            alt_hi_m=self.alt_hi_m[idx],
            t0_s=self.t0_s[idx],
            t1_s=self.t1_s[idx],
            boxes=self.boxes[idx],  # type: ignore[index]
            disks=self.disks[idx],  # type: ignore[index]
        )

    def to_volumes(self) -> list[Volume]:
        """`Volume` objects, checked."""
        return [
            Volume(
                flight_id=self.flight_id,
                vehicle_id=self.vehicle_id,
                kind=self.kinds[i],  # type: ignore[arg-type]
                shape=self.shapes[i],
                alt_lo_m=float(self.alt_lo_m[i]),
                alt_hi_m=float(self.alt_hi_m[i]),
                t0_s=float(self.t0_s[i]),
                t1_s=float(self.t1_s[i]),
                phase=self.phases[i],
                pad=self.pads[i],
            )
            for i in range(len(self))
        ]


def footprints(shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounding boxes (n, 4), and a disk inside each shape (n, 3: x, y, radius; radius -inf when unknown).

    Two shapes whose inner disks meet certainly intersect, which settles without GEOS the many pairs of
    columns over the same pad; only pairs whose boxes overlap but whose disks do not need the exact test.
    The disk is centred on the centroid (the middle of a buffered segment) and reaches the nearest edge.
    """
    shapes = np.asarray(shapes, dtype=object)
    if not len(shapes):
        return np.empty((0, 4)), np.empty((0, 3))
    boxes = shapely.bounds(shapes)
    centres = shapely.centroid(shapes)
    radius = shapely.distance(centres, shapely.boundary(shapes)) - 1e-9
    radius = np.where(shapely.contains(shapes, centres), radius, -np.inf)
    return boxes, np.column_stack([shapely.get_coordinates(centres), radius])


def _object_array(items: Sequence[object]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out
