"""Commands, parameters, telemetry, stream rates and signing against a scripted vehicle over TCP."""

from __future__ import annotations

import asyncio

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from vehicles.mavlink import (
    BatteryFailsafe,
    CommandError,
    DroneDriver,
    FenceBreach,
    Firmware,
    LinkError,
    ModeChanged,
    NotReadyError,
    ParamError,
    PreArmError,
    key_from_passphrase,
)


async def test_arm_refusal_carries_the_prearm_reasons(peer):
    async with peer() as server, DroneDriver() as driver:
        server.vehicle.options.prearm_reasons = [
            "PreArm: Battery below minimum arming capacity",
            "PreArm: Fence",
        ]
        drone = await driver.add("d1", server.url, set_rates=False)
        with pytest.raises(PreArmError) as err:
            await drone.arm()
        assert err.value.reasons == ["PreArm: Battery below minimum arming capacity", "PreArm: Fence"]
        assert err.value.result == mavlink.MAV_RESULT_FAILED
        assert "Battery below minimum" in str(err.value)
        assert drone.state.armed is False


async def test_arm_succeeds_and_state_follows_the_heartbeat(peer):
    async with peer() as server, DroneDriver() as driver:
        drone = await driver.add("d1", server.url, set_rates=False)
        await drone.arm()
        assert drone.state.armed and server.vehicle.armed


async def test_lost_commands_are_resent_with_confirmation_incremented(peer):
    async with peer() as server, DroneDriver() as driver:
        drone = await driver.add("d1", server.url, set_rates=False)
        server.vehicle.options.ignore_commands = 2
        await drone.commands.command_long(mavlink.MAV_CMD_DO_SET_MODE, 1, 5, timeout_s=0.2)
        sent = [m for m in server.vehicle.received if m.get_type() == "COMMAND_LONG" and m.command == 176]
        assert [m.confirmation for m in sent] == [0, 1, 2]


async def test_refused_command_raises_with_command_and_result(peer):
    async with peer() as server, DroneDriver() as driver:
        server.vehicle.options.command_results[mavlink.MAV_CMD_MISSION_START] = mavlink.MAV_RESULT_DENIED
        drone = await driver.add("d1", server.url, set_rates=False)
        with pytest.raises(CommandError) as err:
            await drone.start_mission()
        assert err.value.command == mavlink.MAV_CMD_MISSION_START
        assert err.value.result_name == "MAV_RESULT_DENIED"


async def test_unanswered_command_is_a_link_error(peer):
    async with peer() as server, DroneDriver() as driver:
        drone = await driver.add("d1", server.url, set_rates=False)
        server.vehicle.options.ignore_commands = 100
        with pytest.raises(LinkError, match="COMMAND_ACK"):
            await drone.commands.command_long(mavlink.MAV_CMD_DO_SET_MODE, 1, 5, timeout_s=0.1, retries=2)


async def test_params_are_confirmed_clamped_or_unknown(peer):
    async with peer() as server, DroneDriver() as driver:
        drone = await driver.add("d1", server.url, set_rates=False)
        assert await drone.params.set("FENCE_ENABLE", 1) == 1
        assert server.vehicle.params["FENCE_ENABLE"] == 1
        server.vehicle.options.clamp["RTL_ALT"] = 3000
        with pytest.raises(ParamError) as err:
            await drone.params.set("RTL_ALT", 500, timeout_s=0.2, retries=1)
        assert (err.value.name, err.value.wanted, err.value.got) == ("RTL_ALT", 500, 3000)
        with pytest.raises(ParamError, match="NO_SUCH_PARAM: no such parameter"):
            await drone.params.set("NO_SUCH_PARAM", 1, timeout_s=0.1, retries=1)
        assert await drone.params.get("MAV_SYSID") == 1


async def test_rates_fall_back_to_request_data_stream(peer):
    async with peer() as server, DroneDriver() as driver:
        server.vehicle.options.command_results[511] = mavlink.MAV_RESULT_UNSUPPORTED
        drone = await driver.add("d1", server.url, set_rates=False)
        assert await drone.set_rates() == "data_stream"
        req = await server.vehicle.wait_received(lambda m: m.get_type() == "REQUEST_DATA_STREAM")
        assert req.req_message_rate == 4 and req.start_stop == 1


async def test_telemetry_becomes_state_and_events(peer):
    async with peer() as server, DroneDriver() as driver:
        drone = await driver.add("d1", server.url, set_rates=False)
        v = server.vehicle
        with drone.telemetry.subscribe() as q:
            v.send(
                v.mav.global_position_int_encode(
                    0, 334000000, -1123000000, 400000, 60000, 300, 400, -100, 9000
                )
            )
            v.send(v.mav.sys_status_encode(0, 0, 0, 0, 15800, 1200, 71, 0, 0, 0, 0, 0, 0))
            v.send(v.mav.battery_status_encode(0, 0, 0, 2500, [15800] + [65535] * 9, 1200, 2200, 360, 71,
                                               0, mavlink.MAV_BATTERY_CHARGE_STATE_OK))  # fmt: skip
            v.send(
                v.mav.statustext_encode(
                    mavlink.MAV_SEVERITY_WARNING, b"Battery 1 is low 14.80V used 2200 mAh"
                )
            )
            v.send(v.mav.fence_status_encode(1, 1, mavlink.FENCE_BREACH_BOUNDARY, 0))
            v.custom_mode = 6
            v.heartbeat()
            seen = {}
            async with asyncio.timeout(3):
                while len(seen) < 3:
                    ev = await q.get()
                    if isinstance(ev, BatteryFailsafe | FenceBreach | ModeChanged) and (
                        not isinstance(ev, ModeChanged) or ev.new == "RTL"
                    ):
                        seen[type(ev)] = ev
        s = drone.state
        assert (s.lat, s.lon, s.alt_m) == (33.4, -112.3, 60.0)
        assert s.groundspeed == pytest.approx(5.0)
        assert s.heading == pytest.approx(90.0)
        assert s.battery_voltage == pytest.approx(15.8)
        assert s.battery_mah_used == 2200
        assert s.battery_energy_wh == pytest.approx(10.0)  # 360 hJ = 36 kJ
        assert s.battery_remaining == pytest.approx(0.71)
        assert s.fence_breached and s.fence_breach_count == 1
        assert seen[BatteryFailsafe].level == "low"
        assert s.mode == "RTL"


async def test_signing_provisions_the_key_and_signs_everything_after(peer):
    key = key_from_passphrase("station-7")
    async with peer() as server, DroneDriver() as driver:
        v = server.vehicle
        drone = await driver.add("d1", server.url, set_rates=False)
        setup_seen = asyncio.Event()
        original = v.feed

        def feed(data: bytes) -> None:
            original(data)
            if not setup_seen.is_set() and any(m.get_type() == "SETUP_SIGNING" for m in v.received):
                setup_seen.set()
                v.mav.signing.secret_key = key
                v.mav.signing.sign_outgoing = True  # from here on the peer refuses unsigned messages

        v.feed = feed
        await drone.provision_signing(key)
        setup = next(m for m in v.received if m.get_type() == "SETUP_SIGNING")
        assert bytes(setup.secret_key) == key
        before = v.mav.signing.goodsig_count
        await drone.set_mode("GUIDED")  # accepted only because it is signed
        assert v.mav.signing.goodsig_count > before


async def test_wait_ready_needs_position_home_battery_and_prearm_and_says_what_is_missing(peer):
    prearm = mavlink.MAV_SYS_STATUS_PREARM_CHECK
    async with peer() as server, DroneDriver() as driver:
        v = server.vehicle
        drone = await driver.add("d1", server.url, set_rates=False)
        # booting, as ArduPilot looks before its EKF has an origin: 0 V, position 0/0, checks failing
        v.send(v.mav.sys_status_encode(prearm, prearm, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0))
        v.send(v.mav.global_position_int_encode(0, 0, 0, 0, 0, 0, 0, 0, 0))
        v.send(v.mav.statustext_encode(mavlink.MAV_SEVERITY_CRITICAL, b"PreArm: Need Position Estimate"))
        with pytest.raises(NotReadyError) as err:
            await drone.wait_ready(timeout_s=0.3)
        assert set(err.value.missing) >= {"position estimate", "home position", "battery reading"}
        assert "pre-arm checks passing" in err.value.missing
        assert err.value.reasons == ["PreArm: Need Position Estimate"] and "Need Position" in str(err.value)
        assert drone.state.lat is None  # 0/0 is "no position", not a fix off Africa
        waiting = asyncio.create_task(drone.wait_ready(timeout_s=3))
        v.send(v.mav.global_position_int_encode(0, 334000000, -1123000000, 300000, 0, 0, 0, 0, 0))
        v.send(v.mav.home_position_encode(334000000, -1123000000, 300000, 0, 0, 0, [1, 0, 0, 0], 0, 0, 0))
        v.send(v.mav.sys_status_encode(prearm, prearm, 0, 0, 15800, 0, 90, 0, 0, 0, 0, 0, 0))
        await asyncio.sleep(0)
        assert not waiting.done()  # everything but the pre-arm checks
        v.send(v.mav.sys_status_encode(prearm, prearm, prearm, 0, 15800, 0, 90, 0, 0, 0, 0, 0, 0))
        await waiting
        assert drone.state.prearm_ok is True and drone.readiness() == []


async def test_arming_is_retried_until_the_checks_pass(peer):
    async with peer() as server, DroneDriver() as driver:
        v = server.vehicle
        drone = await driver.add("d1", server.url, set_rates=False)
        v.options.prearm_reasons = ["PreArm: Need Position Estimate"]
        arming = asyncio.create_task(drone.arm_for_mission(timeout_s=5))
        await v.wait_received(lambda m: m.get_type() == "COMMAND_LONG" and m.command == 400)
        assert not arming.done()
        v.options.prearm_reasons = []  # the EKF settled
        await arming
        assert drone.state.armed and drone.state.mode == "GUIDED"


async def test_arming_gives_up_at_its_deadline_with_the_drones_own_words(peer):
    async with peer() as server, DroneDriver() as driver:
        v = server.vehicle
        drone = await driver.add("d1", server.url, set_rates=False)
        v.options.prearm_reasons = ["PreArm: Need Position Estimate"]
        with pytest.raises(PreArmError) as err:
            await drone.arm_for_mission(timeout_s=0.5)
        assert err.value.reasons == ["PreArm: Need Position Estimate"]
        assert not drone.state.armed


def test_firmware_versions_and_parameter_names():
    fw47 = Firmware.from_flight_sw_version((4 << 24) | (7 << 16) | (0 << 8) | 0)
    assert str(fw47) == "4.7.0-dev" and fw47.param_name("MAV_SYSID") == "MAV_SYSID"
    fw46 = Firmware.from_flight_sw_version((4 << 24) | (6 << 16) | (2 << 8) | 255)
    assert str(fw46) == "4.6.2" and fw46.param_name("MAV_SYSID") == "SYSID_THISMAV"
    assert fw46.param_name("MAV_GCS_SYSID") == "SYSID_MYGCS" and fw46.param_name("RTL_ALT") == "RTL_ALT"


async def test_parameter_names_are_asked_not_guessed_from_the_version(peer):
    """A 4.7.0-dev build from before the rename still answers only to SYSID_THISMAV."""
    async with peer() as server, DroneDriver() as driver:
        v = server.vehicle
        v.params["SYSID_THISMAV"] = v.params.pop("MAV_SYSID")
        drone = await driver.add("d1", server.url, set_rates=False)
        assert drone.new_names is False and drone.param_name("MAV_SYSID") == "SYSID_THISMAV"
        assert drone.param_name("MAV_GCS_SYSID") == "SYSID_MYGCS"
        assert await drone.params.get(drone.param_name("MAV_SYSID")) == 1


async def test_a_booted_drone_that_still_refuses_is_not_waited_for_to_the_deadline(peer):
    """Position, home and battery are there: a refusal now is a real reason (a low battery), not the boot."""
    prearm = mavlink.MAV_SYS_STATUS_PREARM_CHECK
    async with peer() as server, DroneDriver() as driver:
        v = server.vehicle
        drone = await driver.add("d1", server.url, set_rates=False)
        v.send(v.mav.global_position_int_encode(0, 334000000, -1123000000, 300000, 0, 0, 0, 0, 0))
        v.send(v.mav.home_position_encode(334000000, -1123000000, 300000, 0, 0, 0, [1, 0, 0, 0], 0, 0, 0))
        v.send(v.mav.statustext_encode(mavlink.MAV_SEVERITY_INFO, b"ArduPilot Ready"))
        v.send(v.mav.sys_status_encode(prearm, prearm, 0, 0, 15800, 0, 19, 0, 0, 0, 0, 0, 0))
        await drone.wait_ready(3, prearm=False)
        v.options.prearm_reasons = ["PreArm: Battery 1 below minimum arming capacity"]
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(PreArmError, match="minimum arming capacity"):
            await drone.arm_for_mission(timeout_s=60, booted_grace_s=0.5)
        assert loop.time() - started < 5
