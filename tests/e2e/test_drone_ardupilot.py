"""Deliveries, failsafes and signing against the selected copter target: real ArduCopter SITL or ours.

Every test here carries `@pytest.mark.ardupilot`: with `ARDUPILOT_SITL` naming an `arducopter` SITL build
they fly the real autopilot (`sitl.ardupilot.ArduPilotSitl`), otherwise the built-in simulator, and the run's
header and summary say which (tests/conftest.py). Nothing here reads simulator internals: every assertion
uses what the drone itself reported over MAVLink, so the same test holds for both targets.

`pytest -m ardupilot` runs just these (plus the two short target flights in tests/sitl and tests/e2e).
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
from pathlib import Path

import httpx
import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from controller.missions.drone import DeliveryPlan, FencePlan, abort_delivery, fly_delivery
from controller.tokens import hash_tokens, toml_inline
from sitl.ardupilot import copter_target, open_copters
from tests.e2e.serving import free_port
from vehicles.mavlink import RALLY, DroneDriver, key_from_passphrase

pytestmark = [pytest.mark.ardupilot, pytest.mark.slow, pytest.mark.timeout(300)]

# Real SITL keeps up at 20x on two cores; the built-in simulator flies the same tests at 40x.
SPEEDUP = 20 if copter_target().kind == "ardupilot" else 40
HOME = (33.4484, -112.2590, 300.0, 0.0)
STATION = HOME[:2]
M_PER_DEG = 111_320.0


def _north(m: float, east_m: float = 0.0) -> tuple[float, float]:
    return (STATION[0] + m / M_PER_DEG,
            STATION[1] + east_m / (M_PER_DEG * math.cos(math.radians(STATION[0]))))  # fmt: skip


def _dist_m(a, b) -> float:
    lat = math.radians((a[0] + b[0]) / 2)
    return 6371000.0 * math.hypot(math.radians(b[0] - a[0]), math.radians(b[1] - a[1]) * math.cos(lat))


def _plan(destination, **kw) -> DeliveryPlan:
    kw.setdefault("gcs_timeout_s", 30.0)
    kw.setdefault("cruise_alt_m", 30.0)
    return DeliveryPlan(
        package_id="pkg-a", vehicle_id="drone-a", station=STATION, waypoints_out=[], destination=destination,
        waypoints_back=[], payload_kg=0.5, **kw,
    )  # fmt: skip


def _driver() -> DroneDriver:
    # FS_GCS counts the drone's (sped-up) seconds: a GCS heartbeat every 0.1 s wall is 2-4 s of drone time.
    return DroneDriver(heartbeat_period_s=0.1, link_timeout_s=2.0, connect_timeout_s=60.0)


def _released(result) -> dict:
    released = [e for e in result.events if e["event"] == "released"]
    assert len(released) == 1, [e for e in result.events if e["event"] in ("StatusText", "released")]
    return released[0]


@pytest.mark.parametrize("release", ["gripper", "winch", "payload_place"])
async def test_a_delivery_is_reported_only_when_the_drone_says_the_package_left(release: str):
    destination = _north(300, 150)
    async with open_copters(1, home=HOME, speedup=SPEEDUP) as copters, _driver() as driver:
        drone = await driver.add("drone-a", copters.urls()[0])
        texts: list[tuple[str, float | None]] = []  # (text, altitude then), heard by the test itself
        drone.telemetry.on_event(
            lambda ev: texts.append((ev.text, drone.state.alt_m)) if hasattr(ev, "text") else None
        )
        result = await fly_delivery(drone, _plan(destination, release=release), ready_timeout_s=120)

    assert result.delivered and result.returned, result.reason
    released = _released(result)
    assert released["text"].startswith("Gripper load releas")  # AP_Gripper_Servo's own words
    assert _dist_m(result.release_position, destination) < 5.0
    opened_alt = next(alt for text, alt in texts if text.startswith("Gripper load releas"))
    if release == "payload_place":
        # ArduCopter descended until it sensed touchdown, then opened the gripper on the ground
        assert any(text.startswith("PayloadPlace:") for text, _ in texts)
        assert opened_alt is not None and opened_alt < 1.5
    else:
        assert opened_alt is not None and abs(opened_alt - 5.0) < 1.5  # at the plan's delivery altitude
    assert not any("Reached maximum descent" in text for text, _ in texts)


async def test_a_payload_place_that_gives_up_is_a_failed_delivery_with_the_drones_reason():
    """param1 is the maximum descent; 5 m from 30 m cannot reach the ground, so ArduCopter climbs back
    with the package (mode_auto.cpp PayloadPlace::run) and still completes the mission item."""
    async with open_copters(1, home=HOME, speedup=SPEEDUP) as copters, _driver() as driver:
        drone = await driver.add("drone-a", copters.urls()[0])
        plan = _plan(_north(250), release="payload_place", max_descent_m=5.0)
        result = await fly_delivery(drone, plan, ready_timeout_s=120)
    assert not result.delivered and result.reason_code == "release_failed", result.reason
    assert "Reached maximum descent" in result.reason
    assert result.returned
    assert any(e["event"] == "MissionItemReached" for e in result.events)  # progress alone proves nothing


async def test_a_fence_breach_turns_the_drone_home_and_is_reported():
    # The planner never does this: the plan's straight line crosses an exclusion circle the drone holds.
    destination = _north(600)
    fence = FencePlan(exclusion_circles=[(_north(300), 60.0)], ceiling_m=100.0)
    async with open_copters(1, home=HOME, speedup=SPEEDUP) as copters, _driver() as driver:
        drone = await driver.add("drone-a", copters.urls()[0])
        result = await fly_delivery(drone, _plan(destination, fence=fence), ready_timeout_s=120)
    assert not result.delivered and result.reason_code == "fence_breach", result.reason
    assert any(e["event"] == "FenceBreach" for e in result.events)
    assert any(e["event"] == "ModeChanged" and e["new"] in ("RTL", "LAND") for e in result.events)
    assert not any(e["event"] == "released" for e in result.events)


async def test_the_battery_failsafe_brings_the_drone_back_with_the_package():
    # A reserve of 97 %: BATT_LOW_MAH is 97 % of the pack, so a few minutes of flight cross it.
    async with open_copters(1, home=HOME, speedup=SPEEDUP) as copters, _driver() as driver:
        drone = await driver.add("drone-a", copters.urls()[0])
        plan = _plan(_north(3000), reserve_fraction=0.97)
        result = await fly_delivery(drone, plan, ready_timeout_s=120)
    assert not result.delivered and result.reason_code == "battery_failsafe", result.reason
    assert "Battery 1 is low" in result.reason  # AP_BattMonitor's own words
    assert any(e["event"] == "ModeChanged" and e["new"] == "RTL" for e in result.events)
    assert result.returned and not any(e["event"] == "released" for e in result.events)


async def test_a_signed_drone_flies_for_its_key_holder_and_ignores_unsigned_commands():
    """Signing as ArduPilot enforces it (libraries/GCS_MAVLink/GCS_Signing.cpp): once a drone holds a key,
    a telemetry link (SERIAL1) drops unsigned commands; channel 0 (SERIAL0, USB on a flight controller)
    is taken as the secure local port and still accepts them (`accept_unsigned_callback`)."""
    key = key_from_passphrase("station-tolleson/drone-a")
    async with open_copters(1, home=HOME, speedup=SPEEDUP) as copters, _driver() as driver:
        drone = await driver.add("drone-a", copters.telemetry_urls()[0])
        await drone.wait_ready(120)
        await drone.provision_signing(key)
        assert await _unsigned_set_mode(drone, "LOITER") is None  # dropped: no answer at all
        assert drone.state.mode != "LOITER"
        local = await driver.add("console", copters.urls()[0])  # the trusted channel 0, unsigned
        assert await _unsigned_set_mode(local, "LOITER") == mavlink.MAV_RESULT_ACCEPTED
        await local.set_mode("STABILIZE")
        await driver.remove("console")
        result = await fly_delivery(drone, _plan(_north(250)), ready_timeout_s=120)
    assert result.delivered and result.returned, result.reason


async def _unsigned_set_mode(drone, mode: str) -> int | None:
    """Send one DO_SET_MODE without a signature; the COMMAND_ACK's result, or None when none comes."""
    conn = drone.conn
    signing = conn.mav.signing
    was = signing.sign_outgoing
    signing.sign_outgoing = False
    try:
        command = mavlink.MAV_CMD_DO_SET_MODE
        number = {"LOITER": 5, "STABILIZE": 0}[mode]
        target = (conn.target_system, conn.target_component)
        msg = conn.mav.command_long_encode(
            *target, command, 0, mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, number, 0, 0, 0, 0, 0
        )
        ack = conn.expect("COMMAND_ACK", lambda m: m.command == command)
        conn.send(msg)
        try:
            return (await conn.wait_for_future(ack, 1.5)).result
        except TimeoutError:
            return None
    finally:
        signing.sign_outgoing = was


async def test_rally_points_are_uploaded_and_rtl_lands_at_the_nearer_one():
    """RTL returns to the nearest of home and the rally points (RALLY_INCL_HOME 1,
    libraries/AP_Rally/AP_Rally.cpp calc_best_rally_or_home_location)."""
    rally = _north(500, 100)
    async with open_copters(1, home=HOME, speedup=SPEEDUP) as copters, _driver() as driver:
        drone = await driver.add("drone-a", copters.urls()[0])
        plan = _plan(_north(700), rally=[(*rally, 20.0)])
        flight = asyncio.create_task(fly_delivery(drone, plan, ready_timeout_s=120))
        await drone.conn.wait_for(
            "GLOBAL_POSITION_INT", lambda m: (m.lat / 1e7 - STATION[0]) * M_PER_DEG > 420, timeout_s=120
        )
        await abort_delivery(drone)  # RTL, nearer the rally point than the station
        result = await asyncio.wait_for(flight, 180)
        stored = await drone.missions.download(RALLY)
    assert [(round(i.lat, 6), round(i.lon, 6)) for i in stored] == [(round(rally[0], 6), round(rally[1], 6))]
    assert result.reason_code == "aborted" and not result.returned and not result.delivered
    assert _dist_m((drone.state.lat, drone.state.lon), rally) < 10.0  # landed at the alternate site


async def test_three_drones_on_a_non_default_base_port_each_answer_on_their_own_port():
    base = free_port(span=3)
    async with open_copters(3, home=HOME, speedup=SPEEDUP, base_port=base) as copters, _driver() as driver:
        assert copters.tcp_ports == [base, base + 10, base + 20]
        drones = [await driver.add(f"d{i}", url) for i, url in enumerate(copters.urls())]
        assert [d.sysid for d in drones] == [1, 2, 3]
        for d in drones:
            assert await d.params.get(d.param_name("MAV_SYSID")) == d.sysid
        await asyncio.gather(*(d.wait_ready(120) for d in drones))


async def test_a_package_posted_to_lastmile_serve_is_flown_and_delivered(tmp_path: Path):
    """The whole controller in its own process (`lastmile serve`), the copter target in ours."""
    api_port = free_port()
    token = "ardupilot-op"
    async with open_copters(1, home=HOME, speedup=SPEEDUP) as copters:
        station = tmp_path / "station.toml"
        station.write_text(
            f'name = "sitl"\nlat = {STATION[0]}\nlon = {STATION[1]}\nalt_m = {HOME[2]}\ntick_s = 1.0\n'
            f'vehicle_speedup = {SPEEDUP}\nstore_url = "sqlite:///{tmp_path / "s.sqlite3"}"\n'
            f'[api]\nhost = "127.0.0.1"\nport = {api_port}\n'
            f'tokens = {toml_inline(hash_tokens({token: "operator"}))}\n'
            f'[[fleet]]\nid = "d1"\nkind = "drone"\nurl = "{copters.urls()[0]}"\n'
        )
        log = (tmp_path / "serve.log").open("wb")
        serve = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controller", "serve", "--station", str(station),
            stdout=asyncio.subprocess.DEVNULL, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", headers=headers) as client:
                await _until_listening(client, serve)
                lat, lon = _north(400, 200)
                body = {"key": "sitl-1", "weight": 0.8, "dest_lat": lat, "dest_lon": lon}
                posted = (await client.post("/v1/packages", json=body)).json()
                assert posted["decision"]["vehicle_id"] == "d1", posted
                package = await _until_final(client, posted["id"], timeout_s=240)
        finally:
            serve.terminate()
            await serve.wait()
            log.close()
    assert package["state"] == "delivered", (package, (tmp_path / "serve.log").read_text()[-2000:])


async def _until_listening(client: httpx.AsyncClient, serve) -> None:
    async with asyncio.timeout(60):
        while True:
            if serve.returncode is not None:
                raise RuntimeError(f"lastmile serve exited with {serve.returncode}")
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)  # nothing to wait on before the server listens


async def _until_final(client: httpx.AsyncClient, package_id: str, timeout_s: float) -> dict:
    """Follow the controller's long-polled event feed until the package is delivered or failed for good."""
    since = 0
    async with asyncio.timeout(timeout_s):
        while True:
            package = (await client.get(f"/v1/packages/{package_id}")).json()
            if package["state"] in ("delivered", "van"):
                return package
            page = (await client.get("/v1/events/recent", params={"since": since})).json()
            since = page["last_seq"]
            await asyncio.sleep(0.25)
