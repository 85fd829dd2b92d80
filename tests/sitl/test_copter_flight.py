"""A copter flies a delivery mission in AUTO, seen through a raw pymavlink ground station."""

from __future__ import annotations

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import SimCopterFleet, geo

from .conftest import CopterClient, item, upload

M = mavlink
HOME = (33.4484, -112.2590)


def delivery_mission(dest: tuple[float, float]) -> list[mavlink.MAVLink_mission_item_int_message]:
    return [
        item(M.MAV_CMD_NAV_WAYPOINT, *HOME, 0),  # home, ignored on upload
        item(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 30),
        item(M.MAV_CMD_NAV_WAYPOINT, *dest, 40),
        item(M.MAV_CMD_DO_GRIPPER, 0, 0, 0, 1, M.GRIPPER_ACTION_RELEASE),
        item(M.MAV_CMD_NAV_RETURN_TO_LAUNCH),
    ]


async def test_auto_mission_flies_releases_and_returns(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    copter = copter_fleet.vehicles[0]
    copter.set_payload(2.0)
    dest = geo.offset(*HOME, 600.0, 300.0)
    assert await upload(copter_client, delivery_mission(dest)) == M.MAV_MISSION_ACCEPTED
    copter_fleet.set_speedup(50)
    copter_client.mav.request_data_stream_send(1, 1, M.MAV_DATA_STREAM_ALL, 4, 1)
    assert await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, 4) == M.MAV_RESULT_ACCEPTED  # GUIDED
    assert await copter_client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    assert await copter_client.command(M.MAV_CMD_MISSION_START) == M.MAV_RESULT_ACCEPTED
    since = copter_client.mark()
    reached = await copter_client.expect("MISSION_ITEM_REACHED", lambda m: m.seq == 2, timeout=30)
    assert reached.seq == 2
    await copter.wait_for(lambda c: c.payload_released_at is not None, timeout=10)
    assert geo.distance_m(*copter.payload_released_at, *dest) < 3.0
    await copter.wait_for(lambda c: not c.armed, timeout=60)
    assert geo.distance_m(copter.lat, copter.lon, *HOME) < 2.0
    assert copter.alt_m == 0.0
    pos = await copter_client.expect("GLOBAL_POSITION_INT", timeout=5)
    assert abs(pos.lat / 1e7 - HOME[0]) < 1e-4
    assert copter.energy_used_wh > 5.0
    assert 0.9 < copter.battery_remaining < 1.0
    hb = await copter_client.expect("HEARTBEAT", timeout=5)
    assert hb.custom_mode == 3 and not hb.base_mode & M.MAV_MODE_FLAG_SAFETY_ARMED
    # NAV items are reached; the DO_GRIPPER (3) is not: AP_Mission reports only NAV commands
    reached = [m.seq for m in copter_client.log[since:] if m.get_type() == "MISSION_ITEM_REACHED"]
    assert reached == [1, 2, 4]
    statustexts = [m.text for m in copter_client.log[since:] if m.get_type() == "STATUSTEXT"]
    assert "Reached command #2" in statustexts  # ModeAuto::verify_nav_wp
    gripper = [text for text in statustexts if text.startswith("Gripper load")]
    assert gripper == ["Gripper load releasing", "Gripper load released"]
