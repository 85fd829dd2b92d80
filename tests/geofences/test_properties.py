"""Property tests: what the checks call clear really is clear, and detours are valid and never short."""

from __future__ import annotations

import itertools
import math

import numpy as np
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from geofences import DetourPlanner, LocalFrame, Zone, ZoneIndex, ZoneKind, geodesic_distance_m

from .conftest import STATION_LAT, STATION_LON

FRAME = LocalFrame(STATION_LAT, STATION_LON)
# Zone edges are straight in lon/lat (RFC 7946), which bows them by up to ~10 cm in the local frame over a few
# km; the index follows them to within a few mm (it densifies at about 550 m), so 1 cm is the tolerance.
NOISE_M = 0.01

coord = st.floats(-5000, 5000, allow_nan=False)
point = st.tuples(coord, coord)


@st.composite
def zone_shapes(draw: st.DrawFn) -> tuple[str, shapely.Geometry, float | None]:
    """A local-frame exclusion: a box, a rotated rectangle, or a circle (centre + radius)."""
    cx, cy = draw(point)
    kind = draw(st.sampled_from(["box", "rotated", "circle"]))
    if kind == "circle":
        return kind, shapely.Point(cx, cy), draw(st.floats(20, 1500))
    w, h = draw(st.floats(20, 3000)), draw(st.floats(20, 3000))
    rect = shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    if kind == "rotated":
        rect = shapely.affinity.rotate(rect, draw(st.floats(0, 90)))
    return kind, rect, None


def build(shapes: list[tuple[str, shapely.Geometry, float | None]]) -> list[Zone]:
    """Zones whose corners are the local shapes' corners; `truth` gives their edges as RFC 7946 means them."""
    zones = []
    for i, (_, geom, radius) in enumerate(shapes):
        wgs = FRAME.geometry_to_wgs84(geom)
        zones.append(Zone(f"z{i}", f"z{i}", ZoneKind.NO_FLY, frozenset({"drone"}), wgs, radius_m=radius))
    return zones


def truth(shape: tuple[str, shapely.Geometry, float | None]) -> shapely.Geometry:
    """The zone in the local frame, its lon/lat-straight edges traced every ~10 m, apart from the index."""
    _, geom, radius = shape
    if radius is not None:
        return geom
    return FRAME.geometry_to_local(shapely.segmentize(FRAME.geometry_to_wgs84(geom), 1e-4))


def enters(line: shapely.LineString, shape: tuple[str, shapely.Geometry, float | None]) -> bool:
    """Whether `line` enters the true (unbuffered, uncircled) zone by more than float noise."""
    _, geom, radius = shape
    if radius is not None:
        return line.distance(geom) < radius - NOISE_M
    return line.intersects(truth(shape).buffer(-NOISE_M))


CLEARANCE_M = 30.0
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    shapes=st.lists(zone_shapes(), min_size=1, max_size=6),
    segments=st.lists(st.tuples(point, point), min_size=1, max_size=40),
    margin=st.sampled_from([0.0, 25.0]),
)
def test_clear_segments_never_enter_a_zone(
    shapes: list[tuple[str, shapely.Geometry, float | None]],
    segments: list[tuple[tuple[float, float], tuple[float, float]]],
    margin: float,
) -> None:
    idx = ZoneIndex(build(shapes), FRAME, "drone", margin_m=margin)
    a = np.array([s[0] for s in segments])
    b = np.array([s[1] for s in segments])
    clear = idx.segments_clear_xy(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
    for (p, q), ok in zip(segments, clear, strict=True):
        # A line of (nearly) zero length is a point to GEOS too: its distances come back NaN otherwise
        # (hypothesis found ((0, 0), (0, 1.7e-218)) inside a circle, rightly blocked).
        line = shapely.LineString([p, q]) if math.dist(p, q) > 1e-9 else shapely.Point(p)
        if ok:
            assert not any(enters(line, s) for s in shapes), (p, q)
        elif margin == 0.0:
            # Blocked without a margin: it does come within a polygon-approximation error of a zone.
            near = [line.distance(truth(sh)) < (sh[2] or 0.0) * 1.001 + NOISE_M for sh in shapes]
            assert any(near), (p, q)


@SETTINGS
@given(shapes=st.lists(zone_shapes(), min_size=1, max_size=4), start=point, end=point)
def test_detours_are_clear_and_never_shorter(
    shapes: list[tuple[str, shapely.Geometry, float | None]],
    start: tuple[float, float],
    end: tuple[float, float],
) -> None:
    idx = ZoneIndex(build(shapes), FRAME, "drone")
    assume(idx.points_allowed_xy([start[0], end[0]], [start[1], end[1]]).all())
    a = tuple(float(v) for v in FRAME.to_wgs84(*start))
    b = tuple(float(v) for v in FRAME.to_wgs84(*end))
    route = DetourPlanner(idx, clearance_m=CLEARANCE_M).route(a, b)
    if route is None:
        # Allowed to give up only when no corridor twice the clearance wide joins start and end.
        wide = shapely.union_all([truth(sh).buffer(sh[2] or 0.0).buffer(2 * CLEARANCE_M) for sh in shapes])
        room = shapely.box(-1e5, -1e5, 1e5, 1e5).difference(wide)
        p, q = shapely.Point(start), shapely.Point(end)
        assert not any(part.contains(p) and part.contains(q) for part in shapely.get_parts(room))
        return
    straight = float(geodesic_distance_m(a[0], a[1], b[0], b[1]))
    assert route.length_m >= straight - 1e-6
    assert route.waypoints[0] == a and route.waypoints[-1] == b
    assert idx.paths_clear([route.waypoints])[0]
    xs, ys = FRAME.to_local(*np.array(route.waypoints).T)
    pts = list(zip(xs.tolist(), ys.tolist(), strict=True))
    for p, q in itertools.pairwise(pts):
        line = shapely.LineString([p, q]) if p != q else shapely.Point(p)
        assert not any(enters(line, s) for s in shapes), (p, q)
