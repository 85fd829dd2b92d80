"""How many flights an hour the station's pads take: a saturated stream of delivery flights through
`StationAirspace`, flown by the day's kinematic model, counted in steady state.

    python bench/day_capacity.py [--rate 120] [--hours 3] [--layout row8]

Requests arrive every 3600 / rate seconds to destinations 1-8 km away in random directions (no zones, the
morning's 3 m/s wind), with as many drones as they need; a request the airspace refuses is asked again
every minute, oldest first. Launches per hour are counted after the first hour (the stream's warm-up).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import day_world as w
from bench.day_air import AirspaceDay
from controller.airspace import AirspaceConfig, PadConfig
from controller.station import StationConfig
from vehicles.spec import VehicleKind, default_spec

# Pad layouts, (x, y) metres from the station's centre.
LAYOUTS: dict[str, list[tuple[float, float]]] = {
    "row8": [(-12.0, -20.0), (-4.0, -20.0), (4.0, -20.0), (12.0, -20.0)],  # 4 pads 8 m apart: one column
    "two70": [(-39.0, -20.0), (-31.0, -20.0), (31.0, -20.0), (39.0, -20.0)],  # two pairs 70 m apart
    "four70": [(-105.0, -20.0), (-35.0, -20.0), (35.0, -20.0), (105.0, -20.0)],  # four columns
}


def layout_config(config: StationConfig, name: str, **kw: object) -> AirspaceConfig:
    """An `[airspace]` with the pads of layout `name`."""
    xs, ys = np.array(LAYOUTS[name]).T
    lon, lat = config.frame.to_wgs84(xs, ys)
    pads = [
        PadConfig(name=f"P{k + 1}", lat=float(a), lon=float(b))
        for k, (a, b) in enumerate(zip(lat, lon, strict=True))
    ]
    return AirspaceConfig(pads=pads, **kw)  # type: ignore[arg-type]


def run(
    config: StationConfig, airspace: AirspaceConfig, rate_per_h: float, hours: float, seed: int = 1
) -> dict:
    """Offer `rate_per_h` flights an hour for `hours`; what the pads took."""
    rng = np.random.default_rng(seed)
    day = AirspaceDay(config, airspace)
    spec = default_spec(VehicleKind.DRONE)
    n = int(rate_per_h * hours)
    t_req = np.arange(n) * 3600.0 / rate_per_h + 600.0
    ang, r = rng.uniform(0, 2 * math.pi, n), rng.uniform(1000.0, 8000.0, n)
    x, y = r * np.sin(ang), r * np.cos(ang)
    lon, lat = config.frame.to_wgs84(x, y)
    pending: list[int] = []
    launched: list[float] = []
    wall = time.perf_counter()
    t, k = 600.0, 0
    while t <= 600.0 + hours * 3600.0:
        day.advance(t)
        while k < n and t_req[k] <= t:
            pending.append(k)
            k += 1
        keep = []
        for i in pending:
            order = w.Order(f"c{i:05d}", float(t_req[i]), 1.0, float(lat[i]), float(lon[i]), None)
            route = [(config.lon, config.lat), (float(lon[i]), float(lat[i]))]
            xy = np.array([[0.0, 0.0], [x[i], y[i]]])
            trip = day.launch(order, f"d{i:05d}", spec, route, xy, t, 100.0)
            if trip is None:
                keep.append(i)
            else:
                launched.append(trip.liftoff_s or t)
        pending = keep
        t += 60.0
    day.finish()
    steady = [s for s in launched if 600.0 + 3600.0 <= s < 600.0 + hours * 3600.0]
    trips = [v.trip for v in day._live.values()]
    holds = [tr.hold_s for tr in trips if tr.hold_s > 0]
    return {
        "per_hour": len(steady) / (hours - 1.0),
        "offered": rate_per_h,
        "held": len(holds),
        "hold_p95_s": float(np.percentile(holds, 95)) if holds else 0.0,
        "delay_p95_s": float(np.percentile(day.stats.delays_s, 95)) if day.stats.delays_s else 0.0,
        "busy": day.stats.busy,
        "stats": day.air.stats,
        "wall_s": time.perf_counter() - wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=120.0)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--layout", default="row8", choices=sorted(LAYOUTS))
    args = parser.parse_args()
    config = w.station()
    out = run(config, layout_config(config, args.layout), args.rate, args.hours)
    st = out.pop("stats")
    print(out)
    print(
        f"landings {st.landings} holds {len(st.holds_s)} rebooks {st.rebooks} gave_way {st.gave_way} "
        f"forced {st.forced} unresolved {st.unresolved}"
    )


if __name__ == "__main__":
    main()
