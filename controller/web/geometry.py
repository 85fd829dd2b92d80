"""The station's map in its local metric frame (x east, y north, metres from the station).

The page draws in metres so that it needs no map library and no tiles (stations run on closed networks),
and so that circles such as the 10-mile drone radius are true circles. Projection happens here, once, with
the same `LocalFrame` the planner uses, so what the operator sees is what the planner checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geofences import LocalFrame, Zone


def zone_shapes(zones: Sequence[Zone], frame: LocalFrame) -> list[dict[str, Any]]:
    """One drawable shape per zone: a circle (`cx`, `cy`, `r`) or polygons as lists of rings."""
    out = []
    for z in zones:
        shape: dict[str, Any] = {
            "id": z.id, "name": z.name, "kind": z.kind.value, "applies_to": sorted(z.applies_to),
            "floor_m": z.floor_m, "ceiling_m": z.ceiling_m,
        }  # fmt: skip
        local = frame.geometry_to_local(z.geometry)
        if z.radius_m is not None:
            shape.update(cx=round(local.x, 1), cy=round(local.y, 1), r=float(z.radius_m))
        else:
            shape["polygons"] = [_rings(p) for p in _polygons(local)]
        out.append(shape)
    return out


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    return []


def _rings(polygon: Polygon) -> list[list[list[float]]]:
    rings = [polygon.exterior, *polygon.interiors]
    return [[[round(x, 1), round(y, 1)] for x, y in ring.coords] for ring in rings]


def project(frame: LocalFrame, points: Sequence[Sequence[float]]) -> list[list[float]]:
    """(lat, lon) points to [x, y] metres."""
    if not points:
        return []
    lats = [float(p[0]) for p in points]
    lons = [float(p[1]) for p in points]
    xs, ys = frame.to_local(lons, lats)
    return [[round(float(x), 1), round(float(y), 1)] for x, y in zip(xs, ys, strict=True)]


def georef_grid(frame: LocalFrame, half_m: float, step_m: float = 1000.0) -> dict[str, Any]:
    """Latitudes and longitudes of a square grid of local points, for a page that lays lon/lat tiles under
    its metric map (`[console] basemap_url`).

    The page interpolates between the grid's nodes (bilinear) to find the lon/lat of its view's centre and
    the metres per degree there: the azimuthal equidistant frame bends away from lon/lat by about d²/R over
    a distance d, and a 1 km grid keeps the interpolation within centimetres, where a JavaScript copy of
    the projection (PROJ's ellipsoidal formulas) would have been a second implementation to keep in step.
    `lat[j][i]`, `lon[j][i]` belong to x = x0 + i * step, y = y0 + j * step (metres east, north).
    """
    n = int(np.ceil(half_m / step_m))
    axis = np.arange(-n, n + 1, dtype=float) * step_m
    xs, ys = np.meshgrid(axis, axis)
    lon, lat = frame.to_wgs84(xs, ys)
    return {
        "x0": float(axis[0]),
        "y0": float(axis[0]),
        "step": float(step_m),
        "n": int(axis.size),
        "lat": np.round(lat, 8).tolist(),
        "lon": np.round(lon, 8).tolist(),
    }
