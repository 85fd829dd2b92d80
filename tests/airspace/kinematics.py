"""An independent model of how a drone flies a `FlightIntent`, to check the planner against.

Written from the intent's fields alone (not from `controller.airspace.path`): climb over the pad, straight
legs at constant speed, vertical descent, drop and climb at the door, legs back (with the hold at the
holding point), RTL hover, descent and the slow final landing. Times are nominal; `schedule` bends them by
the largest errors the margins promise to cover.
"""

from __future__ import annotations

import math

import numpy as np

from controller.airspace import FlightIntent, Margins


def _hold_point(points: list[tuple[float, float]], distance: float) -> tuple[list[tuple[float, float]], int]:
    """The polyline with a vertex `distance` before its end (walking back), and that vertex's index."""
    left = distance
    for i in range(len(points) - 1, 0, -1):
        leg = math.dist(points[i - 1], points[i])
        if left < leg - 1e-6:
            f = left / leg
            (ax, ay), (bx, by) = points[i - 1], points[i]
            return [*points[:i], (bx + f * (ax - bx), by + f * (ay - by)), *points[i:]], i
        left -= leg
        if abs(left) <= 1e-6:
            return points, i - 1
    return points, 0


def knots(intent: FlightIntent, margins: Margins | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(elapsed seconds, (x, y, alt) metres) at every change of motion."""
    m = margins or Margins()
    x, y = intent.pad.xy
    tau, z = 0.0, 0.0
    out = [(0.0, x, y, 0.0)]

    def go(nx: float, ny: float, nz: float, dt: float) -> None:
        nonlocal x, y, z, tau
        x, y, z, tau = nx, ny, nz, tau + dt
        out.append((tau, x, y, z))

    go(x, y, intent.cruise_alt_out_m, intent.cruise_alt_out_m / intent.climb_rate_mps)
    for px, py in intent.route_out:
        go(px, py, z, math.dist((x, y), (px, py)) / intent.speed_mps)
    go(x, y, intent.delivery_alt_m, (z - intent.delivery_alt_m) / intent.descent_rate_mps)
    go(x, y, z, intent.dwell_s)
    go(x, y, intent.cruise_alt_back_m, (intent.cruise_alt_back_m - z) / intent.climb_rate_mps)
    pad = intent.landing_pad
    back = [(x, y), *intent.route_back]
    if pad.hold_xy is not None:
        points, hold_at = [*back, pad.hold_xy, pad.xy], len(back)
    else:
        points, hold_at = _hold_point([*back, pad.xy], m.hold_distance_m)
    for i, (px, py) in enumerate(points[1:], 1):
        if i - 1 == hold_at:  # waiting at the holding point, before the leg that leaves it
            go(x, y, z, intent.hold_s)
        go(px, py, z, math.dist((x, y), (px, py)) / intent.speed_mps)
    go(x, y, z, intent.approach_hover_s)
    low = min(intent.land_alt_low_m, z)
    go(x, y, low, (z - low) / intent.descent_rate_mps)
    go(x, y, 0.0, low / intent.land_speed_mps)
    arr = np.array(out)
    return arr[:, 0], arr[:, 1:]


def schedule(
    intent: FlightIntent, side: float, margins: Margins | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(clock times, positions) of the knots flown with timing error `side` in [-1, 1] of the margins.

    -1: as early as the margins allow (max(5 s, 5 %) ahead); +1: as late (the same behind, plus the
    acceleration losses of every leg not yet finished); 0: nominal. Errors grow from the plan time at which
    the drone was last seen on plan (`confirmed_tau_s`, launch by default); knots before it keep its shift.
    """
    m = margins or Margins()
    segs = intent.path(m).segments
    seen = intent.confirmed_tau_s
    tau = np.array([segs[0].tau0_s] + [s.tau1_s for s in segs])
    lag = np.array([0.0] + [s.lag_s for s in segs])
    current = next(s.lag_s for s in segs if s.tau1_s >= seen)
    lag_done = max((s.lag_s for s in segs if s.lag_s < current), default=0.0)
    xyz = np.array([segs[0].start] + [s.end for s in segs])
    err = np.maximum(m.time_min_s, m.time_fraction * np.maximum(tau - seen, 0.0))
    shift = side * err + max(side, 0.0) * np.maximum(lag - lag_done, 0.0)
    shift[tau < seen] = shift[tau >= seen][0] if side < 0 else 0.0
    return intent.t_launch_s + tau + shift, xyz


def positions(times: np.ndarray, knot_t: np.ndarray, knot_xyz: np.ndarray) -> np.ndarray:
    """Positions at `times` along knots (piecewise linear); NaN outside the flight."""
    out = np.column_stack([np.interp(times, knot_t, knot_xyz[:, k]) for k in range(3)])
    out[(times < knot_t[0]) | (times > knot_t[-1])] = np.nan
    return out
