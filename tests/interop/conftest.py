"""Fixtures for the interop tests: the pinned vda-5050-lib, a mosquitto with both peers' logins, our link."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sitl.broker import Broker
from tests.interop.peer import ensure_lib
from vehicles.vda5050 import FleetLink

MANUFACTURER = "lastmile"
LIB_AGV = "agv-001"  # the lib's AgvController (a robot we did not write)
OUR_ROBOT = "robot-001"  # `lastmile sitl robot`, driven by the lib's MasterController
MAP_ID = "local"  # the lib's virtual AGV starts on map "local": the controller must be able to say so


@pytest.fixture(scope="session", autouse=True)
def vda5050_lib() -> None:
    """The third-party peer must be there: CI installs it, and so does this on a developer's machine."""
    ensure_lib()


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    """A real mosquitto on a free port with logins for the controller, the lib's AGV and our robot."""
    async with Broker(robots=(LIB_AGV, OUR_ROBOT), manufacturer=MANUFACTURER, kind="mosquitto") as b:
        yield b


@pytest.fixture
async def link(broker: Broker) -> AsyncIterator[FleetLink]:
    """The controller's link to the broker, connected."""
    user, password = broker.controller_credentials()
    async with FleetLink(
        broker.host, broker.port, username=user, password=password, reconnect_max_s=0.5
    ) as fleet:
        await fleet.wait_connected(10)
        yield fleet


def peer_config(broker: Broker, mode: str, serial: str | None = None, **extra: Any) -> dict[str, Any]:
    """The peer's JSON config: the broker URL and the login of `serial` (the controller's for a master)."""
    user, password = broker.credentials(serial) if serial else broker.controller_credentials()
    return {
        "mode": mode,
        "brokerUrl": f"mqtt://{broker.host}:{broker.port}",
        "username": user,
        "password": password,
        "manufacturer": MANUFACTURER,
        "serialNumber": serial,
        "mapId": MAP_ID,
        **extra,
    }
