"""Fixtures for the console tests: a simulated station with the console, and real headless Chromium.

Chromium is the Debian package (`/usr/bin/chromium`, or `$LASTMILE_CHROMIUM`), driven by Playwright for
Python; the flags keep it off the network (without them it hangs on a closed network trying to reach
Google's services). The tests are skipped, not failed, on a machine without Chromium or Playwright.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.simstation import SimStation
from controller.station import StationConfig
from controller.tokens import hash_tokens
from tests.web.serving import ConsoleServer

STATION = (33.4400, -112.2560)
TOKENS = {"op-token": "operator", "view-token": "viewer", "disp-token": "dispatcher"}
HASHED = hash_tokens(TOKENS)  # type: ignore[arg-type] # the station file's salted hashes of TOKENS
OPERATOR, VIEWER, DISPATCHER = "op-token", "view-token", "disp-token"
CHROMIUM = os.environ.get("LASTMILE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def at(east_m: float, north_m: float) -> tuple[float, float]:
    """(lat, lon) of a point east/north of the station (flat-earth; fine at a few km)."""
    lat = STATION[0] + north_m / 111_320.0
    lon = STATION[1] + east_m / (111_320.0 * math.cos(math.radians(STATION[0])))
    return lat, lon


def zones_geojson() -> dict[str, Any]:
    """A no-fly circle, a no-go polygon for robots and an operating area around it all."""

    def ring(points: list[tuple[float, float]]) -> list[list[float]]:
        coords = [[at(e, n)[1], at(e, n)[0]] for e, n in points]
        return [*coords, coords[0]]

    box = ring([(-12000, -12000), (12000, -12000), (12000, 12000), (-12000, 12000)])
    mall = ring([(-900, 400), (-400, 400), (-400, 900), (-900, 900)])
    lat, lon = at(6000, 0)
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "tfr", "geometry": {"type": "Point", "coordinates": [lon, lat]},
         "properties": {"kind": "no_fly", "radius_m": 1200, "name": "stadium TFR"}},
        {"type": "Feature", "id": "mall", "properties": {"kind": "no_go", "name": "mall"},
         "geometry": {"type": "Polygon", "coordinates": [mall]}},
        {"type": "Feature", "id": "area", "properties": {"kind": "operating_area", "name": "service area"},
         "geometry": {"type": "Polygon", "coordinates": [box]}},
    ]}  # fmt: skip


def station_config(tmp: Path, **extra: Any) -> StationConfig:
    (tmp / "zones.geojson").write_text(json.dumps(zones_geojson()))
    return StationConfig.model_validate({
        "name": "console test", "lat": STATION[0], "lon": STATION[1], "alt_m": 300.0,
        "zones_file": str(tmp / "zones.geojson"), "tick_s": 0.5, "launch": "operator",
        "fleet": [{"id": "d1", "kind": "drone"}, {"id": "d2", "kind": "drone"}, {"id": "r1", "kind": "robot"},
                  {"id": "v1", "kind": "van"}],
        "api": {"tokens": HASHED}, **extra,
    })  # fmt: skip


@pytest.fixture(scope="module")
def sim_station() -> Iterator[ConsoleServer]:
    """A simulated station (2 drones, 1 robot, launch by operator) with the API and the console."""
    tmp = Path(tempfile.mkdtemp(prefix="lastmile-console-"))
    config = station_config(tmp)

    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[SimStation]:
        async with SimStation(config, store_url=f"sqlite:///{tmp / 's.sqlite3'}", speedup=20) as station:
            yield station

    with ConsoleServer(factory) as server:
        yield server
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def shots() -> Path:
    """Where the tests write their screenshots (printed, kept after the run)."""
    path = Path(os.environ.get("LASTMILE_SHOTS") or tempfile.mkdtemp(prefix="lastmile-shots-"))
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole screenshots: {path}")
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session (each test opens its own context)."""
    in_ci = os.environ.get("CI") == "true"  # CI installs both: there a missing browser is a failure
    try:
        import playwright.sync_api as sync_api
    except ImportError:
        if in_ci:
            raise
        pytest.skip("playwright is not installed: browser tests did not run")
    if not Path(CHROMIUM).exists():
        if in_ci:
            pytest.fail(f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM}: browser tests did not run")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Console:
    """A page of the console plus every console error it logged."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


@pytest.fixture
def open_console(browser: Any) -> Iterator[Callable[..., Console]]:
    """`open_console(url, token)`: a fresh context (own sessionStorage), logged in through the form."""
    contexts: list[Any] = []

    def open_(url: str, token: str, *, width: int = 1400, height: int = 850) -> Console:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        console = Console(context.new_page())
        page = console.page
        page.set_default_timeout(15_000)
        page.goto(url + "/")
        page.fill("#token", token)
        page.click("#login button[type=submit]")
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_selector("#conn[data-state='live']")
        return console

    yield open_
    for context in contexts:
        context.close()
