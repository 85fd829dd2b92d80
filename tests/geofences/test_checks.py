"""Point, segment and path checks: circles, altitude bands, time windows, margins, operating areas."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest
import shapely

from geofences import LocalFrame, Zone, ZoneIndex, ZoneKind

from .conftest import lonlat

MakeZone = Callable[..., Zone]
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def seg_clear(index: ZoneIndex, a: tuple[float, float], b: tuple[float, float]) -> bool:
    return bool(index.segments_clear_xy(a[0], a[1], b[0], b[1])[0])


def test_polygon_blocks_points_and_segments(frame: LocalFrame, make_zone: MakeZone) -> None:
    idx = ZoneIndex([make_zone("box", shapely.box(1000, -100, 1200, 100))], frame, "drone")
    assert idx.points_allowed_xy([0, 1100, 1100, 1000], [0, 0, 200, 0]).tolist() == [True, False, True, True]
    assert not seg_clear(idx, (0, 0), (2000, 0))  # straight through
    assert not seg_clear(idx, (0, 0), (1100, 0))  # ends inside
    assert seg_clear(idx, (0, 0), (900, 0))  # stops short
    assert seg_clear(idx, (0, 100), (2000, 100))  # runs along the edge: touching is not entering
    assert seg_clear(idx, (0, 101), (2000, 101))
    assert not seg_clear(idx, (0, 99), (2000, 99))
    lon0, lat0 = lonlat(frame, 0, 0)
    lon1, lat1 = lonlat(frame, 2000, 0)
    assert idx.segments_clear(lon0, lat0, lon1, lat1).tolist() == [False]
    assert idx.points_allowed(*lonlat(frame, 1100, 0)).tolist() == [False]


def test_circle_zone(frame: LocalFrame, make_zone: MakeZone) -> None:
    idx = ZoneIndex([make_zone("heli", (0.0, 3000.0), radius_m=300.0)], frame, "drone")
    assert not seg_clear(idx, (-1000, 2701), (1000, 2701))  # 299 m from the centre
    assert seg_clear(idx, (-1000, 2699), (1000, 2699))  # 301 m
    assert not idx.points_allowed_xy(0, 3299)[0] and idx.points_allowed_xy(0, 3301)[0]
    # Diagonal chords: the polygon around the circle contains the whole true circle.
    ang = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    x, y = 299.9 * np.cos(ang), 3000 + 299.9 * np.sin(ang)
    assert not idx.points_allowed_xy(x, y).any()


def test_vehicle_kind_filters_zones(frame: LocalFrame, make_zone: MakeZone) -> None:
    zones = [
        make_zone("nofly", shapely.box(1000, -100, 1200, 100), ZoneKind.NO_FLY),
        make_zone("nogo", shapely.box(2000, -100, 2200, 100), ZoneKind.NO_GO),
    ]
    drone = ZoneIndex(zones, frame, "drone")
    robot = ZoneIndex(zones, frame, "robot")
    assert [z.id for z in drone.exclusions] == ["nofly"] and [z.id for z in robot.exclusions] == ["nogo"]
    assert drone.points_allowed_xy([1100, 2100], [0, 0]).tolist() == [False, True]
    assert robot.points_allowed_xy([1100, 2100], [0, 0]).tolist() == [True, False]
    with pytest.raises(ValueError, match="vehicle_kind"):
        ZoneIndex(zones, frame, "van")


def test_altitude_band(frame: LocalFrame, make_zone: MakeZone) -> None:
    zone = make_zone("low", shapely.box(1000, -100, 1200, 100), floor_m=60.0)
    assert seg_clear(ZoneIndex([zone], frame, "drone", altitude_m=40.0), (0, 0), (2000, 0))
    assert not seg_clear(ZoneIndex([zone], frame, "drone", altitude_m=80.0), (0, 0), (2000, 0))
    assert not seg_clear(ZoneIndex([zone], frame, "drone"), (0, 0), (2000, 0))  # altitude unknown


def test_time_window(frame: LocalFrame, make_zone: MakeZone) -> None:
    zone = make_zone(
        "event",
        shapely.box(1000, -100, 1200, 100),
        active_from=datetime(2026, 11, 21, 18, 0, tzinfo=UTC),
        active_until=datetime(2026, 11, 21, 22, 0, tzinfo=UTC),
    )
    assert seg_clear(ZoneIndex([zone], frame, "drone", at=NOON), (0, 0), (2000, 0))
    evening = datetime(2026, 11, 21, 19, 0, tzinfo=UTC)
    assert not seg_clear(ZoneIndex([zone], frame, "drone", at=evening), (0, 0), (2000, 0))
    assert ZoneIndex([zone], frame, "drone", at=NOON).exclusions == []


def test_margin_grows_exclusions(frame: LocalFrame, make_zone: MakeZone) -> None:
    zone = make_zone("box", shapely.box(1000, -100, 1200, 100))
    assert seg_clear(ZoneIndex([zone], frame, "drone"), (0, 130), (2000, 130))
    tight = ZoneIndex([zone], frame, "drone", margin_m=50.0)
    assert not seg_clear(tight, (0, 130), (2000, 130))
    assert seg_clear(tight, (0, 151), (2000, 151))
    assert tight.zone_containing(*lonlat(frame, 1100, 140)) == zone
    assert tight.zone_containing(*lonlat(frame, 1100, 160)) is None
    with pytest.raises(ValueError, match="margin_m"):
        ZoneIndex([zone], frame, "drone", margin_m=-1.0)


def test_operating_area(frame: LocalFrame, make_zone: MakeZone) -> None:
    area = make_zone("area", shapely.box(-5000, -5000, 5000, 5000), ZoneKind.OPERATING_AREA, ceiling_m=120.0)
    idx = ZoneIndex([area], frame, "drone", margin_m=100.0)
    assert [z.id for z in idx.operating_areas] == ["area"]
    assert idx.points_allowed_xy([0, 4950, 6000], [0, 0, 0]).tolist() == [True, False, False]
    assert seg_clear(idx, (0, 0), (4800, 4800))
    assert not seg_clear(idx, (0, 0), (6000, 0))
    # Above the only area's ceiling nothing is allowed; robots are bound by it too (default applies_to).
    assert not ZoneIndex([area], frame, "drone", altitude_m=150.0).points_allowed_xy(0, 0)[0]
    assert not ZoneIndex([area], frame, "robot").points_allowed_xy(6000, 0)[0]
    # No operating area at all: everywhere outside exclusions is allowed.
    assert ZoneIndex([], frame, "drone").points_allowed_xy(60_000, 0)[0]


def test_operating_area_union_and_holes(frame: LocalFrame, make_zone: MakeZone) -> None:
    ring = shapely.box(-3000, -3000, 3000, 3000).difference(shapely.box(-500, 1000, 500, 2000))
    zones = [
        make_zone("a", ring, ZoneKind.OPERATING_AREA),
        make_zone("b", shapely.box(3000, -500, 6000, 500), ZoneKind.OPERATING_AREA),
    ]
    idx = ZoneIndex(zones, frame, "drone")
    assert seg_clear(idx, (0, 0), (5500, 0))  # crosses from one area into the other
    assert not seg_clear(idx, (0, 0), (0, 2500))  # through the hole
    assert not seg_clear(idx, (0, 0), (5500, 1000))  # leaves both


def test_blocking_zone_ids(frame: LocalFrame, make_zone: MakeZone) -> None:
    zones = [
        make_zone("near", shapely.box(1000, -100, 1200, 100)),
        make_zone("far", shapely.box(3000, -1000, 3200, 1000)),
        make_zone("area", shapely.box(-5000, -5000, 5000, 5000), ZoneKind.OPERATING_AREA),
    ]
    idx = ZoneIndex(zones, frame, "drone")
    starts = [lonlat(frame, 0, 0), lonlat(frame, 4000, 0), lonlat(frame, 0, 500), lonlat(frame, 0, 500)]
    ends = [lonlat(frame, 4000, 0), lonlat(frame, 0, 0), lonlat(frame, 0, 2000), lonlat(frame, 0, 9000)]
    ids = idx.blocking_zone_ids(*np.array(starts).T, *np.array(ends).T)
    assert ids == ["near", "far", None, "outside:area"]
    # A leg that leaves the area after crossing a zone reports the zone (it comes first).
    ids = idx.blocking_zone_ids(*lonlat(frame, 0, 0), *lonlat(frame, 9000, 0))
    assert ids == ["near"]
    # A zero-length leg inside a zone names that zone.
    assert idx.blocking_zone_ids(*lonlat(frame, 1100, 0), *lonlat(frame, 1100, 0)) == ["near"]


def test_paths_clear(frame: LocalFrame, make_zone: MakeZone) -> None:
    idx = ZoneIndex([make_zone("box", shapely.box(1000, -100, 1200, 100))], frame, "drone")
    around = [lonlat(frame, *p) for p in [(0, 0), (1100, 300), (2000, 0)]]
    through = [lonlat(frame, *p) for p in [(0, 0), (500, 0), (2000, 0)]]
    single_in, single_out = [lonlat(frame, 1100, 0)], [lonlat(frame, 0, 0)]
    got = idx.paths_clear([around, through, single_in, single_out, around])
    assert got.tolist() == [True, False, False, True, True]
    assert idx.paths_clear([]).tolist() == []
    with pytest.raises(ValueError, match="no points"):
        idx.paths_clear([around, []])


def test_zero_length_segment_is_a_point(frame: LocalFrame, make_zone: MakeZone) -> None:
    idx = ZoneIndex([make_zone("box", shapely.box(1000, -100, 1200, 100))], frame, "drone")
    got = idx.segments_clear_xy([1100, 0], [0, 0], [1100, 0], [0, 0])
    assert got.tolist() == [False, True]


def test_many_segments_match_shapely(frame: LocalFrame, make_zone: MakeZone) -> None:
    """The numpy fast path agrees with plain shapely on thousands of random segments."""
    rng = np.random.default_rng(11)
    zones = []
    for i in range(60):
        x, y = rng.uniform(-8000, 8000, 2)
        if i % 2:
            zones.append(make_zone(f"c{i}", (float(x), float(y)), radius_m=float(rng.uniform(50, 400))))
        else:
            w, h = rng.uniform(50, 800, 2)
            zones.append(make_zone(f"p{i}", shapely.box(x, y, x + w, y + h).buffer(30, quad_segs=1)))
    ang = np.linspace(0, 2 * np.pi, 300, endpoint=False)
    radius = 8500 + 800 * np.sin(5 * ang)
    wavy = shapely.Polygon(np.column_stack([radius * np.cos(ang), radius * np.sin(ang)]))
    zones.append(make_zone("area", wavy, ZoneKind.OPERATING_AREA))
    idx = ZoneIndex(zones, frame, "drone", margin_m=10.0)
    n = 5000
    x0, y0, x1, y1 = rng.uniform(-9000, 9000, (4, n))
    x1[:1000], y1[:1000] = x0[:1000], y0[:1000]  # some points
    x0[1000:2000] = y0[1000:2000] = 0.0  # some legs from the station
    got = idx.segments_clear_xy(x0, y0, x1, y1)
    lines = shapely.linestrings(np.stack([np.column_stack([x0, y0]), np.column_stack([x1, y1])], axis=1))
    lines[:1000] = shapely.points(x0[:1000], y0[:1000])
    polys, area = idx.exclusion_geometries_xy, idx.allowed_area_xy
    expected = np.array(
        [
            not any(line.intersects(p) and not line.touches(p) for p in polys) and area.covers(line)
            for line in lines
        ]
    )
    assert 0.2 < got.mean() < 0.9  # both outcomes are well represented
    assert (got == expected).all()
