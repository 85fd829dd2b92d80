"""A planned flight (`FlightIntent`) and the volumes that cover it.

Each segment of the nominal path (`path.build_path`) becomes one volume: the segment buffered horizontally
by the horizontal buffer (the pad radius for pad segments), its altitude range widened by the vertical
buffer, and its elapsed-time range widened by the time margins at its ends. Margins only grow with elapsed
time, so the window of a segment covers every moment the drone can be anywhere on it (docs/airspace.md).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from shapely.geometry import Polygon

from controller.airspace.margins import Margins
from controller.airspace.pads import Pad
from controller.airspace.path import FlightPath, Segment, build_path
from controller.airspace.volumes import XY, Volume, VolumeArrays
from controller.errors import InputError

__all__ = ["FlightIntent", "Slot", "flight_volumes", "heading_deg"]


def heading_deg(a: XY, b: XY) -> float:
    """Heading from `a` to `b` in the local frame, degrees clockwise from north in [0, 360)."""
    deg = math.degrees(math.atan2(b[0] - a[0], b[1] - a[1])) % 360.0
    return 0.0 if deg >= 360.0 else deg


@dataclass(frozen=True)
class Slot:
    """What the deconfliction search chooses for a flight: when, from and to which pad, at which layers."""

    t_launch_s: float
    pad: Pad
    landing_pad: Pad
    cruise_alt_out_m: float
    cruise_alt_back_m: float
    hold_s: float = 0.0


def _as_pad(value: Pad | XY, field: str, row: str) -> Pad:
    if isinstance(value, Pad):
        return value
    if isinstance(value, tuple | list) and len(value) == 2:
        return Pad(f"({float(value[0]):.0f}, {float(value[1]):.0f})", (value[0], value[1]))
    raise InputError(f"{value!r} is neither a Pad nor an (x, y) pair", field=field, row=row)


def _as_route(value: Sequence[XY], field: str, row: str) -> tuple[XY, ...]:
    out = []
    for p in value:
        if not (isinstance(p, tuple | list) and len(p) == 2 and all(math.isfinite(float(c)) for c in p)):
            raise InputError(f"{p!r} is not a finite (x, y) pair in metres", field=field, row=row)
        out.append((float(p[0]), float(p[1])))
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class FlightIntent:
    """One delivery flight as planned: pad, route, layers, speeds and launch time (metres, seconds).

    `route_out`: vertices after the pad, destination last. `route_back`: vertices between the destination
    and the landing pad (both excluded); None: the outbound vertices reversed. `landing_pad`: None, the
    take-off pad; either pad may be given as (x, y) and becomes an unnamed `Pad`. `hold_s`: planned wait at
    the landing pad's holding point at the inbound layer. `confirmed_tau_s`: elapsed plan time at which the
    drone was last seen on its plan (see `progressed`). The acceleration figures are ArduCopter's
    WPNAV_ACCEL, WPNAV_ACCEL_Z and WPNAV_JERK defaults; speeds and rates are WPNAV_SPEED,
    WPNAV_SPEED_UP/DN, LAND_SPEED; `approach_hover_s` is RTL_LOIT_TIME.
    """

    flight_id: str
    vehicle_id: str
    pad: Pad
    route_out: tuple[XY, ...]
    cruise_alt_out_m: float
    cruise_alt_back_m: float
    t_launch_s: float = 0.0
    route_back: tuple[XY, ...] | None = None
    landing_pad: Pad | None = None  # type: ignore[assignment]  # never None after __post_init__
    delivery_alt_m: float = 5.0
    dwell_s: float = 15.0
    speed_mps: float = 22.0
    climb_rate_mps: float = 2.5
    descent_rate_mps: float = 1.5
    land_speed_mps: float = 0.5
    land_alt_low_m: float = 10.0
    approach_hover_s: float = 5.0
    hold_s: float = 0.0
    confirmed_tau_s: float = 0.0
    accel_mps2: float = 2.5
    accel_z_mps2: float = 1.0
    jerk_mps3: float = 1.0

    def __post_init__(self) -> None:
        row = self.flight_id
        object.__setattr__(self, "pad", _as_pad(self.pad, "pad", row))
        landing = self.pad if self.landing_pad is None else _as_pad(self.landing_pad, "landing_pad", row)
        object.__setattr__(self, "landing_pad", landing)
        route_out = _as_route(self.route_out, "route_out", row)
        if not route_out:
            raise InputError("needs at least the destination", field="route_out", row=row)
        object.__setattr__(self, "route_out", route_out)
        back = tuple(reversed(route_out[:-1])) if self.route_back is None else self.route_back
        object.__setattr__(self, "route_back", _as_route(back, "route_back", row))
        for name in (
            "speed_mps", "climb_rate_mps", "descent_rate_mps", "land_speed_mps",
            "accel_mps2", "accel_z_mps2", "jerk_mps3",
        ):  # fmt: skip
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{value!r} must be a positive number", field=name, row=row)
        for name in (
            "delivery_alt_m", "dwell_s", "land_alt_low_m", "approach_hover_s", "hold_s", "confirmed_tau_s"
        ):  # fmt: skip
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"{value!r} must be finite and not negative", field=name, row=row)
        if not math.isfinite(self.t_launch_s):
            raise InputError(f"{self.t_launch_s!r} is not finite", field="t_launch_s", row=row)
        for name in ("cruise_alt_out_m", "cruise_alt_back_m"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > self.delivery_alt_m):
                raise InputError(
                    f"{value!r} m must be above delivery_alt_m {self.delivery_alt_m} m", field=name, row=row
                )

    @property
    def destination(self) -> XY:
        """Where the package goes: the last vertex of `route_out`."""
        return self.route_out[-1]

    @property
    def heading_out_deg(self) -> float:
        """Heading from the pad to the destination (what picks the outbound layer)."""
        return heading_deg(self.pad.xy, self.destination)

    @property
    def heading_back_deg(self) -> float:
        """Heading from the destination to the landing pad (what picks the inbound layer)."""
        return heading_deg(self.destination, self.landing_pad.xy)

    def path(self, margins: Margins | None = None) -> FlightPath:
        """The nominal 4D path, cut where the volumes of `margins` need it."""
        return build_path(self, margins or Margins())

    @cached_property
    def duration_s(self) -> float:
        """Nominal time from lift-off to touchdown (holding included)."""
        return self.path().duration_s

    @property
    def arrival_s(self) -> float:
        """Nominal touchdown time on the planner's clock."""
        return self.t_launch_s + self.duration_s

    def with_slot(self, slot: Slot) -> FlightIntent:
        """This flight at the launch time, pads, layers and hold of `slot`."""
        return dataclasses.replace(
            self,
            t_launch_s=slot.t_launch_s,
            pad=slot.pad,
            landing_pad=slot.landing_pad,
            cruise_alt_out_m=slot.cruise_alt_out_m,
            cruise_alt_back_m=slot.cruise_alt_back_m,
            hold_s=slot.hold_s,
        )

    def progressed(self, now_s: float, tau_s: float) -> FlightIntent:
        """The flight as seen at `now_s` at plan time `tau_s` (from `FlightPath.progress`).

        The launch moves by the lateness observed and the time margins restart from there: a drone seen on
        its plan is only uncertain about what comes next, so its later volumes shrink (or, when it is late,
        move) and the book can take them with `AirspaceBook.replace`.
        """
        if not (math.isfinite(tau_s) and 0.0 <= tau_s <= self.duration_s):
            raise InputError(f"{tau_s!r} is not within the flight", field="tau_s", row=self.flight_id)
        return dataclasses.replace(self, t_launch_s=now_s - tau_s, confirmed_tau_s=tau_s)

    def volumes(self, margins: Margins | None = None) -> list[Volume]:
        """The flight's volumes (see `flight_volumes`)."""
        return flight_volumes(self, margins)


def flight_volume_arrays(
    intent: FlightIntent,
    margins: Margins | None = None,
    *,
    phases: tuple[str, ...] | None = None,
    shape_cache: dict[tuple[float, ...], Polygon] | None = None,
    landing: bool = True,
) -> VolumeArrays:
    """The volumes of `intent` as arrays, one per path segment still ahead, in flight order.

    Time margins grow from `intent.confirmed_tau_s` (launch, unless the drone was seen on its plan later),
    and segments that ended before it are left out. `phases`: only segments whose phase starts so (the
    search checks the pad columns first). `shape_cache`: buffers already made, by segment and radius.
    `landing=False`: only up to the holding point (the hold included), for a station that books the
    approach and the pad later, when the drone is close and its arrival time is known to a few seconds.
    """
    m = margins or Margins()
    for name in ("cruise_alt_out_m", "cruise_alt_back_m"):
        if getattr(intent, name) <= m.pad_transition_alt_m:
            raise InputError(
                f"{getattr(intent, name)} m must be above the pad transition altitude "
                f"{m.pad_transition_alt_m} m",
                field=name,
                row=intent.flight_id,
            )
    full = build_path(intent, m).segments
    # Without the landing, the touchdown (which keeps the pad booked a while) is not among the volumes.
    path, touchdown = (full, len(full) - 1) if landing else (full[: arrival_index(full)], -1)
    seen = intent.confirmed_tau_s
    ahead = [k for k, s in enumerate(path) if s.tau1_s >= seen]
    if not ahead:
        return VolumeArrays.from_volumes([])
    # Acceleration losses of legs finished before the drone was seen on plan are behind it for good.
    lag_done = max((s.lag_s for s in path if s.lag_s < path[ahead[0]].lag_s), default=0.0)
    keep = [k for k in ahead if phases is None or path[k].phase.startswith(phases)]
    segs = [path[k] for k in keep]
    if not segs:
        return VolumeArrays.from_volumes([])
    start = np.array([s.start for s in segs], dtype=float)
    end = np.array([s.end for s in segs], dtype=float)
    r_pad, r_h = m.polygon_radius(m.pad_buffer_m), m.polygon_radius(m.horizontal_buffer_m)
    radius = np.array([r_pad if s.kind == "pad" else r_h for s in segs])
    shapes = _buffers(
        start[:, :2], end[:, :2], radius, m.quad_segs, {} if shape_cache is None else shape_cache
    )
    v = m.vertical_buffer_m
    tau0 = np.array([s.tau0_s for s in segs])
    tau1 = np.array([s.tau1_s for s in segs])
    early = np.maximum(m.time_min_s, m.time_fraction * np.maximum(tau0 - seen, 0.0))
    late = (
        np.maximum(m.time_min_s, m.time_fraction * (tau1 - seen))
        + np.array([s.lag_s for s in segs])
        - lag_done
    )
    late[np.array(keep) == touchdown] += m.pad_clear_s  # after touchdown the pad stays booked a while
    return VolumeArrays(
        flight_id=intent.flight_id,
        vehicle_id=intent.vehicle_id,
        kinds=tuple(s.kind for s in segs),
        phases=tuple(s.phase for s in segs),
        pads=tuple(s.pad for s in segs),
        shapes=shapes,
        alt_lo_m=np.maximum(0.0, np.minimum(start[:, 2], end[:, 2]) - v),
        alt_hi_m=np.maximum(start[:, 2], end[:, 2]) + v,
        t0_s=intent.t_launch_s + tau0 - early,
        t1_s=intent.t_launch_s + tau1 + late,
    )


ARRIVAL_PHASES = ("final", "approach", "arrival")  # after the holding point: what a late booking adds


def arrival_index(segments: Sequence[Segment]) -> int:
    """Index of the first segment after the holding point (its length when there is none)."""
    return next((i for i, s in enumerate(segments) if s.phase.startswith(ARRIVAL_PHASES)), len(segments))


def _buffers(
    a: np.ndarray, b: np.ndarray, radius: np.ndarray, quad_segs: int, cache: dict[tuple[float, ...], Polygon]
) -> np.ndarray:
    """Each segment a-b (a point when they coincide) buffered by its radius, reusing `cache`."""
    keys = [(*p, *q, r) for p, q, r in zip(a.tolist(), b.tolist(), radius.tolist(), strict=True)]
    missing = [i for i, k in enumerate(keys) if k not in cache]
    if missing:
        moved = np.hypot(*(b[missing] - a[missing]).T) > 1e-9
        lines = shapely.linestrings(np.stack([a[missing], b[missing]], axis=1))
        geoms = np.where(moved, lines, shapely.points(a[missing]))
        for i, shape in zip(
            missing, shapely.buffer(geoms, radius[missing], quad_segs=quad_segs), strict=True
        ):
            cache[keys[i]] = shape
    out = np.empty(len(keys), dtype=object)
    out[:] = [cache[k] for k in keys]
    return out


def flight_volumes(intent: FlightIntent, margins: Margins | None = None) -> list[Volume]:
    """Volumes covering `intent`: whatever the drone's errors within `margins`, at each moment it is inside
    a volume whose window holds that moment, at least half a separation clear of the volume's edges."""
    return flight_volume_arrays(intent, margins).to_volumes()
