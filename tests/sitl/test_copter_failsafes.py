"""Failsafes as ArduCopter answers them: battery, fence breach, GCS link loss, and pre-arm refusals."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import SimCopter, SimCopterFleet, geo

from .conftest import CopterClient, item, upload

M = mavlink
HOME = (33.4484, -112.2590)
GUIDED, RTL, LAND, BRAKE = 4, 6, 9, 17


async def set_param(client: CopterClient, name: str, value: float) -> None:
    since = client.mark()
    client.mav.param_set_send(1, 1, name.encode(), value, M.MAV_PARAM_TYPE_REAL32)
    echo = await client.expect("PARAM_VALUE", lambda m: m.param_id == name, since=since)
    assert echo.param_value == value


async def take_off(client: CopterClient, copter: SimCopter, alt: float = 30.0) -> None:
    assert await client.command(M.MAV_CMD_DO_SET_MODE, 1, GUIDED) == M.MAV_RESULT_ACCEPTED
    assert await client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    assert await client.command(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, alt) == M.MAV_RESULT_ACCEPTED
    await copter.wait_for(lambda c: c.alt_m > alt - 0.5, timeout=20)


def goto(client: CopterClient, lat: float, lon: float, alt: float) -> None:
    client.mav.set_position_target_global_int_send(
        0, 1, 1, M.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, 0b0000111111111000,
        round(lat * 1e7), round(lon * 1e7), alt, 0, 0, 0, 0, 0, 0, 0, 0,
    )  # fmt: skip


async def test_battery_low_then_critical_trigger_rtl_then_land(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    copter = copter_fleet.vehicles[0]
    await set_param(copter_client, "BATT_LOW_MAH", 2720)  # 20 % of 13600 mAh
    await set_param(copter_client, "BATT_CRT_MAH", 1360)
    await take_off(copter_client, copter)
    goto(copter_client, *geo.offset(*HOME, 400, 0), 30)
    await copter.wait_for(lambda c: c.groundspeed_mps > 10, timeout=10)
    since = copter_client.mark()
    copter.set_battery(0.18)
    text = await copter_client.expect("STATUSTEXT", lambda m: "Battery 1 is low" in m.text, since=since)
    assert "used" in text.text and "mAh" in text.text  # "Battery 1 is low 44.61V used 11152 mAh"
    hb = await copter_client.expect("HEARTBEAT", lambda m: m.custom_mode == RTL, since=since)
    assert hb.system_status == M.MAV_STATE_CRITICAL
    copter.set_battery(0.08)
    await copter_client.expect("STATUSTEXT", lambda m: "Battery 1 is critical" in m.text, since=since)
    await copter.wait_for(lambda c: c.mode == "LAND", timeout=5)
    await copter.wait_for(lambda c: not c.armed, timeout=60)
    assert copter.alt_m == 0.0
    # a critical battery on the ground refuses arming with ArduPilot's text: "Arm: " while arming
    # (AP_Arming::arm sets running_arming_checks), "PreArm: " when the checks run on their own
    since = copter_client.mark()
    await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, GUIDED)
    assert await copter_client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_FAILED
    refusal = await copter_client.expect("STATUSTEXT", lambda m: "Battery" in m.text, since=since)
    assert refusal.text == "Arm: Battery 1 low capacity failsafe"
    assert refusal.severity == M.MAV_SEVERITY_CRITICAL
    since = copter_client.mark()
    assert await copter_client.command(M.MAV_CMD_RUN_PREARM_CHECKS) == M.MAV_RESULT_ACCEPTED
    report = await copter_client.expect("STATUSTEXT", lambda m: "Battery" in m.text, since=since)
    assert report.text == "PreArm: Battery 1 low capacity failsafe"


async def test_low_voltage_needs_batt_low_timer_seconds(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    copter = copter_fleet.vehicles[0]
    await take_off(copter_client, copter)
    copter.set_battery(0.06)  # ~41.5 V under hover load: under BATT_LOW_VOLT 42.0, above BATT_CRT_VOLT 40.8
    t0 = copter.time_s
    await copter.wait_for(lambda c: any("Battery 1 is low" in t for t in c.statustexts), timeout=5)
    assert copter.time_s - t0 >= 10.0  # BATT_LOW_TIMER
    await copter.wait_for(lambda c: c.mode == "RTL", timeout=2)


async def test_fence_breach_into_exclusion_zone_brakes_and_reports(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    copter = copter_fleet.vehicles[0]
    zone = [geo.offset(*HOME, n, e) for n, e in ((150, -100), (150, 100), (400, 100), (400, -100))]
    fence = [item(M.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION, *p, 0, 4) for p in zone]
    assert await upload(copter_client, fence, M.MAV_MISSION_TYPE_FENCE) == M.MAV_MISSION_ACCEPTED
    await set_param(copter_client, "FENCE_ACTION", 4)  # brake, or land
    assert await copter_client.command(M.MAV_CMD_DO_FENCE_ENABLE, 1) == M.MAV_RESULT_ACCEPTED
    copter_client.mav.command_long_send(1, 1, M.MAV_CMD_SET_MESSAGE_INTERVAL, 0, 162, 200_000, 0, 0, 0, 0, 0)
    status = await copter_client.expect("FENCE_STATUS")
    assert status.breach_status == 0
    await take_off(copter_client, copter)
    since = copter_client.mark()
    goto(copter_client, *geo.offset(*HOME, 300, 0), 30)  # straight through the zone
    breach = await copter_client.expect(
        "FENCE_STATUS", lambda m: m.breach_status == 1, since=since, timeout=20
    )
    assert breach.breach_type == M.FENCE_BREACH_BOUNDARY and breach.breach_count == 1
    await copter_client.expect("HEARTBEAT", lambda m: m.custom_mode == BRAKE, since=since)
    await copter.wait_for(lambda c: c.groundspeed_mps < 0.1, timeout=10)
    north, _ = geo.ne_of(*HOME, copter.lat, copter.lon)
    assert 150 <= north < 190  # BRAKE stops at 7.5 m/s/s: about 32 m from 22 m/s
    assert any(t.startswith("Fence breached") for t in copter.statustexts)


async def test_gcs_link_loss_triggers_rtl_counting_only_our_gcs(copter_fleet: SimCopterFleet):
    copter = copter_fleet.vehicles[0]
    gcs = await CopterClient.connect(copter_fleet.tcp_ports[0])
    other = await CopterClient.connect(copter_fleet.tcp_ports[0], sysid=200)  # not MAV_GCS_SYSID

    async def beat(client: CopterClient) -> None:
        while True:
            client.heartbeat()
            await asyncio.sleep(0.02)  # 1 Hz of simulated time at speed-up 20 is every 50 ms

    beats = [asyncio.create_task(beat(gcs)), asyncio.create_task(beat(other))]
    try:
        await set_param(gcs, "FS_GCS_ENABLE", 1)
        await take_off(gcs, copter)
        goto(gcs, *geo.offset(*HOME, 300, 0), 30)
        await copter.wait_for(lambda c: c.groundspeed_mps > 5, timeout=10)
        beats[0].cancel()
        await gcs.close()  # the GCS link is cut; the other client keeps beating
        t_cut = copter.time_s
        await copter.wait_for(lambda c: c.mode == "RTL", timeout=5)
        assert (
            4.4 <= copter.time_s - t_cut <= 6.0
        )  # FS_GCS_TIMEOUT 5 s after the last heartbeat (sent <= 0.4 s earlier)
        assert "GCS Failsafe" in copter.statustexts  # Copter::announce_failsafe, no action named
        await copter.wait_for(lambda c: not c.armed, timeout=60)
        assert geo.distance_m(copter.lat, copter.lon, *HOME) < 2.0
    finally:
        for task in beats:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await other.close()


async def test_arming_in_auto_is_refused(copter_fleet: SimCopterFleet, copter_client: CopterClient):
    mission = [item(M.MAV_CMD_NAV_WAYPOINT, *HOME, 0), item(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 10)]
    assert await upload(copter_client, mission) == M.MAV_MISSION_ACCEPTED
    assert await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, 3) == M.MAV_RESULT_ACCEPTED
    since = copter_client.mark()
    assert await copter_client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_FAILED
    text = await copter_client.expect("STATUSTEXT", since=since)
    assert text.text == "Arm: AUTO mode not armable"  # AP_Arming_Copter::arm_checks: "%s mode not armable"
    # without a mission AUTO is still accepted while disarmed, and the pre-arm checks say what is missing
    assert await upload(copter_client, mission[:1]) == M.MAV_MISSION_ACCEPTED
    assert await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, 0) == M.MAV_RESULT_ACCEPTED
    assert await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, 3) == M.MAV_RESULT_ACCEPTED
    since = copter_client.mark()
    assert await copter_client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_FAILED
    text = await copter_client.expect("STATUSTEXT", since=since)
    assert text.text == "Arm: Mode requires mission"  # AP_Arming::mission_checks


# ---- FS_OPTIONS on GCS loss (ArduCopter/events.cpp Copter::failsafe_gcs_on_event) -------------------------
FS_CONTINUE_AUTO, FS_CONTINUE_PILOT = (
    2,
    16,
)  # FailsafeOption::GCS_CONTINUE_IF_AUTO, GCS_CONTINUE_IF_PILOT_CONTROL


class Gcs:
    """The controller: heartbeats (sysid 255) until `cut()`, and a watcher on another sysid that stays."""

    def __init__(self, fleet: SimCopterFleet) -> None:
        self.fleet = fleet

    async def __aenter__(self) -> Gcs:
        port = self.fleet.tcp_ports[0]
        self.client = await CopterClient.connect(port)
        self.watch = await CopterClient.connect(port, sysid=200)  # not MAV_GCS_SYSID: never counts
        self._beat = asyncio.create_task(self._beats())
        await self.client.expect("HEARTBEAT", timeout=5)
        return self

    async def _beats(self) -> None:
        while True:
            self.client.heartbeat()
            await asyncio.sleep(0.01)  # FS_GCS_TIMEOUT 5 s is 125 ms at x40: beat far faster

    async def cut(self) -> float:
        """The controller goes away for good (a restart, a crash); returns the copter's time."""
        self._beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._beat
        await self.client.close()
        return self.fleet.vehicles[0].time_s

    async def __aexit__(self, *exc: object) -> None:
        self._beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._beat
        await self.client.close()
        await self.watch.close()


def _delivery_mission() -> list[mavlink.MAVLink_mission_item_int_message]:
    """Take off, three waypoints 300 m apart, land at the last (a delivery's shape)."""
    wps = [geo.offset(*HOME, 300, 0), geo.offset(*HOME, 600, 0), geo.offset(*HOME, 600, 300)]
    return [
        item(M.MAV_CMD_NAV_WAYPOINT, *HOME, 0),
        item(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 20),
        *(item(M.MAV_CMD_NAV_WAYPOINT, *wp, 20) for wp in wps),
        item(M.MAV_CMD_NAV_LAND, *wps[-1], 0),
    ]


async def _fly_auto(gcs: Gcs, copter: SimCopter) -> None:
    mission = _delivery_mission()
    assert await upload(gcs.client, mission) == M.MAV_MISSION_ACCEPTED
    assert await gcs.client.command(M.MAV_CMD_DO_SET_MODE, 1, GUIDED) == M.MAV_RESULT_ACCEPTED
    assert await gcs.client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    assert await gcs.client.command(M.MAV_CMD_MISSION_START) == M.MAV_RESULT_ACCEPTED
    await copter.wait_for(lambda c: c.mode == "AUTO" and c.alt_m > 15, timeout=20)


async def test_gcs_loss_in_auto_with_fs_options_bit_1_keeps_flying_the_mission():
    """FS_OPTIONS 2: "GCS Failsafe - Continuing Auto Mode" and FailsafeAction::NONE; the mission items keep
    being reached (MISSION_ITEM_REACHED) and the copter lands where the mission says, never leaving AUTO."""
    params = {"FS_GCS_ENABLE": 1, "FS_OPTIONS": FS_CONTINUE_AUTO}
    async with SimCopterFleet(1, base_port=0, speedup=40, params=params, boot_s=0) as fleet:
        copter = fleet.vehicles[0]
        async with Gcs(fleet) as gcs:
            await _fly_auto(gcs, copter)
            since = gcs.watch.mark()
            t_cut = await gcs.cut()  # the controller is gone, and stays gone
            text = await gcs.watch.expect(
                "STATUSTEXT", lambda m: m.text.startswith("GCS Failsafe"), since=since, timeout=10
            )
            assert text.text == "GCS Failsafe - Continuing Auto Mode"  # Copter::announce_failsafe
            assert text.severity == M.MAV_SEVERITY_WARNING
            assert 4.4 <= copter.time_s - t_cut <= 6.5  # FS_GCS_TIMEOUT (5 s) after the last heartbeat
            after = gcs.watch.mark()
            await copter.wait_for(lambda c: not c.armed, timeout=60)
            reached = [m.seq for m in gcs.watch.log[after:] if m.get_type() == "MISSION_ITEM_REACHED"]
            assert {3, 4} <= set(reached) and reached[-1] == 4  # waypoints after the failsafe, to the last
            modes = {m.custom_mode for m in gcs.watch.log[since:] if m.get_type() == "HEARTBEAT"}
            assert modes == {3}  # AUTO throughout
            assert copter.failsafes.gcs  # still on: nobody heartbeats; no action was taken
            assert geo.distance_m(copter.lat, copter.lon, *geo.offset(*HOME, 600, 300)) < 1.0


async def test_gcs_loss_in_auto_without_bit_1_returns_to_launch():
    """ArduCopter's default FS_OPTIONS (16, pilot-controlled modes only): AUTO is an autopilot mode, so
    FS_GCS_ENABLE 1 takes the copter home (RTL) and the rest of the mission is never flown."""
    async with SimCopterFleet(1, base_port=0, speedup=40, params={"FS_GCS_ENABLE": 1}, boot_s=0) as fleet:
        copter = fleet.vehicles[0]
        assert copter.params["FS_OPTIONS"] == FS_CONTINUE_PILOT
        async with Gcs(fleet) as gcs:
            await _fly_auto(gcs, copter)
            since = gcs.watch.mark()
            await gcs.cut()
            said = await gcs.watch.expect(
                "STATUSTEXT", lambda m: m.text.startswith("GCS Failsafe"), since=since, timeout=10
            )
            assert said.text == "GCS Failsafe"  # no action named: the mode change says it
            await copter.wait_for(lambda c: c.mode == "RTL", timeout=5)
            await copter.wait_for(lambda c: not c.armed, timeout=60)
            reached = [m.seq for m in gcs.watch.log[since:] if m.get_type() == "MISSION_ITEM_REACHED"]
            assert 5 not in reached and geo.distance_m(copter.lat, copter.lon, *HOME) < 2.0


@pytest.mark.parametrize(
    ("mode", "fs_options", "after", "text"),
    [
        ("GUIDED", FS_CONTINUE_AUTO, "RTL", "GCS Failsafe"),  # bit 1 is for AUTO only
        ("LOITER", FS_CONTINUE_AUTO, "RTL", "GCS Failsafe"),
        ("LOITER", FS_CONTINUE_AUTO | FS_CONTINUE_PILOT, "LOITER", "GCS Failsafe - Continuing Pilot Control"),
        (
            "GUIDED",
            FS_CONTINUE_AUTO | FS_CONTINUE_PILOT,
            "RTL",
            "GCS Failsafe",
        ),  # GUIDED is an autopilot mode
    ],
)
async def test_gcs_loss_outside_auto_still_acts(mode: str, fs_options: int, after: str, text: str):
    params = {"FS_GCS_ENABLE": 1, "FS_OPTIONS": fs_options}
    async with SimCopterFleet(1, base_port=0, speedup=40, params=params, boot_s=0) as fleet:
        copter = fleet.vehicles[0]
        async with Gcs(fleet) as gcs:
            await take_off(gcs.client, copter, alt=20)
            if mode == "LOITER":
                assert await gcs.client.command(M.MAV_CMD_DO_SET_MODE, 1, 5) == M.MAV_RESULT_ACCEPTED
            since = gcs.watch.mark()
            await gcs.cut()
            said = await gcs.watch.expect(
                "STATUSTEXT", lambda m: m.text.startswith("GCS Failsafe"), since=since, timeout=10
            )
            assert said.text == text
            await copter.wait_for(lambda c: c.mode == after, timeout=5)
            await asyncio.sleep(0.1)  # 4 s of the copter's time: no second action
            assert copter.mode == after and copter.armed


async def test_gcs_loss_on_the_ground_disarms_and_disarmed_only_says_so():
    """Armed on the ground (should_disarm_on_failsafe): "GCS Failsafe - Disarming", whatever FS_OPTIONS;
    disarmed: "GCS Failsafe" and nothing else (failsafe_gcs_on_event, `!motors->armed()`)."""
    params = {"FS_GCS_ENABLE": 1, "FS_OPTIONS": FS_CONTINUE_AUTO | FS_CONTINUE_PILOT}
    async with SimCopterFleet(1, base_port=0, speedup=40, params=params, boot_s=0) as fleet:
        copter = fleet.vehicles[0]
        async with Gcs(fleet) as gcs:
            assert await gcs.client.command(M.MAV_CMD_DO_SET_MODE, 1, GUIDED) == M.MAV_RESULT_ACCEPTED
            assert await gcs.client.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
            since = gcs.watch.mark()
            await gcs.cut()  # before DISARM_DELAY (10 s) could disarm it
            said = await gcs.watch.expect(
                "STATUSTEXT", lambda m: m.text.startswith("GCS Failsafe"), since=since, timeout=10
            )
            assert said.text == "GCS Failsafe - Disarming" and not copter.armed
    async with SimCopterFleet(1, base_port=0, speedup=40, params=params, boot_s=0) as fleet:
        copter = fleet.vehicles[0]
        async with Gcs(fleet) as gcs:
            since = gcs.watch.mark()
            await gcs.cut()
            said = await gcs.watch.expect(
                "STATUSTEXT", lambda m: m.text.startswith("GCS Failsafe"), since=since, timeout=10
            )
            assert said.text == "GCS Failsafe" and copter.mode == "STABILIZE" and not copter.armed


async def test_rtl_takes_the_nearer_of_home_and_a_rally_point_within_rally_limit_km(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    """AP_Rally::calc_best_rally_or_home_location with RALLY_LIMIT_KM (copter default 0.3) and
    RALLY_INCL_HOME (default 1)."""
    copter = copter_fleet.vehicles[0]
    copter_fleet.set_speedup(50)
    rally = geo.offset(*HOME, 500, 100)
    points = [item(M.MAV_CMD_NAV_RALLY_POINT, *rally, 20)]
    assert await upload(copter_client, points, M.MAV_MISSION_TYPE_RALLY) == M.MAV_MISSION_ACCEPTED
    await take_off(copter_client, copter)
    assert copter.nav.rtl_return_point() == (copter.home[0], copter.home[1])  # 510 m: beyond 0.3 km
    goto(copter_client, *geo.offset(*HOME, 450, 0), 30)
    await copter.wait_for(lambda c: geo.distance_m(c.lat, c.lon, *HOME) > 440, timeout=20)
    await set_param(copter_client, "RALLY_LIMIT_KM", 0.0625)  # exact in float32
    assert copter.nav.rtl_return_point() == (copter.home[0], copter.home[1])  # ~110 m: beyond 62.5 m
    await set_param(copter_client, "RALLY_LIMIT_KM", 0)  # no limit: the nearer one, the rally point
    assert await copter_client.command(M.MAV_CMD_DO_SET_MODE, 1, RTL) == M.MAV_RESULT_ACCEPTED
    await copter.wait_for(lambda c: not c.armed, timeout=30)
    assert geo.distance_m(copter.lat, copter.lon, *rally) < 1.0
