"""A whole simulated station in one process: simulators, broker, drivers, store and the station service.

`lastmile demo`, the end-to-end tests and the benchmarks all need the same assembly, so it lives here once.
Simulated drones are ArduCopter-compatible MAVLink vehicles on real TCP sockets (`sitl.copter`); simulated
robots are VDA 5050 clients of a real broker (`sitl.robot`, `sitl.broker`). The controller side is exactly
what `lastmile serve` runs: the drivers, the carriers and `StationService`.

`SimVehicles` is the simulator half alone: `lastmile serve --simulate` starts it and then runs as it always
does, against the station config it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.service import StationService
from controller.service.carriers_drone import SecurityEvents
from controller.service.runtime import connect_fleet
from controller.station import BrokerConfig, StationConfig, VehicleConfig
from controller.store import Store
from sitl.broker import Broker
from sitl.copter import SimCopterFleet
from sitl.robot import RobotFleet, SimRobot
from sitl.tls import client_context
from vehicles.mavlink.driver import provision_key
from vehicles.mavlink.signing import generate_key_file
from vehicles.spec import VehicleKind

log = logging.getLogger("lastmile.simstation")


@dataclass
class SimVehicles:
    """Simulators for every online drone and robot of a station's fleet, and the broker its robots need.

    `lastmile serve --simulate` and `SimStation` both start them this way: `await start(stack)` runs them
    until `stack` closes and gives the station config pointed at them (each drone's URL and signing key,
    the broker, `vehicle_speedup`), to connect to exactly as to real vehicles. Drones stand on the
    station's pads in turn; robots start at the station. Robots use the station's own `[broker]` when it
    names one (with the controller's login: a simulation, not a deployment), else a broker started here.
    """

    config: StationConfig
    speedup: float = 20.0
    robot_version: str = "2.1.0"
    broker_kind: str = "auto"
    # MQTT over TLS, as a station with a remote broker runs: the broker makes its own CA, robots and the
    # controller trust it (docs/security.md). False: plaintext, for a test that needs to read the wire.
    broker_tls: bool = True
    copter_params: dict[str, float] = field(default_factory=dict)
    # Where the simulated drones' signing keys go when the station requires signing (default: a
    # temporary directory that goes with the station).
    key_dir: Path | None = None
    copters: SimCopterFleet | None = None
    robots: RobotFleet | None = None
    broker: Broker | None = None
    drone_ids: list[str] = field(default_factory=list)
    robot_ids: list[str] = field(default_factory=list)

    async def start(self, stack: contextlib.AsyncExitStack) -> StationConfig:
        """Start the simulators (they stop with `stack`); the station config that points at them."""
        cfg = self.config
        drones = [v for v in cfg.fleet if v.kind is VehicleKind.DRONE and v.online]
        robots = [v for v in cfg.fleet if v.kind is VehicleKind.ROBOT and v.online]
        urls: dict[str, str] = {}
        keyed: dict[str, dict[str, Any]] = {}  # drone id -> its signed link (url, key file)
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
            if cfg.require_signing:
                keyed = await self._provision(stack, drones)
        if robots and cfg.broker is not None:  # the station's own broker: robots log in as the controller
            serials = [v.id for v in robots]
            link = cfg.broker.link_options()
            login = (link["username"] or "", link["password"] or "")
            sims = [
                SimRobot(
                    serial=v.id,
                    manufacturer=cfg.broker.manufacturer,
                    version=v.vda5050_version or cfg.broker.version,
                    battery_percent=v.charge * 100.0,
                )
                for v in robots
            ]
            self.robots = RobotFleet(
                sims,
                link["host"],
                link["port"],
                credentials={s: login for s in serials} if link["username"] else None,
                speedup=self.speedup,
                tls_context=link["tls_context"],
            )
            await stack.enter_async_context(self.robots)
            broker = cfg.broker
            self.robot_ids = serials
        elif robots:
            serials = [v.id for v in robots]
            self.broker = Broker(
                robots=serials, manufacturer="lastmile", kind=self.broker_kind, tls=self.broker_tls
            )
            await stack.enter_async_context(self.broker)
            sims = [
                SimRobot(  # the version the controller will speak to it: its own, else the broker's
                    serial=v.id,
                    version=v.vda5050_version or self.robot_version,
                    battery_percent=v.charge * 100.0,
                )
                for v in robots
            ]
            self.robots = RobotFleet(
                sims,
                self.broker.host,
                self.broker.port,
                credentials={s: self.broker.credentials(s) for s in serials},
                speedup=self.speedup,
                tls_context=client_context(self.broker.ca_file) if self.broker.tls else None,
            )
            await stack.enter_async_context(self.robots)
            user, password = self.broker.controller_credentials()
            broker = BrokerConfig(
                url=self.broker.url,
                ca_file=self.broker.ca_file,
                username=user,
                password=password,
                manufacturer="lastmile",
                version=self.robot_version,
            )  # type: ignore[arg-type]
            self.robot_ids = serials
        fleet = [
            v.model_copy(update=keyed[v.id] if v.id in keyed else {"url": urls[v.id]}) if v.id in urls else v
            for v in cfg.fleet
        ]
        # The drones' clocks run `speedup` times faster: the controller scales its link timings to match.
        return cfg.model_copy(update={"fleet": fleet, "broker": broker, "vehicle_speedup": self.speedup})

    def drone_clock(self) -> Callable[[], float] | None:
        """The simulated drones' own seconds (they may slip behind `speedup`), for `StationService`."""
        copters = self.copters
        return (lambda: copters.sim_time_s) if copters is not None else None

    async def load_payloads(self, service: StationService) -> None:
        """The station crew: put each package's mass on its simulated drone when the mission launches."""
        if self.copters is None:
            return
        index = {vid: i for i, vid in enumerate(self.drone_ids)}
        async for event in service.bus.subscribe():
            if (
                event.get("type") == "mission"
                and event.get("state") == "launching"
                and event["vehicle_id"] in index
            ):
                package = await asyncio.to_thread(service.store.get, event["package_id"])
                self.copters.vehicles[index[event["vehicle_id"]]].set_payload(package.weight_kg)

    async def _provision(
        self, stack: contextlib.AsyncExitStack, drones: list[VehicleConfig]
    ) -> dict[str, dict[str, Any]]:
        """Key every simulated drone, as an operator keys a real one, and link it where signing is enforced.

        Each drone gets its own key (its station entry's, or a new one in `key_dir`, mode 0600), given over
        its SERIAL0 (channel 0, where ArduPilot takes SETUP_SIGNING unsigned: `lastmile keys provision`
        does the same); the controller then links over SERIAL1, a telemetry link where the drone refuses
        anything unsigned: a real drone's radio or network link. Returns each drone's config changes.
        """
        assert self.copters is not None
        key_dir = self.key_dir
        if key_dir is None:
            key_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lastmile-keys-")))
        key_dir.mkdir(parents=True, exist_ok=True)

        async def one(vehicle: VehicleConfig, serial0: str, serial1: str) -> tuple[str, dict[str, Any]]:
            key_file = vehicle.signing_key_file
            key = vehicle.signing_key() if vehicle.has_signing_key else None
            if key is None:
                key_file = key_dir / f"{vehicle.id}.key"
                key_file.unlink(missing_ok=True)
                key = await asyncio.to_thread(generate_key_file, key_file)
            await provision_key(serial0, key, vehicle_id=vehicle.id)
            update: dict[str, Any] = {"url": serial1}
            if not vehicle.has_signing_key:
                update["signing_key_file"] = key_file
            return vehicle.id, update

        done = await asyncio.gather(
            *(
                one(v, serial0, serial1)
                for v, serial0, serial1 in zip(
                    drones, self.copters.urls(), self.copters.telemetry_urls(), strict=True
                )
            )
        )
        log.info("signing keys given to %d simulated drones (keys in %s)", len(done), key_dir)
        return dict(done)


@dataclass
class SimStation:
    """Start with `async with SimStation(config, store_url=...) as station:`; `station.service` runs it.

    The simulators (`SimVehicles`), then the controller side exactly as `lastmile serve` runs it: the
    drivers, the carriers and `StationService`.
    """

    config: StationConfig
    store_url: str
    speedup: float = 20.0
    robot_version: str = "2.1.0"
    broker_kind: str = "auto"
    broker_tls: bool = True  # see SimVehicles
    copter_params: dict[str, float] = field(default_factory=dict)
    key_dir: Path | None = None
    security: SecurityEvents = field(default_factory=SecurityEvents)
    service: StationService | None = None
    vehicles: SimVehicles | None = None
    _stack: contextlib.AsyncExitStack | None = None

    @property
    def copters(self) -> SimCopterFleet | None:
        return self.vehicles.copters if self.vehicles is not None else None

    @property
    def robots(self) -> RobotFleet | None:
        return self.vehicles.robots if self.vehicles is not None else None

    @property
    def broker(self) -> Broker | None:
        return self.vehicles.broker if self.vehicles is not None else None

    @property
    def drone_ids(self) -> list[str]:
        return self.vehicles.drone_ids if self.vehicles is not None else []

    @property
    def robot_ids(self) -> list[str]:
        return self.vehicles.robot_ids if self.vehicles is not None else []

    async def __aenter__(self) -> SimStation:
        stack = contextlib.AsyncExitStack()
        self._stack = stack
        try:
            self.vehicles = sims = SimVehicles(
                self.config,
                speedup=self.speedup,
                robot_version=self.robot_version,
                broker_kind=self.broker_kind,
                broker_tls=self.broker_tls,
                copter_params=self.copter_params,
                key_dir=self.key_dir,
            )
            self.config = await sims.start(stack)
            carriers = await connect_fleet(self.config, stack, security=self.security)
            store = Store(self.store_url)
            stack.callback(store.close)
            self.service = StationService(
                self.config, store, carriers=carriers, drone_clock=sims.drone_clock()
            )
            service = self.service
            self.security.attach(lambda event: service.bus.publish("security", **event))
            await stack.enter_async_context(self.service)
            if sims.copters is not None:
                loader = asyncio.create_task(sims.load_payloads(service), name="lastmile.simstation.loader")
                stack.push_async_callback(_cancel, loader)
        except BaseException:
            await stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._stack is not None:
            await self._stack.aclose()


def _on_pads(config: StationConfig, count: int) -> list[tuple[float, float, float, float]]:
    """Where the station crew puts its drones: on its pads in turn (at the station without pads)."""
    pads = [(p.lat, p.lon) for p in config.airspace.pads] or [(config.lat, config.lon)]
    return [(*pads[i % len(pads)], config.alt_m, 0.0) for i in range(count)]


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
