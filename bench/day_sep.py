"""Separation measured from the flown tracks, apart from the plan: what anyone can check in the trajectories.

Every airborne drone's position is sampled each second of simulated time, from lift-off to touchdown (pads
and holding included). Two drones are in loss of separation when, at the same second, they are closer than
`h_m` horizontally and `v_m` vertically (issue 16: 50 m / 15 m, and 100 m / 30 m). Pairs are found per
second by sorting on (second, x) and comparing each row with the next ones while they are within `h_m` in x:
no all-pairs matrix, so a day of 10,000 orders (millions of samples) takes seconds.

A pad conflict is two drones inside one pad's volume at once: within `PAD_RADIUS_M` horizontally of the pad
and below `PAD_TOP_M`. Pads a few metres apart overlap, so two drones on neighbouring pads count too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.day_flight import Trip
from geofences import LocalFrame

PAD_RADIUS_M = 25.0  # half the horizontal separation: a drone this close to a pad is over it
PAD_TOP_M = 15.0  # the vertical separation: below it, a drone is taking off from or landing on the pad
PHASES = (
    "climb", "cruise_out", "descent", "drop", "climb_back", "cruise_back", "hold", "final", "approach",
    "landing",
)  # fmt: skip


@dataclass(frozen=True)
class Samples:
    """One row per airborne drone per second: time, drone (index into `drones`), position, phase code."""

    t: np.ndarray  # int64 seconds
    drone: np.ndarray  # int32
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray  # metres above the station's ground
    phase: np.ndarray  # int8 index into PHASES
    drones: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.t)


def sample(trips: Sequence[Trip]) -> Samples:
    """Each drone trip's track at every whole second from lift-off to touchdown."""
    flown = [t for t in trips if t.knots is not None and len(t.knots) > 1]
    names = tuple(sorted({t.vehicle_id for t in flown}))
    index = {n: i for i, n in enumerate(names)}
    code = {p: i for i, p in enumerate(PHASES)}
    parts: list[tuple[np.ndarray, ...]] = []
    for trip in flown:
        k = trip.knots
        assert k is not None
        ts = np.arange(np.ceil(k[0, 0]), np.floor(k[-1, 0]) + 1.0)
        seg = np.clip(np.searchsorted(k[:, 0], ts, side="right") - 1, 0, len(trip.phases) - 1)
        phases = np.array([code[p] for p in trip.phases], dtype=np.int8)[seg]
        xyz = [np.interp(ts, k[:, 0], k[:, c]) for c in (1, 2, 3)]
        parts.append((ts.astype(np.int64), np.full(len(ts), index[trip.vehicle_id], np.int32), *xyz, phases))
    if not parts:
        empty = np.empty(0)
        return Samples(empty.astype(np.int64), empty.astype(np.int32), empty, empty, empty, empty, names)
    cols = [np.concatenate([p[c] for p in parts]) for c in range(6)]
    return Samples(*cols, drones=names)  # type: ignore[arg-type]


def close_pairs(s: Samples, h_m: float, v_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (i, j) of samples at one second closer than `h_m` horizontally and `v_m` vertically."""
    order = np.lexsort((s.x, s.t))
    t, x = s.t[order], s.x[order]
    found_i, found_j = [], []
    alive = np.arange(len(order) - 1)
    k = 1
    while len(alive):
        alive = alive[alive + k < len(order)]
        near = (t[alive + k] == t[alive]) & (x[alive + k] - x[alive] < h_m)
        alive = alive[near]  # sorted by x: if i and i+k are apart in x, so are i and i+k+1
        a, b = order[alive], order[alive + k]
        close = (np.hypot(s.x[a] - s.x[b], s.y[a] - s.y[b]) < h_m) & (np.abs(s.z[a] - s.z[b]) < v_m)
        found_i.append(a[close])
        found_j.append(b[close])
        k += 1
    if not found_i:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    return np.concatenate(found_i), np.concatenate(found_j)


@dataclass(frozen=True)
class Encounters:
    """Losses of separation at one threshold: distinct encounters, seconds in loss, the closest pair."""

    h_m: float
    v_m: float
    encounters: int
    seconds: int
    closest_h_m: float  # horizontal distance of the closest pair (the smallest max(dh/h, dv/v)); inf if none
    closest_v_m: float


def encounters(
    s: Samples, h_m: float, v_m: float, pairs: tuple[np.ndarray, np.ndarray] | None = None
) -> Encounters:
    """Distinct encounters (a pair of drones in loss of separation for consecutive seconds counts once)."""
    i, j = close_pairs(s, h_m, v_m) if pairs is None else pairs
    if not len(i):
        return Encounters(h_m, v_m, 0, 0, float("inf"), float("inf"))
    a, b = np.minimum(s.drone[i], s.drone[j]), np.maximum(s.drone[i], s.drone[j])
    order = np.lexsort((s.t[i], b, a))
    a, b, t = a[order], b[order], s.t[i][order]
    new = np.ones(len(t), bool)
    new[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1]) | (t[1:] - t[:-1] > 1)
    dh = np.hypot(s.x[i] - s.x[j], s.y[i] - s.y[j])
    dv = np.abs(s.z[i] - s.z[j])
    worst = int(np.argmin(np.maximum(dh / h_m, dv / v_m)))
    return Encounters(h_m, v_m, int(new.sum()), len(t), float(dh[worst]), float(dv[worst]))


def closest_approach(s: Samples, h_m: float = 50.0, v_m: float = 15.0) -> tuple[float, float]:
    """(horizontal, vertical) distance of the pair nearest to a loss of separation at (h_m, v_m): the
    smallest max(dh / h_m, dv / v_m) among pairs within twice those distances (inf when none are)."""
    i, j = close_pairs(s, 2 * h_m, 2 * v_m)
    if not len(i):
        return float("inf"), float("inf")
    dh = np.hypot(s.x[i] - s.x[j], s.y[i] - s.y[j])
    dv = np.abs(s.z[i] - s.z[j])
    k = int(np.argmin(np.maximum(dh / h_m, dv / v_m)))
    return float(dh[k]), float(dv[k])


def pad_conflicts(s: Samples, pads_xy: Sequence[tuple[float, float]]) -> int:
    """Distinct encounters of two drones inside the same pad's volume at once."""
    total = 0
    for px, py in pads_xy:
        on = np.flatnonzero((np.hypot(s.x - px, s.y - py) < PAD_RADIUS_M) & (s.z < PAD_TOP_M))
        if len(on) < 2:
            continue
        sub = Samples(s.t[on], s.drone[on], s.x[on], s.y[on], s.z[on], s.phase[on], s.drones)
        total += encounters(sub, 2 * PAD_RADIUS_M + 1.0, 2 * PAD_TOP_M).encounters
    return total


def write_csv(s: Samples, frame: LocalFrame, path: Path) -> None:
    """`t_s,drone,lat,lon,alt_m,phase`, one row per airborne drone per second, by time then drone."""
    order = np.lexsort((s.drone, s.t))
    lon, lat = frame.to_wgs84(s.x[order], s.y[order])
    names = np.array(s.drones, dtype=object)[s.drone[order]]
    phases = np.array(PHASES, dtype=object)[s.phase[order]]
    t, z = s.t[order], s.z[order]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write("t_s,drone,lat,lon,alt_m,phase\n")
        step = 200_000
        for a in range(0, len(t), step):
            b = a + step
            rows = zip(t[a:b].tolist(), names[a:b], lat[a:b].tolist(), lon[a:b].tolist(), z[a:b].tolist(),
                       phases[a:b], strict=True)  # fmt: skip
            out.write("".join(f"{r[0]},{r[1]},{r[2]:.7f},{r[3]:.7f},{r[4]:.2f},{r[5]}\n" for r in rows))


@dataclass(frozen=True)
class AirKpis:
    """One decider's shared airspace in a day: separation, pads, waits, and what they cost."""

    decider: str
    flights: int
    drone_hours: float  # airborne
    los: tuple[Encounters, Encounters]  # at 50 m / 15 m and 100 m / 30 m
    closest: tuple[float, float]  # (horizontal, vertical) m of the pair nearest a 50 m / 15 m loss
    pad_conflicts: int
    held: int  # flights that waited at their holding point
    hold_h: float  # total
    hold_p95_s: float  # of the flights that held
    delayed: int  # launches later than asked
    delay_p95_s: float  # of the delayed launches
    delay_max_s: float
    busy: int  # plan() refused with airspace_busy (the package waited for the next tick)
    busy_packages: int
    drone_median_min: float  # order to door, drone deliveries only
    drone_p95_min: float


def air_kpis(decider: str, trips: Sequence[Trip], samples: Samples, pads_xy: Sequence[tuple[float, float]],
             minutes: Sequence[float], air: object | None = None) -> AirKpis:  # fmt: skip
    """Figures from the flown tracks (`samples`) and trips; `air`: the day's `AirspaceDay`, if it had one."""
    flown = [t for t in trips if t.knots is not None]
    holds = np.array([t.hold_s for t in flown if t.hold_s > 0.0])
    stats = getattr(air, "stats", None)
    delays = np.array([d for d in getattr(stats, "delays_s", []) if d > 0.0])
    m = np.asarray(minutes, dtype=float)
    return AirKpis(
        decider=decider,
        flights=len(flown),
        drone_hours=len(samples) / 3600.0,
        los=(encounters(samples, 50.0, 15.0), encounters(samples, 100.0, 30.0)),
        closest=closest_approach(samples),
        pad_conflicts=pad_conflicts(samples, pads_xy),
        held=len(holds),
        hold_h=float(holds.sum()) / 3600.0,
        hold_p95_s=float(np.percentile(holds, 95)) if len(holds) else 0.0,
        delayed=len(delays),
        delay_p95_s=float(np.percentile(delays, 95)) if len(delays) else 0.0,
        delay_max_s=float(delays.max()) if len(delays) else 0.0,
        busy=getattr(stats, "busy", 0),
        busy_packages=len(getattr(stats, "busy_orders", ())),
        drone_median_min=float(np.median(m)) if len(m) else float("nan"),
        drone_p95_min=float(np.percentile(m, 95)) if len(m) else float("nan"),
    )
