"""Four drones, two pads, one planning tick: the station's airspace keeps them apart, measured from the
drones' own MAVLink telemetry (GLOBAL_POSITION_INT, stamped with each drone's clock), not from the plan.

Simulated copters over real TCP MAVLink, the real drivers and `StationService`. Two drones stand on each
pad (the pads are 8 m apart, so they share one column of air); the four packages go north, south, east
and west, so two pairs of routes are head-on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controller.airspace import AirspaceBusy
from controller.packages import PackageIn
from controller.simstation import SimStation
from controller.station import StationConfig
from vehicles.mavlink import Drone

STATION = (33.4400, -112.2560)
LAYERS = [40.0, 65.0, 90.0, 115.0]
SEP_H_M, SEP_V_M = 50.0, 15.0  # the loss-of-separation minima
SPEEDUP = 40  # the built-in simulator keeps up at 40x; its clock (not the wall) times the airspace


def at(east_m: float, north_m: float) -> tuple[float, float]:
    lat = STATION[0] + north_m / 111_320.0
    lon = STATION[1] + east_m / (111_320.0 * math.cos(math.radians(STATION[0])))
    return lat, lon


def local(lat: float, lon: float) -> tuple[float, float]:
    return (
        (lon - STATION[1]) * 111_320.0 * math.cos(math.radians(STATION[0])),
        (lat - STATION[0]) * 111_320.0,
    )


def config() -> StationConfig:
    p1, p2 = at(0, 0), at(8, 0)
    return StationConfig.model_validate({
        "name": "two pads", "lat": STATION[0], "lon": STATION[1], "alt_m": 300.0, "tick_s": 60.0,
        "fleet": [{"id": f"d{i}", "kind": "drone"} for i in range(1, 5)],
        "airspace": {
            "pads": [{"name": "P1", "lat": p1[0], "lon": p1[1]}, {"name": "P2", "lat": p2[0], "lon": p2[1]}],
            "layers_m": LAYERS, "pad_prep_s": 0, "max_delay_s": 900,
        },
    })  # fmt: skip


class Tracks:
    """Every GLOBAL_POSITION_INT each drone sends: (its boot time s, east m, north m, alt above home m)."""

    def __init__(self, drones: dict[str, Drone]) -> None:
        self.rows: dict[str, list[tuple[float, float, float, float]]] = {d: [] for d in drones}
        self._remove = [d.conn.add_listener(self._taker(vid)) for vid, d in drones.items()]

    def _taker(self, vehicle_id: str) -> Any:
        def take(msg: Any) -> None:
            if msg.get_type() == "GLOBAL_POSITION_INT" and (msg.lat or msg.lon):
                x, y = local(msg.lat / 1e7, msg.lon / 1e7)
                self.rows[vehicle_id].append((msg.time_boot_ms / 1000.0, x, y, msg.relative_alt / 1000.0))

        return take

    def close(self) -> None:
        for remove in self._remove:
            remove()

    def array(self, vehicle_id: str) -> np.ndarray:
        return np.array(sorted(self.rows[vehicle_id]))


async def north_of(drone: Drone, metres: float, timeout_s: float = 60.0) -> None:
    """Return once the drone's own position reports put it `metres` north of the station."""
    out = asyncio.Event()

    def watch(msg: Any) -> None:
        if msg.get_type() == "GLOBAL_POSITION_INT" and local(msg.lat / 1e7, msg.lon / 1e7)[1] > metres:
            out.set()

    remove = drone.conn.add_listener(watch)
    try:
        async with asyncio.timeout(timeout_s):
            await out.wait()
    finally:
        remove()


async def wait_delivered(station: SimStation, ids: set[str], timeout_s: float) -> None:
    assert station.service is not None
    pending = set(ids)
    async with asyncio.timeout(timeout_s), contextlib.aclosing(station.service.bus.subscribe()) as events:
        async for event in events:
            if event.get("type") == "package" and event.get("package_id") in pending:
                assert event["state"] not in ("failed", "van"), event
                if event["state"] == "delivered":
                    pending.discard(event["package_id"])
            if not pending:
                return


@pytest.mark.slow
async def test_four_drones_from_two_pads_lift_off_in_turn_and_cruise_on_their_layers(tmp_path: Path) -> None:
    cfg = config()
    pads = {"P1": local(*at(0, 0)), "P2": local(*at(8, 0))}
    async with SimStation(cfg, store_url=f"sqlite:///{tmp_path / 's.sqlite3'}", speedup=SPEEDUP) as station:
        service = station.service
        assert service is not None
        drones = {vid: c.drone for vid, c in service.carriers.items()}  # type: ignore[attr-defined]
        tracks = Tracks(drones)
        dests = {"north": (0, 1500), "south": (0, -1500), "east": (1500, 0), "west": (-1500, 0)}
        batch = [
            PackageIn(key=k, weight=1.0, dest_lat=at(*v)[0], dest_lon=at(*v)[1]) for k, v in dests.items()
        ]
        answers = await service.submit(batch)  # one submission: one planning pass decides all four
        decided = {p.key: d for p, _, d in answers}
        assert {d["decision"] for d in decided.values()} == {"drone"}, decided
        assert len({d["vehicle_id"] for d in decided.values()}) == 4
        vehicle_of = {k: d["vehicle_id"] for k, d in decided.items()}
        # delivered is recorded when the flight ends: the drone landed and disarmed
        await wait_delivered(station, {p.id for p, _, _ in answers}, timeout_s=120)
        tracks.close()

    t = {vid: tracks.array(vid) for vid in drones}
    airborne = {vid: a[a[:, 3] > 1.0] for vid, a in t.items()}
    # Each drone lifted off from the pad it stood on and came down on a pad.
    home_pad = {vid: ("P1", "P2")[i % 2] for i, vid in enumerate(sorted(drones))}  # SimStation's placement
    lift = {}
    for vid, a in airborne.items():
        assert len(a), f"{vid} never flew"
        lift[vid] = a[0, 0]
        assert math.dist(a[0, 1:3], pads[home_pad[vid]]) < 3.0, (vid, a[0])
        last = t[vid][-1]
        assert min(math.dist(last[1:3], p) for p in pads.values()) < 3.0, (vid, last)
    # One after another: the pads share a column, so no two lift-offs within the climb to the first layer.
    order = sorted(lift.values())
    assert all(b - a >= LAYERS[0] / 2.5 for a, b in itertools.pairwise(order)), order

    # Separation, measured: at every half second of drone time, every pair of airborne drones is at least
    # 50 m apart horizontally or 15 m vertically.
    grid = np.arange(min(order), max(a[-1, 0] for a in airborne.values()), 0.5)

    def where(vid: str) -> np.ndarray:
        a = airborne[vid]
        inside = (grid >= a[0, 0]) & (grid <= a[-1, 0])
        pos = np.column_stack([np.interp(grid, a[:, 0], a[:, k]) for k in (1, 2, 3)])
        pos[~inside] = np.nan
        return pos

    pos = {vid: where(vid) for vid in drones}
    ids = sorted(drones)
    closest = math.inf
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            h = np.hypot(*(pos[a][:, :2] - pos[b][:, :2]).T)
            v = np.abs(pos[a][:, 2] - pos[b][:, 2])
            both = ~np.isnan(h)
            lost = both & (h < SEP_H_M) & (v < SEP_V_M)
            assert not lost.any(), f"{a} and {b} within {h[lost].min():.0f} m / {v[lost].min():.0f} m"
            if both.any():
                closest = min(closest, float(h[both].min()))

    # Cruise on layers, by heading: away from the station, out and back, each drone is on a layer, and the
    # head-on pairs (north/south, east/west) are not on the same one.
    def cruise_alt(vid: str, outbound: bool) -> float:
        a = airborne[vid]
        far = np.hypot(a[:, 1], a[:, 2]) > 400.0
        turn = int(np.argmax(np.hypot(a[:, 1], a[:, 2])))
        idx = np.flatnonzero(far[:turn] if outbound else far[turn:]) + (0 if outbound else turn)
        return float(np.median(a[idx, 3]))

    out = {k: cruise_alt(vehicle_of[k], True) for k in dests}
    back = {k: cruise_alt(vehicle_of[k], False) for k in dests}
    for alt in [*out.values(), *back.values()]:
        assert min(abs(alt - layer) for layer in LAYERS) < 2.0, (out, back)
    assert abs(out["north"] - out["south"]) >= SEP_V_M and abs(out["east"] - out["west"]) >= SEP_V_M
    for k in dests:  # its own way home is not on its way out's layer either
        assert abs(out[k] - back[k]) >= SEP_V_M, (out, back)


def one_pad(**airspace: Any) -> StationConfig:
    return StationConfig.model_validate({
        "name": "one pad", "lat": STATION[0], "lon": STATION[1], "alt_m": 300.0, "tick_s": 1.0,
        "fleet": [{"id": "d1", "kind": "drone"}, {"id": "d2", "kind": "drone"}],
        "airspace": {"pad_prep_s": 0, "max_delay_s": 0, **airspace},
    })  # fmt: skip


async def test_a_flight_with_no_slot_soon_enough_waits_as_airspace_busy_with_the_time_it_frees(
    tmp_path: Path,
) -> None:
    async with (
        SimStation(one_pad(), store_url=f"sqlite:///{tmp_path / 's.sqlite3'}", speedup=20) as station,
        contextlib.AsyncExitStack() as stack,
    ):
        service = station.service
        assert service is not None
        batch = [PackageIn(key=k, weight=1.0, dest_lat=at(*v)[0], dest_lon=at(*v)[1])
                 for k, v in {"a": (0, 1500), "b": (1500, 0)}.items()]  # fmt: skip
        events = await stack.enter_async_context(contextlib.aclosing(service.bus.subscribe()))
        answers = await service.submit(batch)
        decided = sorted((d for _, _, d in answers), key=lambda d: d["decision"])
        assert decided[0]["decision"] == "drone"
        busy = decided[1]
        assert (busy["decision"], busy["reason"]) == ("queued", "airspace_busy"), busy
        assert busy["airspace_free_at"] > datetime.now(UTC)
        waiting = next(p for p, _, d in answers if d is busy)
        # It goes by itself once the column is clear: a later pass books it, no earlier than it said.
        async with asyncio.timeout(30):
            async for event in events:
                if event.get("package_id") == waiting.id and event.get("state") == "assigned":
                    break
        assert datetime.now(UTC) >= busy["airspace_free_at"] - timedelta(seconds=1)


async def test_an_operator_launch_into_a_busy_column_is_refused_and_the_mission_stays_held(
    tmp_path: Path,
) -> None:
    cfg = one_pad().model_copy(update={"launch": "operator"})
    async with SimStation(cfg, store_url=f"sqlite:///{tmp_path / 's.sqlite3'}", speedup=20) as station:
        service = station.service
        assert service is not None
        batch = [PackageIn(key=k, weight=1.0, dest_lat=at(*v)[0], dest_lon=at(*v)[1])
                 for k, v in {"a": (0, 1500), "b": (1500, 0)}.items()]  # fmt: skip
        await service.submit(batch)
        held = [m.id for m in await service.missions() if m.state == "held"]
        assert len(held) == 2
        await service.launch(held[0])
        with pytest.raises(AirspaceBusy) as refused:
            await service.launch(held[1])
        assert refused.value.code == "airspace_busy" and refused.value.free_at_s > service.airspace.now_s()
        still = {m.id: m.state for m in await service.missions()}
        assert still[held[1]] == "held"


async def test_a_pass_out_of_search_time_leaves_the_rest_for_the_next_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two drones on two pads 100 m apart could both go now; with no search time left after the first
    booking, the second waits as airspace_busy (free now: nothing is in its way) and a later pass books it."""
    from controller.service import core

    monkeypatch.setattr(core, "AIRSPACE_PASS_BUDGET_S", 0.0)
    monkeypatch.setattr(core, "MIN_AIRSPACE_BOOKINGS", 1)
    p1, p2 = at(0, 0), at(100, 0)
    pads = [{"name": "P1", "lat": p1[0], "lon": p1[1]}, {"name": "P2", "lat": p2[0], "lon": p2[1]}]
    cfg = one_pad(pads=pads, max_delay_s=60).model_copy(update={"tick_s": 0.5})
    async with (
        SimStation(cfg, store_url=f"sqlite:///{tmp_path / 's.sqlite3'}", speedup=20) as station,
        contextlib.AsyncExitStack() as stack,
    ):
        service = station.service
        assert service is not None
        batch = [PackageIn(key=k, weight=1.0, dest_lat=at(*v)[0], dest_lon=at(*v)[1])
                 for k, v in {"a": (0, 1500), "b": (1500, 0)}.items()]  # fmt: skip
        events = await stack.enter_async_context(contextlib.aclosing(service.bus.subscribe()))
        submitted = datetime.now(UTC)
        answers = await service.submit(batch)
        decided = sorted((d for _, _, d in answers), key=lambda d: d["decision"])
        assert [d["decision"] for d in decided] == ["drone", "queued"], decided
        assert decided[1]["reason"] == "airspace_busy"
        # Nothing is known to be in its way: it was only not searched yet (free now, on the drones' clock).
        assert decided[1]["airspace_free_at"] <= datetime.now(UTC) + timedelta(seconds=1)
        waiting = next(p for p, _, d in answers if d is decided[1])
        async with asyncio.timeout(30):
            async for event in events:
                if event.get("package_id") == waiting.id and event.get("state") == "assigned":
                    break
        # Booked by the next pass, from the other pad: it did not wait for the first drone's column.
        assert datetime.now(UTC) - submitted < timedelta(seconds=10)
        booked = {m.vehicle_id: m for m in await service.missions()}
        assert len(booked) == 2


@contextlib.asynccontextmanager
async def one_flight_north(
    tmp_path: Path,
    metres: float,
    *,
    station_type: Callable[..., Any] = SimStation,
    speedup: float = SPEEDUP,
    **airspace: Any,
) -> AsyncIterator[tuple[Any, ...]]:
    """A one-pad station (2 drones) at `speedup` with a package `metres` north submitted and given to a drone;
    yields (service, its event stream, the drones, their Tracks, the package, its drone). `station_type`:
    SimStation, or anything built like it (tests/e2e/test_drone_contingencies_ardupilot.py flies the
    same station on real ArduPilot SITL)."""
    cfg = one_pad(layers_m=LAYERS, **airspace).model_copy(update={"tick_s": 0.5})
    async with (
        station_type(cfg, store_url=f"sqlite:///{tmp_path / 's.sqlite3'}", speedup=speedup) as station,
        contextlib.AsyncExitStack() as stack,
    ):
        service = station.service
        assert service is not None
        events = await stack.enter_async_context(contextlib.aclosing(service.bus.subscribe()))
        drones = {vid: c.drone for vid, c in service.carriers.items()}  # type: ignore[attr-defined]
        tracks = Tracks(drones)
        [(package, _, decided)] = await service.submit(
            [PackageIn(key="n", weight=1.0, dest_lat=at(0, metres)[0], dest_lon=at(0, metres)[1])]
        )
        assert decided["decision"] == "drone", decided
        yield service, events, drones, tracks, package, drones[decided["vehicle_id"]]


@pytest.mark.slow
async def test_an_aborted_drone_comes_home_on_its_inbound_layer_and_lands_on_its_pad(tmp_path: Path) -> None:
    """Aborted 600 m out on its way north (outbound layer 40 m), the drone changes to the southbound layer in
    place, flies home on it, waits at its booked holding point until cleared and lands on its pad: seen
    in its own telemetry. A plain RTL would have come straight back at 40 m, head-on to the northbound
    traffic's layer."""
    pad = local(*at(0, 0))
    async with one_flight_north(tmp_path, 2500.0) as (service, events, _, tracks, package, drone):
        mission_id = next(m.id for m in await service.missions() if m.package_id == package.id)
        await north_of(drone, 600.0)
        out_alt = drone.state.alt_m
        await service.abort(mission_id)
        way = service.airspace.station.flight(mission_id)
        async with asyncio.timeout(90):
            async for event in events:
                ours = event.get("package_id") == package.id and event.get("type") == "package"
                if ours and event["state"] in ("received", "failed", "van"):
                    break
        tracks.close()

    a = tracks.array(drone.vehicle_id)
    assert out_alt is not None and abs(out_alt - 40.0) < 2.0  # northbound: 40 m
    assert way.cruise_alt_back_m in (65.0, 115.0)  # southbound layers
    turned = int(np.argmax(a[:, 2]))
    assert a[turned, 2] < 800.0  # it turned near where it was aborted, not at its destination
    home = a[turned:]
    cruising = home[(home[:, 2] > 300.0) & (home[:, 2] < a[turned, 2] - 60.0)]  # on its way, past the turn
    assert len(cruising) and np.all(np.abs(cruising[:, 3] - way.cruise_alt_back_m) < 2.5), cruising[:, 3]
    assert abs(a[turned, 1]) < 20.0  # the change of layer was made in place
    assert math.dist(a[-1, 1:3], pad) < 3.0 and a[-1, 3] < 1.0  # down on its pad


@pytest.mark.slow
async def test_a_closed_station_sends_drones_to_a_rally_point_and_launches_nothing(tmp_path: Path) -> None:
    """Closed while a drone is out: it still delivers, then flies to the station file's rally point at an
    inbound layer and lands there (its own telemetry); every drone is told RALLY_INCL_HOME 0; a package
    submitted meanwhile gets no drone; once the station opens, it does."""
    r_lat, r_lon = at(400, 0)
    rally = [{"name": "R1", "lat": r_lat, "lon": r_lon, "alt_m": 30.0}]
    flight = one_flight_north(tmp_path, 1500.0, rally=rally)
    async with flight as (service, events, drones, tracks, first, drone):
        other = drones[next(v for v in drones if v != drone.vehicle_id)]
        await north_of(drone, 500.0)
        await service.close_station("pads blocked")
        for each in (drone, other):
            assert await each.params.get("RALLY_INCL_HOME") == 0
        [(second, _, meanwhile)] = await service.submit(
            [PackageIn(key="w", weight=1.0, dest_lat=at(-1000, 0)[0], dest_lon=at(-1000, 0)[1])]
        )
        assert (meanwhile["decision"], meanwhile.get("reason")) == ("queued", "station_closed"), meanwhile
        async with asyncio.timeout(90):
            async for event in events:
                ours = event.get("package_id") == first.id and event.get("type") == "package"
                if ours and event["state"] in ("delivered", "failed", "van"):
                    break
        assert event["state"] == "delivered", event
        tracks.close()
        await service.open_station()
        assert await other.params.get("RALLY_INCL_HOME") == 1
        async with asyncio.timeout(30):
            async for event in events:
                if event.get("package_id") == second.id and event.get("state") == "assigned":
                    break

    a = tracks.array(drone.vehicle_id)
    rally_xy = local(r_lat, r_lon)
    assert math.dist(a[-1, 1:3], rally_xy) < 3.0 and a[-1, 3] < 1.0, a[-1]  # down on the rally point
    far = int(np.argmax(a[:, 2]))
    assert a[far, 2] > 1400.0  # it delivered first
    leg = a[far:][(a[far:, 2] < 1200.0) & (a[far:, 2] > 300.0)]  # on its way to the rally point
    heading = math.degrees(math.atan2(rally_xy[0] - 0.0, rally_xy[1] - 1500.0)) % 360.0
    layers = [x for i, x in enumerate(LAYERS) if (i % 2) == (1 if heading >= 180.0 else 0)]
    assert len(leg) and min(abs(float(np.median(leg[:, 3])) - x) for x in layers) < 2.5, leg[:, 3]
