"""Regenerate the Tolleson example's zones and packages (deterministic: seed 5050).

Run from the repository root: ``python examples/tolleson/make_example.py``. The zones are illustrative,
APPROXIMATE, NOT FOR NAVIGATION: circles and boxes near real airports and facilities so the example has
the shapes a real station meets (a big class-B-like circle, airfields to fly around, a temporary flight
restriction with a time window, a robot operating area and a freeway robots must not cross).
"""

from __future__ import annotations

import csv
import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).parent
STATION = (33.4400, -112.2560)  # lat, lon: Tolleson, Arizona (near the Prime Air site; approximate)
DAY = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)  # 09:00 local (MST): the example's planning instant
APPROX = "approximate, not for navigation"


def circle(
    zone_id: str, name: str, kind: str, lat: float, lon: float, radius_m: float, **props: object
) -> dict:
    return {
        "type": "Feature",
        "id": zone_id,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"name": name, "kind": kind, "radius_m": radius_m, "note": APPROX, **props},
    }


def box(
    zone_id: str, name: str, kind: str, south: float, west: float, north: float, east: float, **props: object
) -> dict:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {
        "type": "Feature",
        "id": zone_id,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"name": name, "kind": kind, "note": APPROX, **props},
    }


def zones() -> dict:
    features = [
        circle("phx-class-b", "Phoenix Sky Harbor (PHX) inner class B", "no_fly", 33.4343, -112.0116, 9260.0),
        circle("gyr-class-d", "Phoenix Goodyear (GYR) class D", "no_fly", 33.4225, -112.3760, 3000.0),
        circle("luf-class-d", "Luke AFB (LUF) class D", "no_fly", 33.5350, -112.3831, 5500.0),
        circle(
            "stadium-tfr",
            "State Farm Stadium event TFR",
            "no_fly",
            33.5276,
            -112.2626,
            3704.0,
            active_from="2026-12-01T15:00:00+00:00",
            active_until="2026-12-01T23:00:00+00:00",
        ),
        box(
            "lbj-facility",
            "Correctional facility no-drone area",
            "no_fly",
            33.4240,
            -112.1330,
            33.4340,
            -112.1190,
        ),
        box(
            "robot-area",
            "Tolleson sidewalk robot area",
            "operating_area",
            33.4140,
            -112.2880,
            33.4600,
            -112.2240,
            applies_to="robot",
        ),
        box(
            "i10-freeway",
            "Interstate 10 (robots may not cross)",
            "no_go",
            33.4575,
            -112.3000,
            33.4610,
            -112.2000,
            applies_to="robot",
        ),
    ]
    return {"type": "FeatureCollection", "features": features}


def offset(lat: float, lon: float, distance_m: float, bearing_deg: float) -> tuple[float, float]:
    """A point at a distance and bearing (spherical approximation; fine for example data)."""
    r = 6371008.8
    b = math.radians(bearing_deg)
    dlat = distance_m * math.cos(b) / r
    dlon = distance_m * math.sin(b) / (r * math.cos(math.radians(lat)))
    return lat + math.degrees(dlat), lon + math.degrees(dlon)


def packages(n: int = 300, seed: int = 5050) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        u = rng.random()
        if u < 0.55:
            kg = rng.uniform(0.2, 2.2)  # most parcels: drone-light
        elif u < 0.80:
            kg = rng.uniform(2.3, 5.0)  # over the drone limit, fine for a robot
        else:
            kg = min(rng.lognormvariate(2.3, 0.6), 60.0)  # heavy tail: vans
        v = rng.random()
        if v < 0.30:
            dist = rng.uniform(300, 3000)  # robot range
        elif v < 0.82:
            dist = rng.uniform(3000, 16000)  # drone range
        else:
            dist = rng.uniform(16500, 24000)  # beyond the drone radius
        bearing = rng.uniform(0, 360)
        if i % 25 == 3:  # behind Goodyear's airfield: reachable only by a detour
            dist, bearing = rng.uniform(14600, 15900), rng.uniform(264, 274)
        if i % 40 == 7:  # inside Sky Harbor's circle
            dist, bearing = rng.uniform(14000, 16000), rng.uniform(85, 95)
        lat, lon = offset(*STATION, dist, bearing)
        lb = rng.random() < 0.5
        row = {
            "key": f"TOL-{i + 1:04d}",
            "weight": f"{kg / 0.45359237:.2f}" if lb else f"{kg:.2f}",
            "weight_unit": "lb" if lb else "kg",
            "lat": f"{lat:.6f}",
            "lon": f"{lon:.6f}",
            "deadline": "",
            "priority": str(rng.choice([0, 0, 0, 0, 1, 2, 5])),
        }
        if rng.random() < 0.2:
            row["deadline"] = (DAY + timedelta(minutes=rng.choice([30, 45, 60, 90, 120, 240]))).isoformat()
        rows.append(row)
    return rows


def main() -> None:
    (HERE / "zones.geojson").write_text(json.dumps(zones(), indent=1) + "\n", encoding="utf-8")
    rows = packages()
    with (HERE / "packages.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
