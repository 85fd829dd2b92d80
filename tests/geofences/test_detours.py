"""Detours: around a blocking zone, to a destination only a detour reaches, and none when enclosed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import shapely

from geofences import DetourPlanner, LocalFrame, Route, Zone, ZoneIndex, ZoneKind, geodesic_distance_m

from .conftest import lonlat

MakeZone = Callable[..., Zone]


def legs_clear(index: ZoneIndex, route: Route) -> bool:
    return bool(index.paths_clear([route.waypoints])[0])


def straight_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(geodesic_distance_m(a[0], a[1], b[0], b[1]))


def test_clear_line_is_not_detoured(frame: LocalFrame, make_zone: MakeZone) -> None:
    idx = ZoneIndex([make_zone("box", shapely.box(1000, 500, 1200, 700))], frame, "drone")
    a, b = lonlat(frame, 0, 0), lonlat(frame, 3000, 0)
    route = DetourPlanner(idx).route(a, b)
    assert route is not None and not route.detoured
    assert route.waypoints == [a, b] and route.length_m == pytest.approx(3000, rel=1e-3)


def test_detour_around_a_wall(frame: LocalFrame, make_zone: MakeZone) -> None:
    idx = ZoneIndex([make_zone("wall", shapely.box(-100, -1000, 100, 1000))], frame, "drone", margin_m=20)
    planner = DetourPlanner(idx, clearance_m=50)
    a, b = lonlat(frame, -2000, 0), lonlat(frame, 2000, 0)
    route = planner.route(a, b)
    assert route is not None and route.detoured
    assert route.waypoints[0] == a and route.waypoints[-1] == b
    assert legs_clear(idx, route)
    # Around an end of the wall: about 2 * hypot(2000, 1000) plus the clearance corners.
    assert 2 * np.hypot(2000, 1000) < route.length_m < 2 * np.hypot(2000, 1100) + 300
    assert route.length_m > straight_m(a, b)
    # The detour keeps its clearance: every corner is at least margin + ~clearance from the wall.
    wall = frame.geometry_to_local(idx.exclusions[0].geometry)
    xs, ys = frame.to_local(*np.array(route.waypoints[1:-1]).T)
    assert min(wall.distance(shapely.Point(x, y)) for x, y in zip(xs, ys, strict=True)) > 60


def test_destination_reachable_only_by_detour(frame: LocalFrame, make_zone: MakeZone) -> None:
    # A U-shaped no-fly zone opening to the north; the destination sits in the U.
    u = shapely.box(-1000, -1000, 1000, 1000).difference(shapely.box(-700, -700, 700, 1100))
    idx = ZoneIndex([make_zone("u", u)], frame, "drone")
    a, b = lonlat(frame, 0, -3000), lonlat(frame, 0, 0)
    assert not idx.segments_clear(*a, *b)[0]
    route = DetourPlanner(idx, clearance_m=40).route(a, b)
    assert route is not None and route.detoured and legs_clear(idx, route)
    # It has to go round a side and come in from the north.
    assert route.length_m > 1000 + 2 * 2000
    _, ys = frame.to_local(*np.array(route.waypoints).T)
    assert ys.max() > 1000


def test_enclosed_destination_is_unreachable(frame: LocalFrame, make_zone: MakeZone) -> None:
    ring = shapely.box(-1000, -1000, 1000, 1000).difference(shapely.box(-500, -500, 500, 500))
    idx = ZoneIndex([make_zone("ring", ring)], frame, "drone")
    planner = DetourPlanner(idx)
    assert planner.route(lonlat(frame, 0, -3000), lonlat(frame, 0, 0)) is None
    assert planner.route(lonlat(frame, 0, 0), lonlat(frame, 0, -3000)) is None
    # Inside the ring, moving about is fine.
    inner = planner.route(lonlat(frame, -200, 0), lonlat(frame, 200, 0))
    assert inner is not None and not inner.detoured


def test_start_or_end_inside_a_zone(frame: LocalFrame, make_zone: MakeZone) -> None:
    idx = ZoneIndex([make_zone("box", shapely.box(-100, -100, 100, 100))], frame, "drone")
    planner = DetourPlanner(idx)
    assert planner.route(lonlat(frame, 0, 0), lonlat(frame, 3000, 0)) is None
    assert planner.route(lonlat(frame, 3000, 0), lonlat(frame, 0, 0)) is None


def test_operating_area_boundary_is_an_obstacle(frame: LocalFrame, make_zone: MakeZone) -> None:
    # An L-shaped operating area: going from one arm to the other must turn the inside corner.
    ell = shapely.box(0, 0, 4000, 1000).union(shapely.box(0, 0, 1000, 4000))
    idx = ZoneIndex([make_zone("ell", ell, ZoneKind.OPERATING_AREA)], frame, "drone")
    a, b = lonlat(frame, 3500, 500), lonlat(frame, 500, 3500)
    assert not idx.segments_clear(*a, *b)[0]
    route = DetourPlanner(idx, clearance_m=50).route(a, b)
    assert route is not None and route.detoured and legs_clear(idx, route)
    assert route.length_m > straight_m(a, b)
    assert DetourPlanner(idx).route(a, lonlat(frame, 6000, 6000)) is None  # outside the area


def test_routes_batch_matches_single_queries(frame: LocalFrame, make_zone: MakeZone) -> None:
    zones = [
        make_zone("wall", shapely.box(-100, -1000, 100, 1000)),
        make_zone("heli", (3000.0, 0.0), radius_m=500.0),
    ]
    idx = ZoneIndex(zones, frame, "drone")
    planner = DetourPlanner(idx, clearance_m=50)
    starts = [lonlat(frame, -2000, 0), lonlat(frame, -2000, 3000), lonlat(frame, 0, 0)]
    ends = [lonlat(frame, 5000, 0), lonlat(frame, 2000, 3000), lonlat(frame, 1000, 0)]
    batch = planner.routes(starts, ends)
    assert batch == [planner.route(a, b) for a, b in zip(starts, ends, strict=True)]
    assert [r.detoured if r else None for r in batch] == [True, False, None]
    assert planner.routes([], []) == []
    with pytest.raises(ValueError, match="starts"):
        planner.routes(starts, ends[:2])
    with pytest.raises(ValueError, match="clearance_m"):
        DetourPlanner(idx, clearance_m=0)


def test_start_hugging_a_zone_still_detours(frame: LocalFrame, make_zone: MakeZone) -> None:
    idx = ZoneIndex([make_zone("wall", shapely.box(-100, -1000, 100, 1000))], frame, "drone")
    a, b = lonlat(frame, -100.2, 0), lonlat(frame, 2000, 0)  # 20 cm from the wall
    route = DetourPlanner(idx, clearance_m=50).route(a, b)
    assert route is not None and route.detoured and legs_clear(idx, route)


def test_no_zones_means_straight_lines(frame: LocalFrame) -> None:
    planner = DetourPlanner(ZoneIndex([], frame, "robot"))
    assert planner.vertex_count == 0
    route = planner.route(lonlat(frame, 0, 0), lonlat(frame, 500, 500))
    assert route is not None and not route.detoured
