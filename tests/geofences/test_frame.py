"""The station frame: round trips and distances against pyproj.Geod (the WGS84 reference)."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely

from geofences import LocalFrame, bearing_deg, distance_and_bearing, geodesic_distance_m

GEOD = pyproj.Geod(ellps="WGS84")


def test_centre_is_origin(frame: LocalFrame) -> None:
    x, y = frame.to_local(frame.lon, frame.lat)
    assert abs(float(x)) < 1e-6 and abs(float(y)) < 1e-6


def test_round_trip_under_1_cm_at_20_km(frame: LocalFrame) -> None:
    rng = np.random.default_rng(7)
    ang = rng.uniform(0, 2 * np.pi, 2000)
    r = rng.uniform(0, 20_000, 2000)
    x, y = r * np.cos(ang), r * np.sin(ang)
    lon, lat = frame.to_wgs84(x, y)
    x2, y2 = frame.to_local(lon, lat)
    assert np.max(np.hypot(x2 - x, y2 - y)) < 0.01


def test_axes_point_east_and_north(frame: LocalFrame) -> None:
    lon, lat = frame.to_wgs84([1000.0, 0.0], [0.0, 1000.0])
    assert lon[0] > frame.lon and lat[0] == pytest.approx(frame.lat, abs=1e-4)
    assert lat[1] > frame.lat and lon[1] == pytest.approx(frame.lon, abs=1e-9)


def test_distance_from_centre_is_exact_and_others_within_half_percent(frame: LocalFrame) -> None:
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-21_000, 21_000, (2, 3000))
    keep = np.hypot(x, y) <= 30_000
    lon, lat = frame.to_wgs84(x[keep], y[keep])
    _, _, ref = GEOD.inv(np.full(len(lon), frame.lon), np.full(len(lat), frame.lat), lon, lat)
    assert np.allclose(np.hypot(x[keep], y[keep]), ref, rtol=1e-9, atol=1e-6)  # aeqd: exact from the centre
    # Between two arbitrary points the planar distance is within 0.5 % of the geodesic.
    i, j = rng.integers(0, len(lon), (2, 3000))
    planar = np.hypot(x[keep][i] - x[keep][j], y[keep][i] - y[keep][j])
    _, _, geo = GEOD.inv(lon[i], lat[i], lon[j], lat[j])
    far = geo > 100
    assert np.max(np.abs(planar[far] - geo[far]) / geo[far]) < 0.005  # measured: ~4e-6


def test_geodesic_distance_matches_geod_vectorized() -> None:
    lon1, lat1 = np.array([-112.26, 0.0, 179.9]), np.array([33.45, 0.0, -45.0])
    lon2, lat2 = np.array([-112.0, 1.0, -179.9]), np.array([33.6, 0.0, -45.0])
    _, _, ref = GEOD.inv(lon1, lat1, lon2, lat2)
    got = geodesic_distance_m(lon1, lat1, lon2, lat2)
    assert got.shape == (3,) and np.allclose(got, ref)
    assert got[1] == pytest.approx(111_319.49, abs=0.1)  # one degree of longitude on the equator
    assert float(geodesic_distance_m(-112.26, 33.45, -112.26, 33.45)) == 0.0


def test_bearing_is_compass_degrees() -> None:
    b = bearing_deg(0.0, 0.0, [0.0, 1.0, 0.0, -1.0], [1.0, 0.0, -1.0, 0.0])
    assert np.allclose(b, [0.0, 90.0, 180.0, 270.0], atol=1e-9)
    assert ((b >= 0) & (b < 360)).all()


def test_distance_and_bearing_in_one_call_match_each_alone() -> None:
    lon, lat = [-112.1, -112.4, -112.26], [33.5, 33.3, 33.45]
    distance, bearing = distance_and_bearing(-112.26, 33.45, lon, lat)
    assert np.array_equal(distance, geodesic_distance_m(-112.26, 33.45, lon, lat))
    assert np.array_equal(bearing, bearing_deg(-112.26, 33.45, lon, lat))
    assert distance[2] == 0.0 and 0.0 < bearing[0] < 90.0 and 180.0 < bearing[1] < 270.0


def test_geometry_round_trip(frame: LocalFrame) -> None:
    local = shapely.box(-5000, 2000, -4000, 2600)
    wgs = frame.geometry_to_wgs84(local)
    assert -113 < wgs.centroid.x < -112 and 33 < wgs.centroid.y < 34
    back = frame.geometry_to_local(wgs)
    assert back.equals_exact(local, 1e-6)


@pytest.mark.parametrize(("lat", "lon"), [(91.0, 0.0), (0.0, 181.0), (float("nan"), 0.0)])
def test_bad_centre_is_refused(lat: float, lon: float) -> None:
    with pytest.raises(ValueError, match="frame centre"):
        LocalFrame(lat, lon)
