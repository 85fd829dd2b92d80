"""Fixtures for the geofences tests: a station frame and helpers that build zones in local metres."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import shapely

from geofences import LocalFrame, Zone, ZoneKind

# Tolleson, AZ: a real drone-delivery area, flat, away from the antimeridian and the poles.
STATION_LAT = 33.45
STATION_LON = -112.26


@pytest.fixture(scope="session")
def frame() -> LocalFrame:
    return LocalFrame(STATION_LAT, STATION_LON)


def lonlat(frame: LocalFrame, x: float, y: float) -> tuple[float, float]:
    """A local (x, y) metres point as (lon, lat) floats."""
    lon, lat = frame.to_wgs84(x, y)
    return float(lon), float(lat)


@pytest.fixture
def make_zone(frame: LocalFrame) -> Callable[..., Zone]:
    """Build a Zone from a local-frame shapely polygon (or a local centre + radius_m for a circle)."""

    def make(
        zid: str,
        local: shapely.Geometry | tuple[float, float],
        kind: ZoneKind = ZoneKind.NO_FLY,
        applies_to: frozenset[str] | None = None,
        **kw: Any,
    ) -> Zone:
        if isinstance(local, tuple):
            geometry: shapely.Geometry = shapely.Point(*lonlat(frame, *local))
        else:
            geometry = frame.geometry_to_wgs84(local)
        if applies_to is None:
            applies_to = frozenset({"robot"}) if kind is ZoneKind.NO_GO else frozenset({"drone"})
            if kind is ZoneKind.OPERATING_AREA:
                applies_to = frozenset({"drone", "robot"})
        return Zone(id=zid, name=zid, kind=kind, applies_to=applies_to, geometry=geometry, **kw)

    return make
