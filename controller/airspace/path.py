"""A flight's nominal 4D path: where the drone is planned to be at each second, as ArduCopter flies it.

Take-off is a vertical climb over the pad (NAV_TAKEOFF), legs are straight at constant ground speed
(WPNAV_SPEED), the door is a vertical descent, a hover and a vertical climb, and the landing is RTL's: a
RTL_LOIT_TIME hover over the pad, a descent at WPNAV_SPEED_DN down to LAND_ALT_LOW, then LAND_SPEED to
touchdown. Speed changes are instant in the plan; each leg records what accelerating and stopping really
cost (`lag_s`), which the time margins add on the late side.

The path is cut into segments at the boundaries the volumes need (pad transition altitude, vertical slices,
cruise pieces), so each segment becomes exactly one volume.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from controller.airspace.margins import Margins
from controller.airspace.volumes import XY

if TYPE_CHECKING:
    from controller.airspace.flight import FlightIntent

__all__ = ["FlightPath", "Segment", "build_path"]

_EPS = 1e-9
# Positions closer than this are the same place to `progress`: a position that went through WGS84 and back
# is off by nanometres, which must not decide between a hover and the leg that leaves it.
_SAME_M = 1e-3
_XYZ = tuple[float, float, float]


@dataclass(frozen=True)
class Segment:
    """A straight piece of the path from `start` to `end` (x, y, alt) over elapsed times [tau0_s, tau1_s].

    `lag_s`: acceleration losses of every leg begun up to and including this segment's leg.
    """

    kind: str
    phase: str
    pad: str | None
    tau0_s: float
    tau1_s: float
    start: _XYZ
    end: _XYZ
    lag_s: float


@dataclass(frozen=True)
class FlightPath:
    """The segments of one flight, launched at `t_launch_s`."""

    t_launch_s: float
    segments: tuple[Segment, ...]

    @property
    def duration_s(self) -> float:
        """Nominal time from lift-off to touchdown."""
        return self.segments[-1].tau1_s if self.segments else 0.0

    def knots(self) -> tuple[np.ndarray, np.ndarray]:
        """(elapsed times, positions (n, 3)) of the segment ends, first the start."""
        tau = [self.segments[0].tau0_s] + [s.tau1_s for s in self.segments]
        xyz = [self.segments[0].start] + [s.end for s in self.segments]
        return np.asarray(tau, dtype=float), np.asarray(xyz, dtype=float)

    def progress(self, xyz: ArrayLike, *, now_s: float | None = None, after_tau_s: float = 0.0) -> float:
        """Plan time (elapsed s) of the point of the path nearest `xyz` (x, y, alt), from `after_tau_s` on.

        Where the drone hovers (drop, hold, approach hover) its position says nothing of the time spent:
        the plan time there is taken from `now_s` when given (kept within the hover), else its start, the
        latest the drone can be. Among equally near points the earliest wins, for the same reason.
        """
        p = np.asarray(xyz, dtype=float)
        here = None if now_s is None else now_s - self.t_launch_s
        a, ab, length2, tau0, tau1 = self._legs
        # Every segment's nearest point at once (telemetry comes every second for every drone); the choice
        # among them below is sequential, as ties depend on the best so far.
        moves = length2 > 1e-12
        u = np.where(
            moves, np.clip(((p - a) * ab).sum(axis=1) / np.where(moves, length2, 1.0), 0.0, 1.0), 0.0
        )
        hover = tau0 if here is None else np.clip(here, tau0, tau1)
        taus = np.where(moves, tau0 + u * (tau1 - tau0), hover)
        dists = np.sqrt(((a + u[:, None] * ab - p) ** 2).sum(axis=1))
        best, best_d = after_tau_s, math.inf
        for d, tau, end in zip(dists.tolist(), taus.tolist(), tau1.tolist(), strict=True):
            if end < after_tau_s:
                continue
            tie = abs(d - best_d) <= _SAME_M and here is not None and abs(tau - here) < abs(best - here)
            if d < best_d - _SAME_M or tie:
                best, best_d = max(tau, after_tau_s), d
        return best

    @cached_property
    def _legs(self) -> tuple[np.ndarray, ...]:
        """Per segment: start (n, 3), start to end (n, 3), its squared length, tau0, tau1 (for `progress`)."""
        a = np.array([s.start for s in self.segments], dtype=float).reshape(-1, 3)
        b = np.array([s.end for s in self.segments], dtype=float).reshape(-1, 3)
        ab = b - a
        tau0 = np.array([s.tau0_s for s in self.segments], dtype=float)
        tau1 = np.array([s.tau1_s for s in self.segments], dtype=float)
        return a, ab, (ab * ab).sum(axis=1), tau0, tau1

    def position(self, t_s: ArrayLike) -> np.ndarray:
        """Planned (x, y, alt) at clock times `t_s`, shape (n, 3); NaN before lift-off and after touchdown."""
        t = np.atleast_1d(np.asarray(t_s, dtype=float)) - self.t_launch_s
        tau, xyz = self.knots()
        out = np.column_stack([np.interp(t, tau, xyz[:, k]) for k in range(3)])
        out[(t < tau[0]) | (t > tau[-1])] = np.nan
        return out


class _Builder:
    """Appends moves to a path, cutting them where the volumes need boundaries."""

    def __init__(self, xy: XY, margins: Margins) -> None:
        self.x, self.y, self.z = xy[0], xy[1], 0.0
        self.tau = 0.0
        self.lag = 0.0
        self.margins = margins
        self.segments: list[Segment] = []

    def _add(self, kind: str, phase: str, pad: str | None, end: _XYZ, dur: float) -> None:
        start = (self.x, self.y, self.z)
        self.segments.append(Segment(kind, phase, pad, self.tau, self.tau + dur, start, end, self.lag))
        self.x, self.y, self.z = end
        self.tau += dur

    def vertical(
        self, z_to: float, rate: float, lag: float, kind: str, phase: str, *, pad: str | None = None
    ) -> None:
        """Climb or descend in place; over a pad (`pad` given), cut at the transition altitude and slices."""
        if abs(z_to - self.z) <= _EPS:
            return
        self.lag += lag
        lo, hi = sorted((self.z, z_to))
        cuts: list[float] = []
        if pad is not None:
            top = self.margins.pad_transition_alt_m
            while top < hi - _EPS:
                if top > lo + _EPS:
                    cuts.append(top)
                top += self.margins.vertical_slice_m
        levels = [lo, *cuts, hi]
        if z_to < self.z:
            levels.reverse()
        for a, b in itertools.pairwise(levels):
            on_pad = pad is not None and max(a, b) <= self.margins.pad_transition_alt_m + _EPS
            self._add(
                "pad" if on_pad else kind,
                f"{'departure' if z_to > a else 'arrival'} {pad}" if on_pad else phase,
                pad if on_pad else None,
                (self.x, self.y, b),
                abs(b - a) / rate,
            )

    def horizontal(
        self, xy: XY, speed: float, lag: float, kind: str, phase: str, *, first_m: float = 0.0
    ) -> None:
        """Fly straight to `xy` at this altitude, in pieces no longer than `max_cruise_volume_m`.

        `first_m` > 0: the first piece is that long (when the leg is longer), the rest cut as usual.
        """
        x0, y0 = self.x, self.y
        length = math.hypot(xy[0] - x0, xy[1] - y0)
        if length <= _EPS:
            return
        self.lag += lag
        first = first_m if 0.0 < first_m < length - 1e-6 else 0.0
        n = max(1, math.ceil((length - first) / self.margins.max_cruise_volume_m - 1e-9))
        cuts = ([first] if first else []) + [first + (length - first) * k / n for k in range(1, n + 1)]
        done = 0.0
        for k, at in enumerate(cuts, 1):
            f = at / length
            label = f"{phase} ({k}/{len(cuts)})" if len(cuts) > 1 else phase
            end = (x0 + f * (xy[0] - x0), y0 + f * (xy[1] - y0), self.z)
            self._add(kind, label, None, end, (at - done) / speed)
            done = at

    def hover(self, dur: float, kind: str, phase: str) -> None:
        """Stay where the drone is for `dur` seconds."""
        if dur > _EPS:
            self._add(kind, phase, None, (self.x, self.y, self.z), dur)


def _hold_point(points: list[XY], distance_m: float) -> tuple[list[XY], int, bool]:
    """Insert the point `distance_m` before the end of the polyline; (points, its index, inserted?)."""
    remaining = distance_m
    for i in range(len(points) - 1, 0, -1):
        (ax, ay), (bx, by) = points[i - 1], points[i]
        leg = math.hypot(bx - ax, by - ay)
        if remaining < leg - 1e-6:
            f = remaining / leg
            p = (bx + f * (ax - bx), by + f * (ay - by))
            return [*points[:i], p, *points[i:]], i, True
        remaining -= leg
        if abs(remaining) <= 1e-6:
            return points, i - 1, False
    return points, 0, False


def build_path(intent: FlightIntent, margins: Margins) -> FlightPath:
    """The nominal path of `intent`, cut for `margins` (the cuts never change where the drone is when)."""
    b = _Builder(intent.pad.xy, margins)
    up = intent.climb_rate_mps / intent.accel_z_mps2 + intent.accel_z_mps2 / intent.jerk_mps3
    down = intent.descent_rate_mps / intent.accel_z_mps2 + intent.accel_z_mps2 / intent.jerk_mps3
    land = intent.land_speed_mps / intent.accel_z_mps2 + intent.accel_z_mps2 / intent.jerk_mps3
    cruise = intent.speed_mps / intent.accel_mps2 + intent.accel_mps2 / intent.jerk_mps3
    alt_out, alt_back = intent.cruise_alt_out_m, intent.cruise_alt_back_m

    b.vertical(alt_out, intent.climb_rate_mps, up, "climb", "climb-out", pad=intent.pad.name)
    n_out = len(intent.route_out)
    for i, xy in enumerate(intent.route_out, 1):
        exit_m = margins.column_exit_m if i == 1 else 0.0  # leave the pad's column in a piece of its own
        b.horizontal(xy, intent.speed_mps, cruise, "cruise", f"cruise out {i}/{n_out}", first_m=exit_m)
    b.vertical(intent.delivery_alt_m, intent.descent_rate_mps, down, "descent", "door descent")
    b.hover(intent.dwell_s, "drop", "drop")
    b.vertical(alt_back, intent.climb_rate_mps, up, "climb", "door climb")

    landing = intent.landing_pad
    points: list[XY] = [intent.destination, *intent.route_back]
    if landing.hold_xy is not None:
        points, hold_at, inserted = [*points, landing.hold_xy, landing.xy], len(points), False
    else:
        points, hold_at, inserted = _hold_point([*points, landing.xy], margins.hold_distance_m)
    n_back = len(points) - 1
    for i, xy in enumerate(points[1:], 1):
        if i - 1 == hold_at and intent.hold_s > 0:
            b.hover(intent.hold_s, "hold", "hold")
        smooth = inserted and i - 1 == hold_at and intent.hold_s <= 0
        label = "final" if i - 1 >= hold_at else "cruise back"  # "final": after the holding point
        b.horizontal(xy, intent.speed_mps, 0.0 if smooth else cruise, "cruise", f"{label} {i}/{n_back}")
    if hold_at == n_back and intent.hold_s > 0:  # the holding point is the pad itself
        b.hover(intent.hold_s, "hold", "hold")
    b.hover(intent.approach_hover_s, "descent", "approach hover")
    low = min(intent.land_alt_low_m, alt_back)
    b.vertical(low, intent.descent_rate_mps, down, "descent", "approach", pad=landing.name)
    b.vertical(0.0, intent.land_speed_mps, land, "descent", "approach", pad=landing.name)
    return FlightPath(intent.t_launch_s, tuple(b.segments))
