"""A copter's first seconds, on the default boot: what ArduCopter 4.7 says and refuses before it can fly
(sitl/copter/boot.py, in the order measured on ArduCopter 4.7 SITL), and the HEARTBEAT's base_mode and
system_status through it."""

from __future__ import annotations

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import SimCopterFleet
from sitl.copter.boot import DEFAULT_BOOT_S, MISSION_READY_AT

from .conftest import CopterClient, item, statustexts, upload

M = mavlink
HOME = (33.4484, -112.2590)
GUIDED = 4
BASE = (
    M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
    | M.MAV_MODE_FLAG_STABILIZE_ENABLED
    | M.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
)  # 81
PREARM = M.MAV_SYS_STATUS_PREARM_CHECK
MISSION = [item(M.MAV_CMD_NAV_WAYPOINT, *HOME, 0), item(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 10)]


def texts(client: CopterClient, since: int = 0) -> list[str]:
    return [text for text, _ in statustexts(client, since)]


async def arm_refusals(client: CopterClient) -> list[str]:
    since = client.mark()
    assert await client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_FAILED
    return [t for t in texts(client, since) if t.startswith("Arm: ")]


async def test_a_booting_copter_refuses_missions_then_says_ready_then_finds_its_position():
    async with SimCopterFleet(1, base_port=0, speedup=1) as fleet:  # the default boot, slowly at first
        copter = fleet.vehicles[0]
        assert fleet.boot_s == DEFAULT_BOOT_S and not copter.ready
        client = await CopterClient.connect(fleet.tcp_ports[0])
        try:
            hb = await client.expect("HEARTBEAT")
            # setup: MAV_STATE_BOOT, and 89 = 81 + GUIDED (the position controller looks active before the
            # scheduler has ticked), in STABILIZE
            assert (hb.system_status, hb.base_mode, hb.custom_mode) == (M.MAV_STATE_BOOT, BASE | 8, 0)
            for msgid in (M.MAVLINK_MSG_ID_SYS_STATUS, M.MAVLINK_MSG_ID_GLOBAL_POSITION_INT):
                result = await client.command(M.MAV_CMD_SET_MESSAGE_INTERVAL, msgid, 100_000)
                assert result == M.MAV_RESULT_ACCEPTED
            result = await client.command(M.MAV_CMD_REQUEST_MESSAGE, M.MAVLINK_MSG_ID_BATTERY_STATUS)
            assert result == M.MAV_RESULT_ACCEPTED  # answered once setup is done

            # AP_Mission is not initialised yet: 0 items fit
            since = client.mark()
            assert copter.time_s < MISSION_READY_AT * DEFAULT_BOOT_S
            assert await upload(client, MISSION) == M.MAV_MISSION_NO_SPACE
            assert statustexts(client, since) == [("Only 0 items are supported", M.MAV_SEVERITY_WARNING)]
            since = client.mark()
            assert await client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_FAILED
            assert statustexts(client, since) == [("Arm: System not initialised", M.MAV_SEVERITY_CRITICAL)]

            fleet.set_speedup(4)
            ready = await client.expect("STATUSTEXT", lambda m: m.text == "ArduPilot Ready", timeout=5)
            assert ready.severity == M.MAV_SEVERITY_INFO
            at_ready = client.log.index(ready)
            streamed = {"SYS_STATUS", "GLOBAL_POSITION_INT", "BATTERY_STATUS"}
            assert not [m for m in client.log[:at_ready] if m.get_type() in streamed]  # only HEARTBEAT
            assert "Barometer 1 calibration complete" in texts(client)

            # set up: streams flow; the first SYS_STATUS says 0 V, the battery monitor reads right after
            first = await client.expect("SYS_STATUS", since=at_ready)
            second = await client.expect("SYS_STATUS", since=client.log.index(first) + 1)
            assert first.voltage_battery == 0 and second.voltage_battery > 40_000
            assert first.onboard_control_sensors_present & PREARM
            assert first.onboard_control_sensors_enabled & PREARM
            batt = await client.expect("BATTERY_STATUS", since=at_ready)
            assert batt.voltages[0] > 4000
            pos = await client.expect("GLOBAL_POSITION_INT", since=at_ready)
            assert (pos.lat, pos.lon, pos.alt) == (0, 0, 0)  # no GPS yet: the never-set location
            hb = await client.expect("HEARTBEAT")
            assert (hb.system_status, hb.base_mode) == (M.MAV_STATE_STANDBY, BASE)  # 81 in STABILIZE
            assert await client.command(M.MAV_CMD_GET_HOME_POSITION) == M.MAV_RESULT_FAILED
            assert await upload(client, MISSION) == M.MAV_MISSION_ACCEPTED

            # disarmed, any mode may be chosen; arming in one that needs a position waits for home ...
            assert await client.command(M.MAV_CMD_DO_SET_MODE, 1, GUIDED) == M.MAV_RESULT_ACCEPTED
            assert "Arm: AHRS: waiting for home" in await arm_refusals(client)
            assert not (await client.expect("SYS_STATUS")).onboard_control_sensors_health & PREARM
            # ... which the EKF's origin brings, but not yet a position
            home = await client.expect("HOME_POSITION", timeout=10)
            assert (round(home.latitude / 1e7, 4), round(home.longitude / 1e7, 4)) == HOME
            assert "EKF3 IMU0 origin set" in texts(client) and not copter.boot.position_ok
            assert "Arm: Need Position Estimate" in await arm_refusals(client)
            assert await client.command(M.MAV_CMD_GET_HOME_POSITION) == M.MAV_RESULT_ACCEPTED

            # the EKF uses GPS: the position is known, the pre-arm bit healthy, arming works
            await client.expect("STATUSTEXT", lambda m: m.text == "EKF3 IMU1 is using GPS", timeout=10)
            assert copter.ready
            pos = await client.expect("GLOBAL_POSITION_INT")
            assert abs(pos.lat / 1e7 - HOME[0]) < 1e-6 and abs(pos.lon / 1e7 - HOME[1]) < 1e-6
            assert (await client.expect("SYS_STATUS")).onboard_control_sensors_health & PREARM
            assert await client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
            hb = await client.expect("HEARTBEAT", lambda m: m.base_mode & M.MAV_MODE_FLAG_SAFETY_ARMED)
            assert hb.base_mode == BASE | M.MAV_MODE_FLAG_GUIDED_ENABLED | M.MAV_MODE_FLAG_SAFETY_ARMED  # 217
        finally:
            await client.close()


async def test_the_boot_texts_come_in_arducopters_order():
    async with SimCopterFleet(1, base_port=0, speedup=20) as fleet:
        copter = fleet.vehicles[0]
        await copter.wait_for(lambda c: c.ready, timeout=5)
        assert copter.statustexts == [
            "Calibrating barometer",
            "Barometer 1 calibration complete",
            "Barometer 2 calibration complete",
            "ArduPilot Ready",
            "AHRS: DCM active",
            "EKF3 IMU0 initialised",
            "EKF3 IMU1 initialised",
            "AHRS: EKF3 active",
            "EKF3 IMU0 tilt alignment complete",
            "EKF3 IMU1 tilt alignment complete",
            "EKF3 IMU0 MAG0 initial yaw alignment complete",
            "EKF3 IMU1 MAG0 initial yaw alignment complete",
            "GPS 1: probing for u-blox at 230400 baud",
            "GPS 1: detected u-blox",
            "EKF3 IMU0 origin set",
            "Field Elevation Set: 300m",
            "EKF3 IMU1 origin set",
            "EKF3 IMU0 is using GPS",
            "EKF3 IMU1 is using GPS",
        ]
        assert copter.time_s <= DEFAULT_BOOT_S + 0.2


async def test_stabilize_arms_before_the_position_but_an_armed_copter_may_not_enter_guided():
    """STABILIZE needs no position (ARMING_NEED_LOC 0): it arms once the EKF has aligned and the IMUs have
    agreed for long enough; armed, GUIDED is refused until the EKF has a position (Copter::set_mode)."""
    async with SimCopterFleet(1, base_port=0, speedup=4) as fleet:
        copter = fleet.vehicles[0]
        client = await CopterClient.connect(fleet.tcp_ports[0])
        try:
            await client.expect("STATUSTEXT", lambda m: m.text == "ArduPilot Ready", timeout=5)
            assert await arm_refusals(client) == [
                "Arm: Accels inconsistent",
                "Arm: EKF attitude is bad",
                "Arm: AHRS: not using configured AHRS type",
            ]
            await client.expect(
                "STATUSTEXT", lambda m: m.text == "EKF3 IMU1 MAG0 initial yaw alignment complete"
            )
            assert await arm_refusals(client) == ["Arm: Accels inconsistent"]
            await client.expect("STATUSTEXT", lambda m: m.text == "EKF3 IMU1 origin set")
            assert await arm_refusals(client) == ["Arm: Gyros inconsistent"]  # the IMUs' 10 s, gyros last
            mark = client.mark()
            client.mav.request_data_stream_send(1, 1, M.MAV_DATA_STREAM_EXTENDED_STATUS, 10, 1)
            await client.expect(
                "SYS_STATUS", lambda m: m.onboard_control_sensors_health & PREARM, since=mark, timeout=5
            )
            assert not copter.boot.position_ok
            assert await client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
            since = client.mark()
            assert await client.command(M.MAV_CMD_DO_SET_MODE, 1, GUIDED) == M.MAV_RESULT_FAILED
            assert statustexts(client, since) == [
                ("Mode change to GUIDED failed: requires position", M.MAV_SEVERITY_WARNING)
            ]
            assert copter.mode == "STABILIZE"
            await client.expect("STATUSTEXT", lambda m: m.text == "EKF3 IMU0 is using GPS", timeout=5)
            assert await client.command(M.MAV_CMD_DO_SET_MODE, 1, GUIDED) == M.MAV_RESULT_ACCEPTED
            assert await client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 0) == M.MAV_RESULT_ACCEPTED
            assert "Disarming motors" in texts(client)
        finally:
            await client.close()


async def test_base_mode_after_boot_follows_the_position_controller(copter_fleet: SimCopterFleet):
    client = await CopterClient.connect(copter_fleet.tcp_ports[0])
    try:
        hb = await client.expect("HEARTBEAT", lambda m: m.custom_mode == 0)
        assert (hb.base_mode, hb.system_status) == (81, M.MAV_STATE_STANDBY)  # STABILIZE, landed
        for mode, want in ((2, 81), (GUIDED, 89), (5, 89), (0, 81)):  # ALT_HOLD, GUIDED, LOITER, STABILIZE
            assert await client.command(M.MAV_CMD_DO_SET_MODE, 1, mode) == M.MAV_RESULT_ACCEPTED
            hb = await client.expect("HEARTBEAT", lambda m, mode=mode: m.custom_mode == mode)
            assert hb.base_mode == want
    finally:
        await client.close()
