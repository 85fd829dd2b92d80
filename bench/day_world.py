"""The world of the simulated delivery day: the station, its fleet, the orders, the wind and the hold.

Everything here is drawn from one seed, so the three deciders in `bench/day_sim.py` see the very same
day. Times are seconds after the day's start (07:00 in Phoenix, 14:00 UTC); `at(t)` turns them into the
time-zone-aware datetimes the controller speaks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from controller.airspace import AirspaceConfig, MarginsConfig, PadConfig
from controller.assignment import Demand
from controller.examples import EXAMPLE_STATION
from controller.fleet import FleetVehicle
from controller.station import StationConfig, load_station
from geofences.checks import zone_geometry_xy
from vehicles.spec import VehicleKind, default_spec

DAY_START = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 07:00 MST; the stadium TFR is active 08:00-16:00
ORDERS_UNTIL_S = 13 * 3600.0  # orders arrive 07:00-20:00 local
DAY_END_S = 17 * 3600.0  # 24:00 local: whatever is not delivered by then is carried over
MILE_M = 1609.344
AREA_RADIUS_M = 15 * MILE_M
# Morning and evening peaks over a flat base: (share, centre h after 07:00, spread h).
PEAKS = ((0.35, 3.0, 1.2), (0.40, 11.0, 1.0))
# Wind over the day: (from s, speed m/s, from deg). 16:30-17:15 local is the weather hold (gust front):
# no drone launches, and drones already out fly through 11 m/s from the south-east.
WIND = (
    (0.0, 3.0, 90.0),
    (3 * 3600.0, 5.0, 200.0),
    (6 * 3600.0, 8.0, 250.0),
    (9.5 * 3600.0, 11.0, 160.0),
    (10.25 * 3600.0, 6.0, 270.0),
    (12 * 3600.0, 4.0, 250.0),
)
HOLD = (9.5 * 3600.0, 10.25 * 3600.0)
# Van dispatch waves (s after 07:00): 08:00, then every 90 min until 20:00, then 21:00 and 22:00.
WAVES = tuple(3600.0 * h for h in (1.0, 2.5, 4.0, 5.5, 7.0, 8.5, 10.0, 11.5, 13.0, 14.0, 15.0))
VAN_ROUTE_MAX_S = 4 * 3600.0
# The station's pads: `PADS_PER_20_DRONES` for every 20 drones (8 for 20, 40 for 100), on a square grid
# `PAD_SPACING_M` apart around the station's centre. More than two pad radii (64 m) apart, each pad is a
# column of air of its own: drones take off from and land on neighbouring pads at once. (Pads a few metres
# apart would be one column, taken in turn: `python bench/day_capacity.py --layout row8` measures 21 flights
# an hour for four such pads, against 50 for four pads 70 m apart.)
PADS_PER_20_DRONES, PAD_SPACING_M = 8, 80.0
# Climbs and descents over the pads in 5 m slices: a landing drone can then wait 25 m above the one on the
# pad instead of 60 m; more volumes per flight, the columns free sooner.
VERTICAL_SLICE_M = 5.0


def at(t_s: float) -> datetime:
    """Seconds after the day's start as a UTC datetime."""
    return DAY_START + timedelta(seconds=float(t_s))


def wind_at(t_s: float) -> tuple[float, float]:
    """(speed m/s, from deg) in force at `t_s`."""
    current = WIND[0]
    for row in WIND:
        if row[0] <= t_s:
            current = row
    return current[1], current[2]


def in_hold(t_s: float) -> bool:
    """True while no drone may launch."""
    return HOLD[0] <= t_s < HOLD[1]


@dataclass(frozen=True)
class Order:
    """One order of the day: when it arrives, what it weighs, where it goes, when it is due."""

    id: str
    t_s: float
    weight_kg: float
    lat: float
    lon: float
    deadline_s: float | None

    def demand(self) -> Demand:
        """The order as the controller's planner sees it."""
        deadline = at(self.deadline_s) if self.deadline_s is not None else None
        return Demand(self.id, self.weight_kg, self.lat, self.lon, deadline=deadline)


@dataclass(frozen=True)
class Fleet:
    """How many vehicles of each kind the station has."""

    drones: int = 20
    robots: int = 10
    vans: int = 8
    van_capacity_kg: float = 800.0
    van_speed_mps: float = 11.0

    def vehicles(self) -> list[FleetVehicle]:
        """Drones and robots as planner vehicles (default specs, full charge, free now)."""
        drone, robot = default_spec(VehicleKind.DRONE), default_spec(VehicleKind.ROBOT)
        out = [FleetVehicle(f"d{i:02d}", VehicleKind.DRONE, drone) for i in range(1, self.drones + 1)]
        out += [FleetVehicle(f"r{i:02d}", VehicleKind.ROBOT, robot) for i in range(1, self.robots + 1)]
        return out


def fleet_for(n_orders: int) -> Fleet:
    """20 drones, 10 robots, 8 vans up to 2,000 orders; five times that for 10,000 (a bigger station)."""
    k = max(1, round(n_orders / 2000))
    return Fleet(drones=20 * k, robots=10 * k, vans=8 * k)


def pads_xy(config: StationConfig, fleet: Fleet) -> list[tuple[float, float]]:
    """Where the station's pads are (x, y metres): `PADS_PER_20_DRONES` for every 20 drones, on a square grid
    `PAD_SPACING_M` apart centred on the station's centre, row by row."""
    k = max(1, math.ceil(fleet.drones * PADS_PER_20_DRONES / 20))
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    return [
        (PAD_SPACING_M * (i % cols - (cols - 1) / 2), PAD_SPACING_M * (i // cols - (rows - 1) / 2))
        for i in range(k)
    ]


def airspace_config(config: StationConfig, fleet: Fleet) -> AirspaceConfig:
    """The station's `[airspace]` for the day: its pads (`pads_xy`), default layers, margins and waits."""
    xy = np.array(pads_xy(config, fleet))
    lon, lat = config.frame.to_wgs84(xy[:, 0], xy[:, 1])
    pads = [
        PadConfig(name=f"P{k + 1}", lat=float(a), lon=float(b))
        for k, (a, b) in enumerate(zip(lat.tolist(), lon.tolist(), strict=True))
    ]
    return AirspaceConfig(pads=pads, margins=MarginsConfig(vertical_slice_m=VERTICAL_SLICE_M))


def station() -> StationConfig:
    """The Tolleson example station (its zones, turnaround times); fleet and wind are the day's own."""
    return load_station(EXAMPLE_STATION)


def suburbs(config: StationConfig) -> list[tuple[float, float]]:
    """Cluster centres (x, y in the station frame) just behind each exclusion zone, seen from the station."""
    centres = []
    for zone in config.zones:
        if zone.kind != "no_fly":
            continue
        geom = zone_geometry_xy(zone, config.frame)
        c, r = geom.centroid, math.sqrt(geom.area / math.pi)
        dist = math.hypot(c.x, c.y)
        if dist < r:  # the station would be inside it
            continue
        beyond = dist + r + 1500.0
        if beyond <= AREA_RADIUS_M:
            centres.append((c.x * beyond / dist, c.y * beyond / dist))
    return centres


def orders(n: int, seed: int, config: StationConfig) -> list[Order]:
    """`n` orders: daily profile with two peaks; weights mostly light with a heavy tail; destinations
    over 15 miles (denser near the station) with 15 % in suburbs behind zones; 25 % due within 2 h and
    5 % within 1 h."""
    rng = np.random.default_rng(seed)
    base = 1.0 - sum(p[0] for p in PEAKS)
    which = rng.choice(len(PEAKS) + 1, size=n, p=[base, *(p[0] for p in PEAKS)])
    t = rng.uniform(0.0, ORDERS_UNTIL_S, n)
    for k, (_, centre, spread) in enumerate(PEAKS, start=1):
        sel = which == k
        t[sel] = rng.normal(centre * 3600.0, spread * 3600.0, sel.sum())
    t = np.clip(t, 0.0, ORDERS_UNTIL_S - 1.0)
    # Weights: 75 % light (lognormal around 0.9 kg), 25 % from a heavy tail (lognormal around 6 kg).
    heavy = rng.uniform(size=n) < 0.25
    w = np.where(heavy, rng.lognormal(math.log(6.0), 0.8, n), rng.lognormal(math.log(0.9), 0.6, n))
    w = np.clip(w, 0.1, 60.0)
    # Places: 45 % within 4 km (the town), 40 % over the whole area, 15 % in suburbs behind zones.
    angle = rng.uniform(0.0, 2 * math.pi, n)
    r = np.where(
        rng.uniform(size=n) < 0.53,
        4000.0 * np.sqrt(rng.uniform(size=n)),
        AREA_RADIUS_M * np.sqrt(rng.uniform(size=n)),
    )
    x, y = r * np.sin(angle), r * np.cos(angle)
    centres = suburbs(config)
    sub = rng.uniform(size=n) < 0.15
    pick = rng.integers(0, len(centres), n)
    jitter = rng.normal(0.0, 700.0, (n, 2))
    cx = np.array([centres[i][0] for i in pick]) + jitter[:, 0]
    cy = np.array([centres[i][1] for i in pick]) + jitter[:, 1]
    x, y = np.where(sub, cx, x), np.where(sub, cy, y)
    lon, lat = config.frame.to_wgs84(x, y)
    due = rng.uniform(size=n)
    deadline = np.where(due < 0.05, t + 3600.0, np.where(due < 0.30, t + 7200.0, np.nan))
    order = np.argsort(t, kind="stable")
    return [
        Order(
            f"o{j:05d}",
            float(t[i]),
            round(float(w[i]), 3),
            float(lat[i]),
            float(lon[i]),
            None if math.isnan(deadline[i]) else float(deadline[i]),
        )
        for j, i in enumerate(order)
    ]
