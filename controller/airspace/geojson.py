"""Reserved volumes as GeoJSON (RFC 7946) Features, in the spirit of ASTM F3548 operational intents.

Polygons are WGS84 lon/lat with counter-clockwise exterior rings (RFC 7946 section 3.1.6), coordinates
rounded to 1e-7 degrees (about 1 cm). Altitudes stay metres above the station's ground, named so in each
feature, because a reader elsewhere cannot guess the datum.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from controller.airspace.volumes import Volume

__all__ = ["to_geojson"]


class _Frame(Protocol):
    def geometry_to_wgs84(self, geom: BaseGeometry) -> BaseGeometry: ...


def _time(t_s: float, epoch: datetime | None) -> str | float:
    return (epoch + timedelta(seconds=t_s)).isoformat() if epoch is not None else float(t_s)


def to_geojson(volumes: Iterable[Volume], frame: _Frame, *, epoch: datetime | None = None) -> dict[str, Any]:
    """A FeatureCollection with one Polygon feature per volume.

    `frame` is the station's `geofences.LocalFrame`. With `epoch` (the datetime of t = 0 on the planner's
    clock, timezone-aware for real use), `t0`/`t1` are ISO-8601 strings; without, seconds.
    """
    features = []
    for v in volumes:
        # rounding first: GEOS may reorder the ring while snapping it to the grid
        lonlat = shapely.orient_polygons(shapely.set_precision(frame.geometry_to_wgs84(v.shape), 1e-7))
        features.append(
            {
                "type": "Feature",
                "geometry": mapping(lonlat),
                "properties": {
                    "flight_id": v.flight_id,
                    "vehicle_id": v.vehicle_id,
                    "kind": v.kind,
                    "phase": v.phase,
                    "pad": v.pad,
                    "alt_lo_m": round(v.alt_lo_m, 2),
                    "alt_hi_m": round(v.alt_hi_m, 2),
                    "alt_ref": "station_ground",
                    "t0": _time(v.t0_s, epoch),
                    "t1": _time(v.t1_s, epoch),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}
