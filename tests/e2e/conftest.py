"""Fixtures for end-to-end drone flights against `sitl.copter` over real sockets (all named `drone_*`).

Time: the simulator runs at SPEEDUP x real time, so the driver's GCS heartbeat is sped up to match
(FS_GCS_TIMEOUT is counted in simulated seconds) and its link watchdog is shortened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.relays import lossy_relay  # noqa: F401 (a fixture for the tests here)

SPEEDUP = 20.0
STATION = (33.4484, -112.2590)  # lat, lon
HOME = (*STATION, 300.0, 0.0)  # + alt AMSL, heading


@pytest.fixture
def drone_home() -> tuple[float, float, float, float]:
    return HOME


@pytest.fixture
async def drone_fleet() -> AsyncIterator[Callable[..., Any]]:
    """Factory: `fleet = await drone_fleet(count=1, batteries=None, params=None)`; stopped after the test."""
    from sitl.copter import SimCopterFleet

    fleets: list[Any] = []

    async def make(count: int = 1, **kw: Any) -> Any:
        kw.setdefault("home", HOME)
        kw.setdefault("speedup", SPEEDUP)
        fleet = SimCopterFleet(count=count, base_port=0, **kw)
        await fleet.start()
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        await fleet.stop()


@pytest.fixture
async def drone_driver() -> AsyncIterator[Any]:
    """A DroneDriver tuned for a simulator at SPEEDUP (heartbeat every 0.1 s wall = 2 s simulated)."""
    from vehicles.mavlink import DroneDriver

    async with DroneDriver(heartbeat_period_s=0.1, link_timeout_s=1.0) as driver:
        yield driver


class TcpRelay:
    """A TCP man-in-the-middle the test can cut: `cut()` drops every connection and refuses new ones
    (connections are accepted and closed at once), `restore()` lets them through again."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.open = True
        self.server: asyncio.Server | None = None
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []
        self.connections = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"tcp:127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.open = False
        for w in self._writers:
            w.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def drone_tcp_relay() -> AsyncIterator[Callable[[int], Any]]:
    """Factory: `relay = await drone_tcp_relay(sim_port)`; connect the driver to `relay.url`."""
    relays: list[TcpRelay] = []

    async def make(upstream_port: int) -> TcpRelay:
        relay = TcpRelay(upstream_port)
        await relay.start()
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        relay.close()


# Fixtures for tests that run `lastmile serve` in its own process against simulators in another.
from tests.e2e.serving import served_copters  # noqa: E402, F401
