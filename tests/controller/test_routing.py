"""A kind's routes over the example station's real zones: reused across passes, never kept forever."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from controller.routing import KindRouter, KindRoutes
from controller.station import StationConfig, load_station

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tolleson" / "station.toml"


@pytest.fixture(scope="module")
def station() -> StationConfig:
    return load_station(EXAMPLE)


def _router(station: StationConfig) -> KindRouter:
    at = datetime(2026, 12, 5, 12, tzinfo=UTC)
    return KindRouter(station.zones, station.frame, "drone", radius_m=16_093.0, at=at, altitude_m=60.0)


def _destinations(station: StationConfig, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    radius, angle = rng.uniform(200, 20_000, n), rng.uniform(0, 2 * np.pi, n)
    lon, lat = station.frame.to_wgs84(radius * np.sin(angle), radius * np.cos(angle))
    return np.asarray(lat), np.asarray(lon)


def _same(a: KindRoutes, b: KindRoutes) -> None:
    np.testing.assert_array_equal(a.distance_m, b.distance_m)
    np.testing.assert_array_equal(a.route_m, b.route_m)
    np.testing.assert_array_equal(a.bearing_deg, b.bearing_deg)
    assert a.routes == b.routes and a.reason == b.reason and a.hint == b.hint


def test_routes_are_the_same_whether_computed_at_once_or_partly_reused(station: StationConfig) -> None:
    lat, lon = _destinations(station, 300, seed=1)
    fresh = _router(station).routes(lat, lon)
    assert any(r is not None for r in fresh.reason) and any(r is None for r in fresh.reason)  # both kinds
    partly = _router(station)
    partly.routes(lat[::3], lon[::3])  # a third already known, as after an earlier pass
    _same(partly.routes(lat, lon), fresh)
    _same(partly.routes(lat, lon), fresh)  # and all of them known


def test_the_cache_holds_only_the_last_passes_destinations(station: StationConfig) -> None:
    router = _router(station)
    first_lat, first_lon = _destinations(station, 50, seed=2)
    later_lat, later_lon = _destinations(station, 20, seed=3)
    router.routes(first_lat, first_lon)
    router.routes(np.concatenate([first_lat[:5], later_lat]), np.concatenate([first_lon[:5], later_lon]))
    assert len(router._cache) == 25
    router.routes(later_lat, later_lon)  # all known: the ones not planned this time are dropped
    assert set(router._cache) == set(zip(later_lat.tolist(), later_lon.tolist(), strict=True))
    router.routes(first_lat, first_lon)  # all new again
    assert len(router._cache) == 50
