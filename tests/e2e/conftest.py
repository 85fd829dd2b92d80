"""Fixtures for end-to-end drone flights against `sitl.copter` over real sockets (all named `drone_*`).

Time: the simulator runs at SPEEDUP x real time, so the driver's GCS heartbeat is sped up to match
(FS_GCS_TIMEOUT is counted in simulated seconds) and its link watchdog is shortened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.relays import (
    TcpRelay,
    lossy_relay,  # noqa: F401 (a fixture for the tests here)
)

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
