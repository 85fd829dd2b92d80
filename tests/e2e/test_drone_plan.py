"""The delivery plan, fence and mission built from it: no sockets, so bad input fails fast and clearly.

(Controller-side unit tests for controller/missions/drone.py; kept beside the drone flights they feed.)
"""

from __future__ import annotations

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from controller.errors import InputError
from controller.missions.drone import DeliveryPlan, FencePlan, build_mission, fence_from_zones, safety_params
from geofences.zones import load_zones
from vehicles.mavlink import FenceError

STATION = (33.4484, -112.2590)


def _plan(**kw) -> DeliveryPlan:
    args = dict(
        package_id="p", vehicle_id="d", station=STATION, waypoints_out=[(33.45, -112.26)],
        destination=(33.46, -112.259), waypoints_back=[(33.451, -112.261)], payload_kg=1.0,
    )  # fmt: skip
    return DeliveryPlan(**(args | kw))


def _zones():
    square = [[-112.26, 33.45], [-112.25, 33.45], [-112.25, 33.46], [-112.26, 33.46], [-112.26, 33.45]]
    hole = [[-112.258, 33.452], [-112.256, 33.452], [-112.256, 33.454], [-112.258, 33.452]]
    return load_zones({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [square, hole]},
         "properties": {"id": "area", "kind": "operating_area", "ceiling_m": 110}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-112.255, 33.455]},
         "properties": {"id": "stadium", "kind": "no_fly", "radius_m": 80}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-112.252, 33.455]},
         "properties": {"id": "high", "kind": "no_fly", "radius_m": 50, "floor_m": 150}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-112.253, 33.451]},
         "properties": {"id": "park", "kind": "no_go", "radius_m": 50}},
    ]})  # fmt: skip


def test_fence_from_zones_maps_kinds_holes_and_ceilings():
    fence = fence_from_zones(_zones(), ceiling_m=120.0)
    assert (
        len(fence.inclusion_polygons) == 1 and len(fence.inclusion_polygons[0]) == 4
    )  # closing point dropped
    assert fence.inclusion_polygons[0][0] == (33.45, -112.26)  # (lat, lon), not GeoJSON's (lon, lat)
    assert len(fence.exclusion_polygons) == 1  # the operating area's hole
    assert fence.exclusion_circles == [
        ((33.455, -112.255), 80.0)
    ]  # no_go (robots) and the high zone left out
    assert fence.ceiling_m == 110  # the operating area's ceiling is lower than the requested one
    assert fence.fence_type == 4 | 1


def test_fence_items_carry_vertex_counts_and_radii():
    fence = FencePlan(
        exclusion_polygons=[[(33.0, -112.0), (33.001, -112.0), (33.001, -112.001)]],
        inclusion_circles=[((33.0, -112.0), 2000.0)], return_point=STATION,
    )  # fmt: skip
    items = fence.to_items()
    assert [i.command for i in items] == [5002, 5002, 5002, 5003, 5000]
    assert {i.param1 for i in items[:3]} == {3} and items[3].param1 == 2000.0
    assert fence.fence_type == 4  # no ceiling: no altitude fence


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"exclusion_polygons": [[(33.0, -112.0), (33.1, -112.0)]]}, "exclusion_polygons"),
        ({"inclusion_circles": [((33.0, -112.0), 0.0)]}, "inclusion_circles"),
        ({"ceiling_m": -5.0}, "ceiling_m"),
    ],
)
def test_bad_fences_name_the_field(kw, field):
    with pytest.raises(FenceError) as err:
        FencePlan(**kw)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"destination": (95.0, 0.0)}, "destination"),
        ({"waypoints_out": [(33.0,)]}, "waypoints_out"),
        ({"reserve_fraction": 1.5}, "reserve_fraction"),
        ({"delivery_alt_m": 80.0}, "delivery_alt_m"),
        ({"payload_kg": -1.0}, "payload_kg"),
        ({"fence": FencePlan(ceiling_m=50.0)}, "cruise_alt_m"),
        ({"cruise_alt_m": 40.0, "cruise_alt_back_m": 4.0}, "cruise_alt_back_m"),
        (
            {"cruise_alt_m": 40.0, "cruise_alt_back_m": 65.0, "fence": FencePlan(ceiling_m=60.0)},
            "cruise_alt_back_m",
        ),
        ({"hold_point": (33.449, -112.259)}, "landing_pads"),
        ({"hold_point": (33.449, 200.0), "landing_pads": [("P1", *STATION)]}, "hold_point"),
    ],
)
def test_bad_plans_name_the_field(kw, field):
    with pytest.raises(InputError) as err:
        _plan(**kw)
    assert err.value.field == field


def test_gripper_mission_descends_releases_and_climbs_at_the_destination():
    built = build_mission(_plan())
    cmds = [i.command for i in built.items]
    wp, grip = mavlink.MAV_CMD_NAV_WAYPOINT, mavlink.MAV_CMD_DO_GRIPPER
    assert cmds == [
        wp,
        mavlink.MAV_CMD_NAV_TAKEOFF,
        wp,
        wp,
        wp,
        grip,
        wp,
        wp,
        mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH,
    ]
    assert built.items[built.release_seq].command == grip
    assert built.items[built.release_seq].param2 == mavlink.GRIPPER_ACTION_RELEASE
    descent = built.items[built.release_point_seq]
    assert (descent.lat, descent.lon, descent.alt) == (33.46, -112.259, 5.0)
    assert built.items[2].alt == 60.0  # detour vertices at cruise altitude


def test_airspace_mission_flies_its_layers_and_waits_at_its_holding_point_for_a_pad():
    """Out on one layer, back on another, then NAV_LOITER_UNLIM at the holding point and a NAV_LAND per pad
    (the booked one first): the controller jumps to the pad it clears the drone to."""
    pads = [("P2", 33.44841, -112.25891), ("P1", *STATION)]
    built = build_mission(
        _plan(cruise_alt_m=40.0, cruise_alt_back_m=65.0, hold_point=(33.4497, -112.2590), landing_pads=pads)
    )
    items = built.items
    assert items[1].command == mavlink.MAV_CMD_NAV_TAKEOFF and items[1].alt == 40.0
    assert items[2].alt == 40.0  # the way out on its layer
    after_drop = items[built.release_seq + 1 :]
    assert [i.alt for i in after_drop[:2]] == [65.0, 65.0]  # climb back to the inbound layer, then home on it
    hold = items[built.hold_seq]
    assert (hold.command, hold.lat, hold.lon, hold.alt) == (
        mavlink.MAV_CMD_NAV_LOITER_UNLIM,
        33.4497,
        -112.259,
        65.0,
    )
    assert built.land_seq == {"P2": built.hold_seq + 1, "P1": built.hold_seq + 2}
    for name, lat, lon in pads:
        land = items[built.land_seq[name]]
        assert (land.command, land.lat, land.lon) == (mavlink.MAV_CMD_NAV_LAND, lat, lon)
    assert mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH not in [i.command for i in items]


def test_payload_place_mission_releases_with_nav_payload_place():
    built = build_mission(_plan(release="payload_place"))
    assert built.items[built.release_seq].command == mavlink.MAV_CMD_NAV_PAYLOAD_PLACE


def test_battery_thresholds_come_from_the_reserve():
    params = safety_params(_plan(reserve_fraction=0.3), capacity_mah=10000)
    assert params["BATT_LOW_MAH"] == 3000 and params["BATT_CRT_MAH"] == 1500
    assert (params["BATT_FS_LOW_ACT"], params["BATT_FS_CRT_ACT"], params["FS_GCS_ENABLE"]) == (2, 1, 1)
    assert "FENCE_TYPE" not in params  # no fence in the plan
