"""Fixtures for the API tests: a real station (SQLite store, `StationService`, uvicorn) on a free port.

The server runs on a background thread with its own event loop (`controller.api.server.ApiThread`), so the
tests are plain synchronous code talking real HTTP and WebSocket, as an integrator's would. No vehicles
are connected: every package the planner cannot queue goes to a van with `no_vehicle_available`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from controller.api.server import ApiThread
from controller.station import StationConfig
from tests.api.helpers import ROLE_TOKEN, station_config


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Callable[..., ApiThread]]:
    """Start a station API with a given config; stopped after the test."""
    running: list[ApiThread] = []

    def start(config: StationConfig | None = None) -> ApiThread:
        api = ApiThread(config or station_config(), f"sqlite:///{tmp_path / f'store{len(running)}.sqlite3'}")
        running.append(api.__enter__())
        return api

    yield start
    for api in running:
        api.__exit__(None, None, None)


@pytest.fixture
def api(make_api: Callable[..., ApiThread]) -> ApiThread:
    """A running station API with the default test config."""
    return make_api()


@pytest.fixture
def as_role(api: ApiThread) -> Iterator[Callable[[str], httpx.Client]]:
    """`as_role("operator")`: an HTTP client with that role's token."""
    clients: list[httpx.Client] = []

    def client(role: str) -> httpx.Client:
        c = httpx.Client(
            base_url=api.url, headers={"Authorization": f"Bearer {ROLE_TOKEN[role]}"}, timeout=30
        )
        clients.append(c)
        return c

    yield client
    for c in clients:
        c.close()


@pytest.fixture
def op(as_role: Callable[[str], httpx.Client]) -> httpx.Client:
    """An operator's client (may do everything)."""
    return as_role("operator")
