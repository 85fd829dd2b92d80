"""A drone's link cut mid-flight: for 10 s and then back, and for good. Each test ends with the fault suite's
accounting over every key it submitted (tests/faults/accounting.py).

A station as `lastmile serve` runs it, in process: `connect_fleet` links two simulated copters over real
TCP MAVLink, each through a relay the test can cut (tests/relays.py), and `StationService` plans and flies
on a store. The cut drone is flying a delivery in AUTO; with the station's default
`drones_continue_without_controller` (ArduCopter FS_OPTIONS bit 1) it flies on without its controller, drops
the parcel at the door and comes home on its own. What the controller must record is therefore decided by
the simulator's truth (was the parcel released?), never by what the controller happened to hear. The 10 s
cut runs on SQLite and on PostgreSQL (`LASTMILE_TEST_POSTGRES_URL`), the others on SQLite.

- Cut for 10 s (200 s of drone time, longer than FS_GCS_TIMEOUT), then back: the controller re-attaches and
  records the delivery once; the other drone takes the parcel submitted meanwhile; nothing is booked twice.
- Cut for good: the drone drops the parcel, flies back to its holding point and waits there for its
  timed wait (NAV_LOITER_TIME, the `max_hold_s` its battery was planned for), then lands on its booked pad
  by itself. (Before the wait was timed it circled there, NAV_LOITER_UNLIM, until its battery failsafe:
  measured once, about 46 min of drone time, then RTL at 25 % charge to wherever home was.) The controller
  cannot know the parcel left: its flight stays open (`link_lost_timeout_s`, 600 s) and says why: the one
  open mission is the cut drone's, the package is en route, the drone shows offline and its `LinkLost` is
  on the event bus. No other package is given to the silent drone meanwhile.
- The timed wait is only for a drone left alone: with its controller there and no pad free (the station
  closed, no rally point), the drone is told to wait on and holds well past its own bound, then lands once
  the station opens.
- The controller's own link ends during mission upload (a controller change before take-off: the package
  is `launching`, the drone still disarmed on the ground). The next controller must put the package back
  in the queue as not launched, not record a failed flight "the drone came back with the package": that
  costs one of the package's `max_attempts` for a flight that never happened. xfail (strict): it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from controller.packages import PackageIn
from controller.service import StationService
from controller.service.runtime import connect_fleet
from controller.station import StationConfig
from controller.store import Store
from sitl.copter import SimCopter, SimCopterFleet
from tests.faults.accounting import account
from tests.relays import TcpRelay

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

STATION = (33.4400, -112.2560)
SPEEDUP = 20  # FS_GCS_TIMEOUT is max(5, 2 x speed-up) = 40 drone seconds: 2 s of wall time
CUT_S = 10.0
HOLD_S = 40.0  # the wait at the holding point (drone seconds): short, so the timed waits run out quickly


def at(east_m: float, north_m: float) -> tuple[float, float]:
    lat = STATION[0] + north_m / 111_320.0
    lon = STATION[1] + east_m / (111_320.0 * math.cos(math.radians(STATION[0])))
    return lat, lon


def parcel(key: str, east_m: float, north_m: float, weight: float = 1.0) -> PackageIn:
    lat, lon = at(east_m, north_m)
    return PackageIn(key=key, weight=weight, dest_lat=lat, dest_lon=lon)


async def until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll `check` until it returns something truthy (its value), at most `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            while not (value := check()):  # noqa: ASYNC110 (the simulator and the service move on their own)
                await asyncio.sleep(0.05)
            return value
    except TimeoutError:
        raise TimeoutError(f"not within {timeout_s} s: {what}") from None


@dataclass
class Station:
    service: StationService
    store: Store
    copters: dict[str, SimCopter]
    relays: dict[str, TcpRelay]


@contextlib.asynccontextmanager
async def fleet_behind_relays() -> AsyncIterator[tuple[SimCopterFleet, dict[str, TcpRelay]]]:
    """Two simulated copters, each behind a relay of its own (`d1`, `d2`)."""
    params = {"DISARM_DELAY": 2.0 * SPEEDUP}  # arming to take-off waits on us in wall time (as SimStation)
    async with (
        SimCopterFleet(2, home=(*STATION, 300.0, 0.0), speedup=SPEEDUP, base_port=0, params=params) as fleet,
        contextlib.AsyncExitStack() as stack,
    ):
        relays: dict[str, TcpRelay] = {}
        for i, port in enumerate(fleet.tcp_ports):
            relay = TcpRelay(port)
            await relay.start()
            stack.push_async_callback(relay.aclose)
            relays[f"d{i + 1}"] = relay
        yield fleet, relays


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The station's store: a SQLite file, and a fresh PostgreSQL schema (`postgres_url`)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


def config(store_url: str, relays: dict[str, TcpRelay]) -> StationConfig:
    return StationConfig.model_validate({
        "name": "link faults", "lat": STATION[0], "lon": STATION[1], "alt_m": 300.0, "tick_s": 0.5,
        "vehicle_speedup": SPEEDUP, "store_url": store_url,
        "fleet": [{"id": vid, "kind": "drone", "url": r.url} for vid, r in relays.items()],
        "airspace": {"max_hold_s": HOLD_S},
    })  # fmt: skip


@contextlib.asynccontextmanager
async def controller(
    cfg: StationConfig, store: Store, fleet: SimCopterFleet
) -> AsyncIterator[StationService]:
    """One controller's life, as `lastmile serve` runs it: link the fleet, run the service, go away."""
    async with contextlib.AsyncExitStack() as stack:
        carriers = await connect_fleet(cfg, stack)
        service = StationService(cfg, store, carriers=carriers, drone_clock=lambda: fleet.sim_time_s)
        yield await stack.enter_async_context(service)


@contextlib.asynccontextmanager
async def station(store_url: str) -> AsyncIterator[Station]:
    """Two copters behind relays, linked and flown by one `StationService` on the store at `store_url`."""
    async with fleet_behind_relays() as (fleet, relays):
        cfg = config(store_url, relays)
        store = Store(cfg.store_url)
        try:
            async with controller(cfg, store, fleet) as service:
                copters = {f"d{i + 1}": c for i, c in enumerate(fleet.vehicles)}
                yield Station(service, store, copters, relays)
        finally:
            store.close()


async def launch_and_cut(st: Station, key: str) -> tuple[str, str, SimCopter, float]:
    """Submit `key` for a drone, load it, wait until it cruises in AUTO and cut its link; returns the
    package id, the drone's id, its copter and when the link was cut."""
    [(package, _, _)] = await st.service.submit([parcel(key, 0, 3000)])
    vid = await until(lambda: st.store.get(package.id).vehicle_id, 20, f"{key} assigned to a drone")
    copter = st.copters[vid]
    copter.set_payload(1.0)  # the station crew loads it
    await until(lambda: copter.mode == "AUTO" and copter.alt_m > 30, 60, f"{vid} cruising in AUTO")
    st.relays[vid].cut()
    return package.id, vid, copter, time.monotonic()


def states(st: Station, package_id: str) -> list[str]:
    return [e.to_state.value for e in st.store.history(package_id)]


def sim_s(copter: SimCopter) -> float:
    """The copter's own clock (simulated seconds)."""
    return copter.time_s


def metres(copter: SimCopter, item: Any) -> float:
    """Horizontal distance from the copter to a mission item's position."""
    dn = (copter.lat - item.lat) * 111_320.0
    de = (copter.lon - item.lon) * 111_320.0 * math.cos(math.radians(copter.lat))
    return math.hypot(dn, de)


async def test_a_link_cut_for_10_s_mid_flight_ends_in_one_delivery_and_the_other_drone_flies_on(
    store_url: str,
) -> None:
    async with station(store_url) as st:
        [(heavy, _, _)] = await st.service.submit([parcel("heavy", 500, 500, weight=12.0)])  # van at once
        pid, vid, copter, cut_at = await launch_and_cut(st, "cut")
        carrier = st.service.carriers[vid]
        await until(lambda: not carrier.snapshot().online, 10, f"the controller sees {vid}'s link down")
        # Submitted while the drone is silent: the other drone takes it, the silent one stays booked.
        [(meanwhile, _, _)] = await st.service.submit([parcel("meanwhile", 2000, 0)])
        other = await until(lambda: st.store.get(meanwhile.id).vehicle_id, 20, "meanwhile assigned")
        assert other != vid, (other, vid)
        st.copters[other].set_payload(1.0)
        # The parcel leaves while nobody listens: the controller must read the release from the drone's
        # mission progress once it is back, not from the release words it missed. (At least 10 s, and past
        # the drop: about 8 s of wall time after the cut on an idle machine.)
        await until(
            lambda: time.monotonic() - cut_at >= CUT_S and copter.payload_released_at is not None,
            2 * CUT_S, "10 s of cut, spanning the drop",
        )  # fmt: skip
        assert "GCS Failsafe - Continuing Auto Mode" in copter.statustexts  # the drone's own word
        assert copter.mode == "AUTO", copter.mode  # flew on without its controller (FS_OPTIONS bit 1)
        st.relays[vid].restore()

        done = {"delivered", "van", "received"}
        await until(lambda: st.store.get(pid).state.value in done, 60, f"the end of {vid}'s flight")
        await until(lambda: st.store.get(meanwhile.id).state.value in done, 60, "the end of the other flight")
        await until(lambda: not copter.armed and not st.copters[other].armed, 60, "both drones landed")

        released = copter.payload_released_at is not None  # the simulator's truth
        assert released, copter.statustexts
        assert carrier.snapshot().online  # re-attached
        await until(lambda: not st.store.missions(unfinished_only=True), 30, "the missions closed")
        result = account(st.store, ["heavy", "cut", "meanwhile"])
        result.check()
        assert result.verdicts() == {"heavy": "van", "cut": "delivered", "meanwhile": "delivered"}, states(
            st, pid
        )
        assert states(st, pid).count("launching") == 1  # delivered on its first attempt
        assert st.store.get(heavy.id).state.value == "van"


async def test_a_link_cut_for_good_mid_flight_leaves_one_honest_open_mission_and_no_double_booking(
    tmp_path: Path,
) -> None:
    async with station(f"sqlite:///{tmp_path / 'store.sqlite3'}") as st:
        since = st.service.bus.recent()[-1]["seq"] if st.service.bus.recent() else 0
        pid, vid, copter, _ = await launch_and_cut(st, "gone")
        carrier = st.service.carriers[vid]
        await until(lambda: not carrier.snapshot().online, 10, f"the controller sees {vid}'s link down")
        [(meanwhile, _, _)] = await st.service.submit([parcel("meanwhile", 2000, 0)])
        other = await until(lambda: st.store.get(meanwhile.id).vehicle_id, 20, "meanwhile assigned")
        assert other != vid, (other, vid)
        st.copters[other].set_payload(1.0)
        # The silent drone finishes its delivery on its own, unseen, and flies back to its holding point,
        # where it waits out its timed wait for a clearance nobody can send, then lands on its pad alone.
        await until(lambda: copter.payload_released_at is not None, 40, f"{vid} drops the parcel")
        await until(lambda: any("LoiterTime" in t for t in copter.statustexts), 40, f"{vid} holds")
        hold = copter.nav.auto.current
        waits = copter.missions.mission[hold]
        assert waits.command == mavlink.MAV_CMD_NAV_LOITER_TIME, waits
        pad = copter.missions.mission[hold + 1]  # the booked pad's NAV_LAND comes first
        await until(lambda: metres(copter, waits) < 3.0, 60, f"{vid} at its holding point")
        arrived = sim_s(copter)

        async def leaves() -> float:  # the moment it moves on, on its own clock, while the test goes on
            await until(lambda: copter.nav.auto.current == hold + 1, 60, f"{vid} leaves the point on its own")
            return sim_s(copter)

        leaving = asyncio.create_task(leaves())
        assert pad.command == mavlink.MAV_CMD_NAV_LAND, pad
        await until(lambda: st.store.get(meanwhile.id).state.value == "delivered", 60, "the other delivers")
        await until(lambda: not st.copters[other].armed, 30, "the other drone lands")
        open_of = st.store.missions
        await until(lambda: not open_of(package_id=meanwhile.id), 30, "its mission closed")
        # A parcel submitted now must not go to the drone the controller still thinks is flying.
        [(late, _, _)] = await st.service.submit([parcel("late", -1500, 0)])
        late_vid = await until(lambda: st.store.get(late.id).vehicle_id, 20, "late assigned")
        assert late_vid == other, late_vid

        why = f"{vid}'s link never came back: the controller cannot know the drone delivered and landed"
        result = account(st.store, ["gone", "meanwhile", "late"], open_ok={"gone": why, "late": "in flight"})
        result.check()
        # The one open mission of the silent drone, and it says why: offline, LinkLost on the bus.
        mine = [m for m in result.open_missions if m.package_id == pid]
        assert len(mine) == 1 and mine[0].vehicle_id == vid, result.open_missions
        assert st.store.get(pid).state.value == "en_route", states(st, pid)
        assert not carrier.snapshot().online
        # From the drone's own state: it waited its bound at the point (no longer: its own timer, nobody
        # told it), then landed on its pad by itself.
        waited = await leaving - arrived
        assert waits.param1 - 2 <= waited <= waits.param1 + 10, (waited, waits.param1)
        assert f"Reached command #{hold}" in copter.statustexts
        await until(lambda: not copter.armed, 60, f"{vid} lands on its pad and disarms")
        assert metres(copter, pad) < 3.0, metres(copter, pad)
        assert "RTL" not in copter.mode and copter.battery_remaining > 0.25  # not its battery failsafe
        said = [e for e in st.service.bus.recent(since) if e.get("vehicle_id") == vid]
        assert any(e.get("event") == "LinkLost" for e in said), said


async def test_a_drone_whose_controller_is_there_waits_past_its_own_bound_until_it_is_cleared(
    tmp_path: Path,
) -> None:
    async with station(f"sqlite:///{tmp_path / 'store.sqlite3'}") as st:
        [(package, _, _)] = await st.service.submit([parcel("held", 0, 2000)])
        vid = await until(lambda: st.store.get(package.id).vehicle_id, 20, "held assigned to a drone")
        copter = st.copters[vid]
        copter.set_payload(1.0)
        await until(lambda: copter.mode == "AUTO" and copter.alt_m > 30, 60, f"{vid} cruising in AUTO")
        await st.service.close_station("no pad free")  # no rally point here: it must wait at its point
        await until(lambda: any("LoiterTime" in t for t in copter.statustexts), 60, f"{vid} holds")
        hold = copter.nav.auto.current
        bound = copter.missions.mission[hold].param1
        held_from = sim_s(copter)
        await until(lambda: sim_s(copter) - held_from > 2.5 * bound, 60, "two and a half of its timed waits")
        assert copter.armed and copter.mode == "AUTO" and copter.nav.auto.current == hold  # told to wait on
        await st.service.open_station()
        await until(lambda: st.store.get(package.id).state.value == "delivered", 60, "held delivered")
        await until(lambda: not copter.armed, 60, f"{vid} lands once cleared")
        await until(lambda: not st.store.missions(unfinished_only=True), 30, "the mission closed")
        result = account(st.store, ["held"])
        result.check()


async def test_a_controller_change_during_mission_upload_does_not_cost_the_package_an_attempt(
    tmp_path: Path,
) -> None:
    async with fleet_behind_relays() as (fleet, relays):
        cfg = config(f"sqlite:///{tmp_path / 'store.sqlite3'}", relays)
        store = Store(cfg.store_url)
        try:
            copters = {f"d{i + 1}": c for i, c in enumerate(fleet.vehicles)}
            async with controller(cfg, store, fleet) as service:
                [(package, _, _)] = await service.submit([parcel("upload", 0, 2000)])
                pid = package.id
                await until(lambda: store.get(pid).state.value == "launching", 20, "launching")
                vid = store.get(pid).vehicle_id
                assert vid is not None and not copters[vid].armed  # uploading, on the ground
            # The controller is gone before the drone took off; the next one takes the station.
            assert not copters[vid].armed, "the drone took off: the stop came too late for this test"
            async with controller(cfg, store, fleet) as service:
                copters[vid].set_payload(1.0)
                await until(
                    lambda: store.get(pid).state.value in ("delivered", "van"), 60, "the parcel's end"
                )
                await until(lambda: not any(c.armed for c in copters.values()), 60, "every drone landed")
                await until(lambda: not store.missions(unfinished_only=True), 30, "the missions closed")
            result = account(store, ["upload"])
            result.check()
            events = store.history(pid)
            assert [e.to_state.value for e in events].count("failed") == 0, " -> ".join(
                f"{e.to_state.value}({e.reason})" for e in events
            )
        finally:
            store.close()
