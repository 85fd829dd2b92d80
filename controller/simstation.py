"""A whole simulated station in one process: simulators, broker, drivers, store and the station service.

`lastmile demo`, the end-to-end tests and the benchmarks all need the same assembly, so it lives here once.
Simulated drones are ArduCopter-compatible MAVLink vehicles on real TCP sockets (`sitl.copter`); simulated
robots are VDA 5050 clients of a real broker (`sitl.robot`, `sitl.broker`). The controller side is exactly
what `lastmile serve` runs: the drivers, the carriers and `StationService`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from controller.service import StationService
from controller.service.carriers import Carrier
from controller.service.runtime import connect_fleet
from controller.station import BrokerConfig, StationConfig
from controller.store import Store
from sitl.broker import Broker
from sitl.copter import SimCopterFleet
from sitl.robot import RobotFleet, SimRobot
from vehicles.spec import VehicleKind

log = logging.getLogger("lastmile.simstation")


@dataclass
class SimStation:
    """Start with `async with SimStation(config, store_url=...) as station:`; `station.service` runs it."""

    config: StationConfig
    store_url: str
    speedup: float = 20.0
    robot_version: str = "2.1.0"
    broker_kind: str = "auto"
    copter_params: dict[str, float] = field(default_factory=dict)
    service: StationService | None = None
    copters: SimCopterFleet | None = None
    robots: RobotFleet | None = None
    broker: Broker | None = None
    drone_ids: list[str] = field(default_factory=list)
    robot_ids: list[str] = field(default_factory=list)
    _stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> SimStation:
        stack = contextlib.AsyncExitStack()
        self._stack = stack
        try:
            carriers = await self._start(stack)
            store = Store(self.store_url)
            stack.callback(store.close)
            copters = self.copters
            self.service = StationService(
                self.config,
                store,
                carriers=carriers,
                drone_clock=(lambda: copters.sim_time_s) if copters is not None else None,
            )
            await stack.enter_async_context(self.service)
            if self.copters is not None:
                loader = asyncio.create_task(self._load_packages(), name="lastmile.simstation.loader")
                stack.push_async_callback(_cancel, loader)
        except BaseException:
            await stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._stack is not None:
            await self._stack.aclose()

    async def _load_packages(self) -> None:
        """The station crew: put each package's mass on its simulated drone when the mission launches."""
        assert self.service is not None and self.copters is not None
        index = {vid: i for i, vid in enumerate(self.drone_ids)}
        async for event in self.service.bus.subscribe():
            if (
                event.get("type") == "mission"
                and event.get("state") == "launching"
                and event["vehicle_id"] in index
            ):
                package = await asyncio.to_thread(self.service.store.get, event["package_id"])
                self.copters.vehicles[index[event["vehicle_id"]]].set_payload(package.weight_kg)

    async def _start(self, stack: contextlib.AsyncExitStack) -> dict[str, Carrier]:
        """Start the simulators, then connect to them exactly as `lastmile serve` connects to vehicles."""
        cfg = self.config
        drones = [v for v in cfg.fleet if v.kind is VehicleKind.DRONE and v.online]
        robots = [v for v in cfg.fleet if v.kind is VehicleKind.ROBOT and v.online]
        urls: dict[str, str] = {}
        broker = None
        if drones:
            # Timers the drone counts in its own (sped-up) time but that wait on us in wall time: arming to
            # take-off must fit in DISARM_DELAY: at least 2 s of wall time (ArduPilot caps it at 127 s).
            params = {"DISARM_DELAY": min(127.0, max(10.0, 2.0 * self.speedup)), **self.copter_params}
            self.copters = SimCopterFleet(
                len(drones),
                home=(cfg.lat, cfg.lon, cfg.alt_m, 0.0),
                homes=_on_pads(cfg, len(drones)),
                speedup=self.speedup,
                base_port=0,
                params=params,
                batteries=[v.charge for v in drones],
            )
            await stack.enter_async_context(self.copters)
            urls = {v.id: url for v, url in zip(drones, self.copters.urls(), strict=True)}
            self.drone_ids = [v.id for v in drones]
        if robots:
            serials = [v.id for v in robots]
            self.broker = Broker(robots=serials, manufacturer="lastmile", kind=self.broker_kind)
            await stack.enter_async_context(self.broker)
            sims = [
                SimRobot(serial=v.id, version=self.robot_version, battery_percent=v.charge * 100.0)
                for v in robots
            ]
            self.robots = RobotFleet(
                sims,
                self.broker.host,
                self.broker.port,
                credentials={s: self.broker.credentials(s) for s in serials},
                speedup=self.speedup,
            )
            await stack.enter_async_context(self.robots)
            user, password = self.broker.controller_credentials()
            broker = BrokerConfig(
                url=self.broker.url,
                username=user,
                password=password,
                manufacturer="lastmile",
                version=self.robot_version,
            )  # type: ignore[arg-type]
            self.robot_ids = serials
        fleet = [v.model_copy(update={"url": urls[v.id]}) if v.id in urls else v for v in cfg.fleet]
        # The drones' clocks run `speedup` times faster: the controller scales its link timings to match.
        self.config = cfg = cfg.model_copy(
            update={"fleet": fleet, "broker": broker, "vehicle_speedup": self.speedup}
        )
        return await connect_fleet(cfg, stack)


def _on_pads(config: StationConfig, count: int) -> list[tuple[float, float, float, float]]:
    """Where the station crew puts its drones: on its pads in turn (at the station without pads)."""
    pads = [(p.lat, p.lon) for p in config.airspace.pads] or [(config.lat, config.lon)]
    return [(*pads[i % len(pads)], config.alt_m, 0.0) for i in range(count)]


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
