"""Many simulated copters in one event loop, stepped together at a fixed simulated rate.

One task steps every vehicle at STEP_S of simulated time; wall time per step is STEP_S / speedup. When
the loop falls behind (a busy machine), it catches up with at most MAX_CATCHUP steps per wake-up, letting
the links run between steps, and then lets simulated time slip rather than spiral, so a slow machine
runs the simulation slower, never wrong, and protocol timers see the peer's answers in time order.
Vehicle i serves TCP on base_port + 10*i (ArduPilot SITL's SERIAL0 with -I i, MAVLink channel 0, which
ArduPilot trusts under signing) and on base_port + 10*i + 2 (SERIAL1, a telemetry link where signing is
enforced; `telemetry_urls()`), MAV_SYSID = i + 1
(or first_sysid + i; SYSID_THISMAV with firmware "4.6" and older).

Every copter boots first (`boot.py`): for `boot_s` simulated seconds (DEFAULT_BOOT_S) it talks but cannot
fly, as a freshly powered ArduCopter; `boot_s=0` gives copters that are up from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence

from sitl.copter import gcs, link, telemetry
from sitl.copter.boot import DEFAULT_BOOT_S
from sitl.copter.params import DEFAULT_FIRMWARE, FIRMWARES, ParamStore
from sitl.copter.vehicle import SimCopter

log = logging.getLogger("sitl.copter.fleet")
STEP_S = 0.1  # simulated seconds per physics step (10 Hz)
HEARTBEAT_S = 1.0
MAX_CATCHUP = 10  # at most 1 s of simulated time in one burst; beyond that, time slips


class SimCopterFleet:
    """Many simulated copters in one process/event loop. Use as `async with SimCopterFleet(...) as fleet:`."""

    def __init__(
        self,
        count: int = 1,
        *,
        home: tuple[float, float, float, float] = (33.4484, -112.2590, 300.0, 0.0),
        speedup: float = 1.0,
        base_port: int = 5760,
        host: str = "127.0.0.1",
        udp_out: Sequence[str] = (),
        params: Mapping[str, float] | None = None,
        batteries: Sequence[float] | None = None,
        first_sysid: int = 1,
        boot_s: float = DEFAULT_BOOT_S,
        firmware: str = DEFAULT_FIRMWARE,
        homes: Sequence[tuple[float, float, float, float]] | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        if batteries is not None and len(batteries) != count:
            raise ValueError("batteries must give one fraction per vehicle")
        if homes is not None and len(homes) != count:
            raise ValueError("homes must give one (lat, lon, alt, heading) per vehicle")
        if boot_s < 0:
            raise ValueError("boot_s must not be negative")
        if firmware not in FIRMWARES:
            raise ValueError(f"firmware must be one of {', '.join(FIRMWARES)}")
        self.count = count
        self.first_sysid = first_sysid
        self.home = home
        # Where each copter stands at boot (its pad); default: all at `home`.
        self.homes = [tuple(h) for h in homes] if homes is not None else [home] * count
        self.speedup = float(speedup)
        self.base_port = base_port
        self.host = host
        self.udp_out = list(udp_out)
        self.params = dict(params or {})
        self.batteries = list(batteries) if batteries is not None else [1.0] * count
        self.boot_s = float(boot_s)
        self.firmware = firmware
        self.vehicles: list[SimCopter] = []
        self.tcp_ports: list[int] = []  # SERIAL0
        self.telemetry_ports: list[int] = []  # SERIAL1
        self._servers: list[asyncio.Server] = []
        self._task: asyncio.Task[None] | None = None
        self._t0 = 0.0  # loop time at which simulated time would have been 0 at the current speed-up
        self._sim = 0.0  # simulated seconds stepped so far

    async def __aenter__(self) -> SimCopterFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def set_speedup(self, speedup: float) -> None:
        """Change the speed-up while running (tests hurry through long cruises); no jump in time."""
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        now = asyncio.get_running_loop().time() if self._task is not None else 0.0
        self.speedup = float(speedup)
        self._t0 = now - self._sim / self.speedup
        for v in self.vehicles:
            v.params.set("SIM_SPEEDUP", self.speedup)

    @property
    def sim_time_s(self) -> float:
        """Simulated seconds since the fleet started: the copters' own clock, which slips behind
        `speedup` x wall time when the machine cannot keep up."""
        return self._sim

    def urls(self) -> list[str]:
        """SERIAL0 of each vehicle, e.g. "tcp:127.0.0.1:5760", index i -> vehicle i: MAVLink channel 0."""
        return [f"tcp:{self.host}:{port}" for port in self.tcp_ports]

    def telemetry_urls(self) -> list[str]:
        """SERIAL1 of each vehicle (5762 + 10*i): a telemetry link, where signing is enforced."""
        return [f"tcp:{self.host}:{port}" for port in self.telemetry_ports]

    async def start(self) -> None:
        """Create the vehicles, open their ports, and start the clock."""
        try:
            for i in range(self.count):
                sysid = self.first_sysid + i
                store = ParamStore(self.params, firmware=self.firmware)
                store.set(store.wire_name("MAV_SYSID"), sysid)
                store.set("SIM_SPEEDUP", self.speedup)
                v = SimCopter(sysid, self.homes[i], store, battery=self.batteries[i], boot_s=self.boot_s)
                self.vehicles.append(v)
                port = 0 if self.base_port == 0 else self.base_port + 10 * i
                server = await link.serve_tcp(v, self.host, port, trusted=True)
                self._servers.append(server)
                self.tcp_ports.append(server.sockets[0].getsockname()[1])
                telemetry = await link.serve_tcp(v, self.host, 0 if port == 0 else port + 2)
                self._servers.append(telemetry)
                self.telemetry_ports.append(telemetry.sockets[0].getsockname()[1])
                for target in self.udp_out:
                    await link.open_udp_out(v, target, self.host)
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._run(), name="sitl.copter.fleet.clock")

    async def stop(self) -> None:
        """Stop the clock, close the servers and every link."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for server in self._servers:
            server.close()
        for v in self.vehicles:
            for outlet in list(v.outlets):
                outlet.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        self._servers.clear()

    def _step_all(self) -> None:
        for v in self.vehicles:
            v.step(STEP_S)
            if v.time_s + 1e-9 >= v.next_heartbeat_s:
                v.next_heartbeat_s = v.time_s + HEARTBEAT_S
                gcs.update_signing_timestamp(v)
                v.emit(telemetry.heartbeat(v))
            for outlet in list(v.outlets):
                outlet.tick()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._t0 = loop.time() - self._sim / self.speedup
        while True:
            target = (loop.time() - self._t0) * self.speedup
            steps = 0
            while self._sim + STEP_S <= target + 1e-9 and steps < MAX_CATCHUP:
                self._sim += STEP_S
                try:
                    self._step_all()
                except Exception:
                    log.exception("simulation step failed")
                steps += 1
                if self._sim + STEP_S <= target + 1e-9:
                    await asyncio.sleep(0)  # let links read and answer between catch-up steps
            if steps == MAX_CATCHUP:  # let simulated time slip instead of spiralling
                self._t0 = loop.time() - self._sim / self.speedup
            wake = self._t0 + (self._sim + STEP_S) / self.speedup
            await asyncio.sleep(max(0.0, wake - loop.time()))
