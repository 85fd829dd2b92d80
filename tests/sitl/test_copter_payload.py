"""Payload delivery three ways (NAV_PAYLOAD_PLACE, DO_WINCH, DO_GRIPPER) with ArduPilot's texts, what a
release device needs (its SERVOn_FUNCTION output), and what the payload costs."""

from __future__ import annotations

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import SimCopterFleet, geo, power

from .conftest import CopterClient, item, statustexts, upload

M = mavlink
HOME = (33.4484, -112.2590)


async def start_mission(client: CopterClient) -> None:
    assert await client.command(M.MAV_CMD_DO_SET_MODE, 1, 4) == M.MAV_RESULT_ACCEPTED
    assert await client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    assert await client.command(M.MAV_CMD_MISSION_START) == M.MAV_RESULT_ACCEPTED


def texts(client: CopterClient, since: int, *words: str) -> list[tuple[str, int]]:
    """(text, severity) of the STATUSTEXTs since `since` that contain any of `words`."""
    return [(text, sev) for text, sev in statustexts(client, since) if any(w in text for w in words)]


def place_mission(
    dest: tuple[float, float], max_descent: float
) -> list[mavlink.MAVLink_mission_item_int_message]:
    return [
        item(M.MAV_CMD_NAV_WAYPOINT, *HOME, 0),
        item(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 25),
        item(M.MAV_CMD_NAV_WAYPOINT, *dest, 25),
        item(M.MAV_CMD_NAV_PAYLOAD_PLACE, *dest, 0, max_descent),  # param1: maximum descent, m
        item(M.MAV_CMD_NAV_WAYPOINT, *HOME, 25),
        item(M.MAV_CMD_NAV_LAND, *HOME, 0),
    ]


INFO, WARNING = M.MAV_SEVERITY_INFO, M.MAV_SEVERITY_WARNING


async def test_payload_place_descends_releases_on_ground_and_climbs_back(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    copter = copter_fleet.vehicles[0]
    copter.set_payload(2.0)
    dest = geo.offset(*HOME, 250.0, -120.0)
    # param1 0: no maximum descent, down to the ground (ArduCopter's autotest mission does the same)
    assert await upload(copter_client, place_mission(dest, 0)) == M.MAV_MISSION_ACCEPTED
    copter_fleet.set_speedup(50)
    since = copter_client.mark()
    await start_mission(copter_client)
    await copter_client.expect("MISSION_ITEM_REACHED", lambda m: m.seq == 3, timeout=60)
    assert copter.payload_released_at is not None and copter.payload_kg == 0.0
    assert geo.distance_m(*copter.payload_released_at, *dest) < 1.0
    assert min(alt for _, _, alt in copter.track) < 0.5  # it went down to the ground to place it
    assert abs(copter.alt_m - 25.0) < 0.6  # and back up to where the descent began
    # touchdown found by the thrust falling (0.9 x the descent thrust, 0.35) for 0.5 s; that text is longer
    # than a STATUSTEXT and comes in two chunks, as from ArduCopter 4.7 SITL
    assert texts(copter_client, since, "PayloadPlace:", "Gripper load") == [
        ("PayloadPlace: payload release thrust threshold: 0.315000", INFO),
        ("PayloadPlace: Releasing the gripper", INFO),
        ("Gripper load releasing", INFO),
        ("Gripper load released", INFO),
    ]
    chunks = [m for m in copter_client.log[since:] if m.get_type() == "STATUSTEXT" and m.id]
    assert [(m.text, m.chunk_seq) for m in chunks] == [
        ("PayloadPlace: payload release thrust threshold: 0.", 0),
        ("315000", 1),
    ]
    await copter.wait_for(lambda c: not c.armed, timeout=60)
    assert geo.distance_m(copter.lat, copter.lon, *HOME) < 1.0
    assert copter.params["SIM_PAYLOAD_KG"] == 0.0


async def test_payload_place_with_max_descent_equal_to_the_height_stops_short_and_keeps_the_package(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    """The maximum descent is measured on the position controller's desired altitude, which runs ahead of
    the copter: with param1 = the height it is used up just before the copter touches (mode_auto.cpp)."""
    copter = copter_fleet.vehicles[0]
    copter.set_payload(2.0)
    dest = geo.offset(*HOME, 150.0, 80.0)
    assert await upload(copter_client, place_mission(dest, 25)) == M.MAV_MISSION_ACCEPTED
    copter_fleet.set_speedup(50)
    since = copter_client.mark()
    await start_mission(copter_client)
    await copter.wait_for(lambda c: "PayloadPlace: Reached maximum descent" in c.statustexts, timeout=60)
    assert 0.0 < copter.alt_m < 1.0 and not copter.landed  # stopped just above the ground
    await copter_client.expect("MISSION_ITEM_REACHED", lambda m: m.seq == 3, since=since, timeout=30)
    assert abs(copter.alt_m - 25.0) < 0.6  # climbed back before the item counted as done
    assert copter.payload_kg == 2.0 and copter.payload_released_at is None
    assert texts(copter_client, since, "PayloadPlace:", "Gripper load") == [
        ("PayloadPlace: Reached maximum descent", WARNING)
    ]
    await copter.wait_for(lambda c: not c.armed, timeout=60)
    assert copter.payload_kg == 2.0  # brought back home


async def test_without_a_gripper_output_nothing_is_released(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    """AP_Gripper_Servo needs an output with SERVOn_FUNCTION 28: without one DO_GRIPPER is accepted but
    the servo never gets there, and NAV_PAYLOAD_PLACE (gripper not valid) lands and leaves with it."""
    copter = copter_fleet.vehicles[0]
    copter.params.set("SERVO9_FUNCTION", 0)
    copter.set_payload(1.0)
    since = copter_client.mark()
    assert (
        await copter_client.command(M.MAV_CMD_DO_GRIPPER, 1, M.GRIPPER_ACTION_RELEASE)
        == M.MAV_RESULT_ACCEPTED
    )
    t0 = copter.time_s
    await copter.wait_for(lambda c: c.time_s > t0 + 2.0, timeout=5)
    assert texts(copter_client, since, "Gripper load") == [("Gripper load releasing", INFO)]
    assert copter.payload_kg == 1.0

    dest = geo.offset(*HOME, 100.0, 0.0)
    assert await upload(copter_client, place_mission(dest, 0)) == M.MAV_MISSION_ACCEPTED
    copter_fleet.set_speedup(50)
    since = copter_client.mark()
    await start_mission(copter_client)
    await copter_client.expect("MISSION_ITEM_REACHED", lambda m: m.seq == 3, timeout=60)
    assert min(alt for _, _, alt in copter.track) < 0.5
    assert texts(copter_client, since, "PayloadPlace:", "Gripper load") == [
        ("PayloadPlace: payload release thrust threshold: 0.315000", INFO)
    ]
    assert copter.payload_kg == 1.0 and copter.payload_released_at is None


async def test_gripper_texts_for_grab_and_a_second_release(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    since = copter_client.mark()
    for action in (M.GRIPPER_ACTION_GRAB, M.GRIPPER_ACTION_RELEASE, M.GRIPPER_ACTION_RELEASE):
        before = copter_client.mark()
        assert await copter_client.command(M.MAV_CMD_DO_GRIPPER, 1, action) == M.MAV_RESULT_ACCEPTED
        await copter_client.expect("STATUSTEXT", lambda m: m.text.endswith("ed"), since=before)
    assert texts(copter_client, since, "Gripper load") == [
        ("Gripper load grabbing", INFO),
        ("Gripper load grabbed", INFO),
        ("Gripper load releasing", INFO),
        ("Gripper load released", INFO),
        ("Gripper load released", INFO),  # already released: said again, nothing moves
    ]
    assert await copter_client.command(M.MAV_CMD_DO_GRIPPER, 1, 7) == M.MAV_RESULT_FAILED


async def test_a_winch_needs_its_output_and_a_real_type(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    """AP_Winch_PWM::healthy needs SERVOn_FUNCTION 88; unhealthy fails the pre-arm check "winch unhealthy".
    WINCH_TYPE: 0 none (DO_WINCH FAILED), 1 PWM, 2 Daiwa (no serial telemetry here: unhealthy)."""
    copter = copter_fleet.vehicles[0]
    assert await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, 4) == M.MAV_RESULT_ACCEPTED
    for name, value in (("SERVO10_FUNCTION", 0), ("WINCH_TYPE", 2)):
        copter.params.set(name, value)
        since = copter_client.mark()
        assert await copter_client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_FAILED
        assert texts(copter_client, since, "winch") == [("Arm: winch unhealthy", M.MAV_SEVERITY_CRITICAL)]
    copter.params.set("WINCH_TYPE", 0)
    assert await copter_client.command(M.MAV_CMD_DO_WINCH, 1, M.WINCH_RELAXED) == M.MAV_RESULT_FAILED
    assert await copter_client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED


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
    since = copter_client.mark()
    await start_mission(copter_client)
    await copter.wait_for(lambda c: c.payload_released_at is not None, timeout=60)
    assert geo.distance_m(*copter.payload_released_at, *dest) < 2.0
    assert copter.alt_m > 14.0  # the copter stayed up; the line went down
    assert 14.0 <= copter.winch_line_m <= 16.0
    # AP_Winch::release_length with WINCH_OPTIONS' verbose bit (the default 7 has it)
    assert texts(copter_client, since, "Winch:") == [("Winch: lowering 16.0m to 16.0m", INFO)]
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
    since = copter_client.mark()
    assert (
        await copter_client.command(M.MAV_CMD_DO_GRIPPER, 1, M.GRIPPER_ACTION_RELEASE)
        == M.MAV_RESULT_ACCEPTED
    )
    # AP_Gripper_Servo: "releasing" at once, "released" once the servo has had its 500 ms to move
    releasing = await copter_client.expect("STATUSTEXT", since=since)
    released = await copter_client.expect("STATUSTEXT", since=copter_client.log.index(releasing) + 1)
    assert [releasing.text, released.text] == ["Gripper load releasing", "Gripper load released"]
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
