"""A controller change mid-flight (a restart, a standby taking over): the drone keeps flying its delivery in
AUTO while no controller heartbeats, the next controller re-attaches from the store, and the package is
delivered on its first attempt.

Simulated copters over real TCP MAVLink, the real drivers (`connect_fleet`) and `StationService`, two
services one after the other on the same store, as `lastmile serve` runs them. The gap between them is
longer than the drone's FS_GCS_TIMEOUT, so the drone's own GCS failsafe fires: with the station's
`drones_continue_without_controller` (FS_OPTIONS bit 1) it says "GCS Failsafe - Continuing Auto Mode"
and flies on (ArduCopter/events.cpp `Copter::failsafe_gcs_on_event`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from pathlib import Path
from typing import Any

import pytest

from controller.missions.drone import DeliveryPlan, safety_params
from controller.packages import PackageIn
from controller.service import StationService
from controller.service.carriers_drone import DroneCarrier
from controller.service.carriers_robot import RobotCarrier
from controller.service.runtime import RETAINED_GRACE_S, connect_fleet, drone_timing
from controller.station import StationConfig
from controller.store import Store
from sitl.broker import Broker, free_port
from sitl.copter import SimCopter, SimCopterFleet
from sitl.robot import RobotFleet, SimRobot
from tests.robot_fixtures import MANUFACTURER, robot_credentials

STATION = (33.4400, -112.2560)
SPEEDUP = 30  # FS_GCS_TIMEOUT is max(5, 2 x speed-up) = 60 drone seconds: 2 s of wall time


def at(east_m: float, north_m: float) -> tuple[float, float]:
    lat = STATION[0] + north_m / 111_320.0
    lon = STATION[1] + east_m / (111_320.0 * math.cos(math.radians(STATION[0])))
    return lat, lon


def config(url: str, tmp_path: Path, *, keep_flying: bool) -> StationConfig:
    return StationConfig.model_validate({
        "name": "controller change", "lat": STATION[0], "lon": STATION[1], "alt_m": 300.0, "tick_s": 0.5,
        "vehicle_speedup": SPEEDUP, "store_url": f"sqlite:///{tmp_path / 'store.sqlite3'}",
        "drones_continue_without_controller": keep_flying,
        "fleet": [{"id": "d1", "kind": "drone", "url": url}],
    })  # fmt: skip


@contextlib.asynccontextmanager
async def controller(cfg: StationConfig, store: Store, fleet: SimCopterFleet) -> Any:
    """One controller's life: link the fleet as `lastmile serve` does, run the service, then go away."""
    async with contextlib.AsyncExitStack() as stack:
        carriers = await connect_fleet(cfg, stack)
        service = StationService(cfg, store, carriers=carriers, drone_clock=lambda: fleet.sim_time_s)
        yield await stack.enter_async_context(service)


async def until(check: Any, timeout_s: float, what: str) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 (the simulator and the service move on their own)
            await asyncio.sleep(0.05)


async def fly_through_a_controller_change(
    tmp_path: Path, *, keep_flying: bool
) -> tuple[Any, SimCopter, Store, list[str]]:
    """Submit one package 4 km out, stop the controller once the drone cruises, wait until the drone's GCS
    failsafe has fired, start a new controller on the same store, and follow the package to its end.
    Returns the package, the copter, the store and the drone's modes from take-off to landing."""
    params = {"DISARM_DELAY": 2.0 * SPEEDUP}  # arming to take-off waits on us in wall time (as SimStation)
    async with SimCopterFleet(
        1, home=(*STATION, 300.0, 0.0), speedup=SPEEDUP, base_port=0, params=params
    ) as fleet:
        copter = fleet.vehicles[0]
        cfg = config(fleet.urls()[0], tmp_path, keep_flying=keep_flying)
        store = Store(cfg.store_url)
        modes: list[str] = []

        async def watch_modes() -> None:
            while True:
                if copter.armed and (not modes or modes[-1] != copter.mode):
                    modes.append(copter.mode)
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch_modes())
        lat, lon = at(0, 4000)
        async with controller(cfg, store, fleet) as service:
            [(package, _, _)] = await service.submit(
                [PackageIn(key="p1", weight=1.0, dest_lat=lat, dest_lon=lon)]
            )
            copter.set_payload(1.0)  # the station crew loads it
            await until(lambda: copter.mode == "AUTO" and copter.alt_m > 30, 60, "cruising in AUTO")
        stopped_at = copter.time_s  # the controller is gone: no heartbeat, no link
        timeout_s = drone_timing(SPEEDUP)["gcs_timeout_s"]
        await until(lambda: any(t.startswith("GCS Failsafe") for t in copter.statustexts), 10, "FS_GCS fired")
        assert copter.time_s - stopped_at >= timeout_s - 1.0
        gap_wall_s = time.monotonic()
        async with controller(cfg, store, fleet) as service:
            relinked_s = time.monotonic() - gap_wall_s
            assert relinked_s < 3.0, relinked_s  # start-up does not wait for anything absent
            if keep_flying:  # still on its mission: the new controller books it again from where it is
                book = service.airspace.station
                await until(lambda: bool(book.volumes_for("d1")), 10, "booked again")
                x, y = book.frame.to_local(copter.lon, copter.lat)
                now = service.airspace.now_s()
                assert any(v.contains(x, y, copter.alt_m, now) for v in book.volumes_for("d1"))
            await until(
                lambda: store.get(package.id).state.value in ("delivered", "van", "received"), 90, "end"
            )
            await until(lambda: not copter.armed, 60, "landed")
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        return store.get(package.id), copter, store, modes


@pytest.mark.slow
async def test_a_controller_change_mid_flight_leaves_the_drone_in_auto_and_delivers_first_time(
    tmp_path: Path,
) -> None:
    package, copter, store, modes = await fly_through_a_controller_change(tmp_path, keep_flying=True)
    assert modes[modes.index("AUTO") :] == ["AUTO"], modes  # never RTL: AUTO from take-off to landing
    assert "GCS Failsafe - Continuing Auto Mode" in copter.statustexts  # the drone's own word
    assert copter.payload_released_at is not None  # the parcel left at the door
    assert copter.params["FS_OPTIONS"] == 2 | 16  # bit 1 set by the controller, ArduCopter's default kept
    states = [e.to_state.value for e in store.history(package.id)]
    assert package.state.value == "delivered", states
    assert states.count("launching") == 1 and "failed" not in states, states  # no second attempt
    store.close()


async def test_a_station_that_wants_its_drones_back_keeps_fs_gcs_in_auto_too(tmp_path: Path) -> None:
    """`drones_continue_without_controller = false`: the plan leaves FS_OPTIONS bit 1 clear, so a drone in
    AUTO returns on GCS loss as before (tests/sitl/test_copter_failsafes.py flies both)."""
    async with SimCopterFleet(
        1, home=(*STATION, 300.0, 0.0), speedup=SPEEDUP, base_port=0, boot_s=0
    ) as fleet:
        for keep_flying in (True, False):
            cfg = config(fleet.urls()[0], tmp_path, keep_flying=keep_flying)
            async with contextlib.AsyncExitStack() as stack:
                carrier = (await connect_fleet(cfg, stack))["d1"]
                assert isinstance(carrier, DroneCarrier) and carrier.continue_without_gcs is keep_flying
    plan = DeliveryPlan(
        package_id="p", vehicle_id="d1", station=STATION, waypoints_out=[], destination=at(0, 500),
        waypoints_back=[], payload_kg=1.0,
    )  # fmt: skip
    assert safety_params(plan, 5000, fs_options=2 | 16 | 32)["FS_OPTIONS"] == 16 | 32  # the rest is kept
    assert safety_params(plan, 5000)["FS_OPTIONS"] == 16  # ArduCopter's default when unknown


@pytest.mark.slow
async def test_start_up_does_not_wait_for_a_robot_that_does_not_answer() -> None:
    """A restart with one robot powered off: start-up used to wait 20 s for it (and the drones in the air
    waited for their controller as long). Now the robot that is up is there at once, the absent one (never
    connected: the broker holds no `connection` of it) costs at most RETAINED_GRACE_S, and it joins when it
    reports."""
    port = free_port("127.0.0.1")
    password = "controller-pw"
    broker = Broker(robots=["r1", "r2"], manufacturer=MANUFACTURER, port=port, kind="mosquitto",
                    controller_password=password)  # fmt: skip
    cfg = StationConfig.model_validate({
        "name": "robot absent", "lat": STATION[0], "lon": STATION[1],
        "fleet": [{"id": "r1", "kind": "robot"}, {"id": "r2", "kind": "robot"}],
        "broker": {"url": f"mqtt://127.0.0.1:{port}", "username": "controller", "password": password,
                   "manufacturer": MANUFACTURER},
    })  # fmt: skip
    async with broker, contextlib.AsyncExitStack() as stack:
        up = RobotFleet([SimRobot("r1", manufacturer=MANUFACTURER)], broker.host, broker.port,
                        credentials=robot_credentials(broker, "r1"))  # fmt: skip
        await stack.enter_async_context(up)
        started = time.monotonic()
        carriers = await connect_fleet(cfg, stack)
        took = time.monotonic() - started
        assert took < RETAINED_GRACE_S + 1.0, took  # not 20 s: the broker holds nothing of r2
        r1, r2 = carriers["r1"], carriers["r2"]
        assert isinstance(r1, RobotCarrier) and isinstance(r2, RobotCarrier)
        assert r1.snapshot().online and not r2.snapshot().online  # shown offline; the station runs
        late = RobotFleet([SimRobot("r2", manufacturer=MANUFACTURER)], broker.host, broker.port,
                          credentials=robot_credentials(broker, "r2"))  # fmt: skip
        async with late:  # powered on later: it joins, no restart
            await r2.robot.wait_until(lambda r: r.available, timeout_s=15)
            assert r2.snapshot().online
