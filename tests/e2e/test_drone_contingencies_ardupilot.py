"""The station's drone contingencies on the selected copter target: real ArduCopter SITL or ours.

Real ArduPilot is the reference; these flights are the ones the built-in simulator alone flew before:
an operator abort flown as a new mission (BRAKE, upload, MISSION_SET_CURRENT 1, AUTO: `_fly_way` in
controller/missions/drone.py) and a closed station's divert to a rally point. The station is the one the
airspace tests use (`one_flight_north`), its drones the copter target's (`sitl.ardupilot.open_copters`):
`ARDUPILOT_SITL` naming an `arducopter` build flies ArduPilot, else the built-in simulator. Every
assertion reads what the drone itself sent (HEARTBEAT modes, GLOBAL_POSITION_INT, its stored mission),
so the same test holds for both targets.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from controller.missions.drone import build_mission, follow_delivery
from controller.service import StationService
from controller.service.runtime import connect_fleet
from controller.station import StationConfig
from controller.store import Store
from sitl.ardupilot import copter_target, open_copters
from sitl.copter import SimCopterFleet
from tests.e2e.test_airspace_station import at, local, north_of, one_flight_north
from tests.e2e.test_drone_ardupilot import HOME, _driver, _north, _plan
from vehicles.mavlink import MISSION, Drone, ModeChanged

pytestmark = [pytest.mark.ardupilot, pytest.mark.slow, pytest.mark.timeout(300)]

# Real SITL keeps up at 20x on two cores; the built-in simulator flies the same flights at 40x.
REAL = copter_target().kind == "ardupilot"
SPEEDUP = 20 if REAL else 40
FLIGHT_S = 240.0 if REAL else 90.0  # wall seconds a flight may take, start-up of the autopilot included


@dataclass
class TargetStation:
    """`SimStation`'s controller side (the drivers, the carriers, `StationService`, as `lastmile serve`
    runs them) over the copter target's drones instead of the built-in simulator's: built like
    `SimStation(config, store_url=..., speedup=...)` so that `one_flight_north` takes either. All drones
    stand at the station (the one-pad station's pad is the station itself)."""

    config: StationConfig
    store_url: str
    speedup: float = SPEEDUP
    service: StationService | None = None
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def __aenter__(self) -> TargetStation:
        cfg, stack = self.config, self._stack
        try:
            # DISARM_DELAY counts drone seconds while our arming-to-take-off takes wall time (as SimVehicles)
            copters = open_copters(
                len(cfg.fleet), home=(cfg.lat, cfg.lon, cfg.alt_m, 0.0), speedup=self.speedup,
                params={"DISARM_DELAY": min(127.0, 2.0 * self.speedup)},
            )  # fmt: skip
            await stack.enter_async_context(copters)
            fleet = [
                v.model_copy(update={"url": url}) for v, url in zip(cfg.fleet, copters.urls(), strict=True)
            ]
            self.config = cfg = cfg.model_copy(update={"fleet": fleet, "vehicle_speedup": self.speedup})
            carriers = await connect_fleet(cfg, stack)
            store = Store(self.store_url)
            stack.callback(store.close)
            # The built-in simulator tells its own clock; ArduPilot's is taken as wall time x speedup.
            sim = copters if isinstance(copters, SimCopterFleet) else None
            clock = (lambda: sim.sim_time_s) if sim is not None else None
            self.service = StationService(cfg, store, carriers=carriers, drone_clock=clock)
            await stack.enter_async_context(self.service)
        except BaseException:
            await stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stack.aclose()


class Modes:
    """The flight modes the drone reported in its HEARTBEATs, in order, each change once."""

    def __init__(self, drone: Drone) -> None:
        self.seen: list[str] = []
        self.close = drone.telemetry.on_event(self._take)

    def _take(self, event: Any) -> None:
        if isinstance(event, ModeChanged):
            self.seen.append(event.new)

    def since(self, mode: str) -> list[str]:
        """The modes from the last time the drone entered `mode` on."""
        last = max(i for i, m in enumerate(self.seen) if m == mode)
        return self.seen[last:]


async def until_final(events: Any, package_id: str, states: tuple[str, ...]) -> dict[str, Any]:
    """The package's next state event in `states`, from the station's event stream."""
    async with asyncio.timeout(FLIGHT_S):
        async for event in events:
            ours = event.get("type") == "package" and event.get("package_id") == package_id
            if ours and event["state"] in states:
                return event
    raise AssertionError("the event stream ended")


async def test_an_aborted_drone_flies_its_booked_way_home_as_a_new_mission_and_lands_on_its_pad(
    tmp_path: Path,
) -> None:
    """Aborted 500 m out, the drone brakes, takes the way home as a new mission and lands on its pad in
    AUTO: its own heartbeats say AUTO -> BRAKE -> AUTO and never RTL, the mission it holds at the end is
    the way home (ending at the pad's NAV_LAND, its last item reached), and it came down on the pad."""
    pad = local(*at(0, 0))
    flight = one_flight_north(tmp_path, 2500.0, station_type=TargetStation, speedup=SPEEDUP)
    async with flight as (service, events, _, tracks, package, drone):
        modes = Modes(drone)
        mission_id = next(m.id for m in await service.missions() if m.package_id == package.id)
        await north_of(drone, 500.0, timeout_s=FLIGHT_S)
        await service.abort(mission_id)
        way = service.airspace.station.flight(mission_id)
        await until_final(events, package.id, ("received", "failed", "van"))
        tracks.close()
        modes.close()
        held = await drone.missions.download(MISSION)

    assert modes.since("BRAKE")[:2] == ["BRAKE", "AUTO"], modes.seen
    assert "AUTO" in modes.seen[: modes.seen.index("BRAKE")], modes.seen  # it was flying its delivery
    assert "RTL" not in modes.seen and "LAND" not in modes.seen, modes.seen
    # The mission the drone holds is the way home: climb or descend in place to the inbound layer, hold,
    # land on the pad; nothing of the delivery (no take-off, no gripper) is left in it.
    commands = [item.command for item in held]
    assert mavlink.MAV_CMD_NAV_TAKEOFF not in commands and mavlink.MAV_CMD_DO_GRIPPER not in commands, (
        commands
    )
    assert commands[-1] == mavlink.MAV_CMD_NAV_LAND, commands
    assert abs(held[1].alt - way.cruise_alt_back_m) < 0.5, held[1]
    # ... by its holding point, where it waited until the station cleared it to the pad
    assert commands[2] in (mavlink.MAV_CMD_NAV_LOITER_UNLIM, mavlink.MAV_CMD_NAV_LOITER_TIME), commands
    assert math.dist(local(held[2].lat, held[2].lon), local(way.hold_lat, way.hold_lon)) < 0.5, held[2]
    a = tracks.array(drone.vehicle_id)
    turned = int(np.argmax(a[:, 2]))
    assert a[turned, 2] < 700.0  # it turned near where it was aborted, not at its destination
    home = a[turned:]
    cruising = home[(home[:, 2] > 200.0) & (home[:, 2] < a[turned, 2] - 60.0)]
    assert len(cruising) and np.all(np.abs(cruising[:, 3] - way.cruise_alt_back_m) < 2.5), cruising[:, 3]
    assert math.dist(a[-1, 1:3], pad) < 3.0 and a[-1, 3] < 1.0, a[-1]  # down on its pad


async def test_a_closed_station_diverts_a_drone_on_its_way_home_to_the_rally_point(tmp_path: Path) -> None:
    """Closed while a drone is out: every drone is told RALLY_INCL_HOME 0; the drone still delivers, then
    flies to the rally point as a new mission (BRAKE, AUTO; never RTL) and lands there."""
    r_lat, r_lon = at(400, 0)
    rally = [{"name": "R1", "lat": r_lat, "lon": r_lon, "alt_m": 30.0}]
    flight = one_flight_north(tmp_path, 1200.0, station_type=TargetStation, speedup=SPEEDUP, rally=rally)
    async with flight as (service, events, drones, tracks, package, drone):
        modes = Modes(drone)
        await north_of(drone, 400.0, timeout_s=FLIGHT_S)
        await service.close_station("pads blocked")
        for each in drones.values():
            assert await each.params.get("RALLY_INCL_HOME") == 0
        done = await until_final(events, package.id, ("delivered", "failed", "van"))
        tracks.close()
        modes.close()
        held = await drone.missions.download(MISSION)

    assert done["state"] == "delivered", done
    assert modes.since("BRAKE")[:2] == ["BRAKE", "AUTO"], modes.seen
    assert "RTL" not in modes.seen and "LAND" not in modes.seen, modes.seen
    assert held[-1].command == mavlink.MAV_CMD_NAV_LAND, held
    assert (
        math.dist(local(held[-1].lat, held[-1].lon), local(r_lat, r_lon)) < 0.5
    )  # its NAV_LAND: the rally point
    a = tracks.array(drone.vehicle_id)
    assert a[:, 2].max() > 1100.0  # it delivered first
    assert math.dist(a[-1, 1:3], local(r_lat, r_lon)) < 3.0 and a[-1, 3] < 1.0, a[
        -1
    ]  # down at the rally point


async def test_a_drone_its_last_controller_loaded_but_never_launched_is_reported_not_launched() -> None:
    """The last controller went away after it loaded the delivery (mission uploaded, current item 1) and
    before it armed: the next one, following the drone as it finds it, reads from the drone's own
    MISSION_CURRENT that it never left (disarmed at item 1) and reports `not_launched`, commanding
    nothing: the drone still holds the mission, disarmed, at item 1."""
    plan = _plan(_north(300))
    items = build_mission(plan).items
    async with open_copters(1, home=HOME, speedup=SPEEDUP) as copters:
        url = copters.urls()[0]
        async with _driver() as driver:  # the last controller
            drone = await driver.add("drone-a", url)
            await drone.wait_ready(120)
            await drone.upload_mission(items)
            await drone.commands.set_mission_current(1)
        async with _driver() as driver:  # the next one
            drone = await driver.add("drone-a", url)
            result = await follow_delivery(drone, plan)
            current = await drone.commands.request_message("MISSION_CURRENT")
            held = await drone.missions.download(MISSION)
            armed = drone.state.armed

    assert result.reason_code == "not_launched", result.reason
    assert not result.delivered and result.returned
    assert (current.seq, armed) == (1, False)
    assert [i.command for i in held[1:]] == [i.command for i in items[1:]]
