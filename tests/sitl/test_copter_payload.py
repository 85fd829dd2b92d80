"""Payload delivery three ways (NAV_PAYLOAD_PLACE, DO_WINCH, DO_GRIPPER) and what the payload costs."""

from __future__ import annotations

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import SimCopterFleet, geo, power

from .conftest import CopterClient, item, upload

M = mavlink
HOME = (33.4484, -112.2590)


async def start_mission(client: CopterClient) -> None:
    assert await client.command(M.MAV_CMD_DO_SET_MODE, 1, 4) == M.MAV_RESULT_ACCEPTED
    assert await client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    assert await client.command(M.MAV_CMD_MISSION_START) == M.MAV_RESULT_ACCEPTED


async def test_payload_place_descends_releases_on_ground_and_climbs_back(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    copter = copter_fleet.vehicles[0]
    copter.set_payload(2.0)
    dest = geo.offset(*HOME, 250.0, -120.0)
    mission = [
        item(M.MAV_CMD_NAV_WAYPOINT, *HOME, 0),
        item(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 25),
        item(M.MAV_CMD_NAV_WAYPOINT, *dest, 25),
        item(M.MAV_CMD_NAV_PAYLOAD_PLACE, *dest, 0, 40),  # param1: max descent 40 m
        item(M.MAV_CMD_NAV_WAYPOINT, *HOME, 25),
        item(M.MAV_CMD_NAV_LAND, *HOME, 0),
    ]
    assert await upload(copter_client, mission) == M.MAV_MISSION_ACCEPTED
    copter_fleet.set_speedup(50)
    await start_mission(copter_client)
    await copter_client.expect("MISSION_ITEM_REACHED", lambda m: m.seq == 3, timeout=60)
    assert copter.payload_released_at is not None and copter.payload_kg == 0.0
    assert geo.distance_m(*copter.payload_released_at, *dest) < 1.0
    assert min(alt for _, _, alt in copter.track) < 0.5  # it went down to the ground to place it
    await copter.wait_for(lambda c: not c.armed, timeout=60)
    assert geo.distance_m(copter.lat, copter.lon, *HOME) < 1.0
    assert copter.params["SIM_PAYLOAD_KG"] == 0.0


async def test_winch_lowers_the_package_while_hovering(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    copter = copter_fleet.vehicles[0]
    copter.set_payload(1.5)
    dest = geo.offset(*HOME, 150.0, 0.0)
    mission = [
        item(M.MAV_CMD_NAV_WAYPOINT, *HOME, 0),
        item(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 15),
        item(M.MAV_CMD_NAV_WAYPOINT, *dest, 15),
        item(
            M.MAV_CMD_DO_WINCH, 0, 0, 0, 1, M.WINCH_RELATIVE_LENGTH_CONTROL, 16, 1.0
        ),  # pay out 16 m at 1 m/s
        item(M.MAV_CMD_NAV_DELAY, 0, 0, 0, 20),
        item(M.MAV_CMD_NAV_RETURN_TO_LAUNCH),
    ]
    assert await upload(copter_client, mission) == M.MAV_MISSION_ACCEPTED
    copter_fleet.set_speedup(50)
    await start_mission(copter_client)
    await copter.wait_for(lambda c: c.payload_released_at is not None, timeout=60)
    assert geo.distance_m(*copter.payload_released_at, *dest) < 2.0
    assert copter.alt_m > 14.0  # the copter stayed up; the line went down
    assert 14.0 <= copter.winch_line_m <= 16.0
    await copter.wait_for(lambda c: not c.armed, timeout=90)


async def test_gripper_command_drops_the_payload_and_lightens_the_copter(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    copter = copter_fleet.vehicles[0]
    copter.set_payload(2.2)
    assert await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, 4) == M.MAV_RESULT_ACCEPTED
    assert await copter_client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    assert await copter_client.command(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 10) == M.MAV_RESULT_ACCEPTED
    await copter.wait_for(lambda c: c.alt_m > 9.9 and abs(c.k.vu) < 0.05, timeout=20)
    loaded_w = copter.power_w
    assert (
        await copter_client.command(M.MAV_CMD_DO_GRIPPER, 1, M.GRIPPER_ACTION_RELEASE)
        == M.MAV_RESULT_ACCEPTED
    )
    assert copter.payload_released_at is not None
    await copter.wait_for(lambda c: c.power_w < loaded_w - 100, timeout=2)
    assert copter.power_w == power.flight_power_w(6.0, 0.0, copter.k.vu)
    copter.params.set("GRIP_ENABLE", 0)
    assert (
        await copter_client.command(M.MAV_CMD_DO_GRIPPER, 1, M.GRIPPER_ACTION_RELEASE) == M.MAV_RESULT_FAILED
    )


def test_power_model_matches_the_airframe_figures():
    hover_8kg = power.flight_power_w(8.0, 0.0, 0.0)
    assert 700 <= hover_8kg <= 900
    assert power.flight_power_w(8.0, 12.0, 0.0) < hover_8kg  # translational lift
    assert power.flight_power_w(8.0, 30.0, 0.0) > power.flight_power_w(8.0, 22.0, 0.0)  # drag wins at speed
    assert power.flight_power_w(8.0, 0.0, 2.5) > hover_8kg + 200  # climbing costs
    pack = power.Battery(13.6)
    assert 590 <= pack.capacity_ah * 44.4 <= 620  # ~600 Wh at 44.4 V nominal (12S)
    rest = pack.voltage
    pack.draw(hover_8kg, 1.0)
    assert rest - 1.5 < pack.voltage < rest - 0.3  # sag under load
