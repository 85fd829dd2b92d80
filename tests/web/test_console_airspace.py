"""The selected drone's reserved airspace on the console map, in real headless Chromium, from a real booking:
a simulated drone over MAVLink, the real `StationService` booking its flight, the page reading the public
`GET /v1/airspace/intents` and drawing the volumes in the station's frame.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.simstation import SimStation
from tests.web.conftest import OPERATOR, Console, at, station_config
from tests.web.serving import ConsoleServer

pytestmark = pytest.mark.slow
INTENTS = "#layer-intents path.intent"


@pytest.fixture(scope="module")
def one_drone() -> Iterator[ConsoleServer]:
    """A station with one drone (so the test knows who flies) that launches on its own."""
    tmp = Path(tempfile.mkdtemp(prefix="lastmile-console-air-"))
    config = station_config(
        tmp, launch="auto", fleet=[{"id": "d1", "kind": "drone"}, {"id": "v1", "kind": "van"}]
    )

    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[SimStation]:
        async with SimStation(config, store_url=f"sqlite:///{tmp / 's.sqlite3'}", speedup=20) as station:
            yield station

    with ConsoleServer(factory) as server:
        yield server
    shutil.rmtree(tmp, ignore_errors=True)


def drawn(page: Any) -> list[dict[str, Any]]:
    """Every volume drawn on the map: its data attributes, tooltip and outline (map metres, y up)."""
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        INTENTS,
        """els => els.map(e => ({...e.dataset, title: e.querySelector("title").textContent,
                                 d: e.getAttribute("d")}))""",
    )


def click_vehicle(page: Any, vehicle_id: str) -> None:
    """Click a vehicle's marker where it is now, at its origin (inside the arrow whatever its heading)."""
    x, y = page.evaluate(
        """id => { const m = document.querySelector(`#layer-vehicles [data-vehicle='${id}']`).getScreenCTM();
                   return [m.e, m.f]; }""",
        vehicle_id,
    )
    page.mouse.click(x, y)


def outline(d: str) -> list[tuple[float, float]]:
    """The first ring of an SVG path "Mx,yLx,y...Z" drawn with y flipped, as (east, north) metres."""
    first = d.split("Z")[0]
    return [(float(x), -float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", first)]


def test_selecting_a_drone_shows_its_reserved_volumes_until_its_flight_ends(
    one_drone: ConsoleServer, open_console: Callable[..., Console], shots: Path
) -> None:
    server = one_drone
    console = open_console(server.url, OPERATOR)
    page = console.page
    marker = page.locator("#layer-vehicles [data-vehicle='d1'] path.body")
    marker.wait_for()

    # Selected from the fleet table before anything is booked: the page says so and draws nothing.
    page.locator("#fleet tbody tr[data-vehicle='d1']").click()
    page.wait_for_selector("#intents[data-vehicle='d1'][data-count='0']")
    assert "no reserved airspace" in page.inner_text("#intents")
    assert page.locator("#fleet tbody tr[data-vehicle='d1'].selected").count() == 1
    assert page.locator("#layer-vehicles [data-vehicle='d1'].selected").count() == 1
    assert page.locator(INTENTS).count() == 0

    # A package: the station books d1's flight at release; the page hears the mission event and draws it.
    lat, lon = at(900, 700)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {OPERATOR}"}, timeout=30) as op:
        r = op.post("/v1/packages", json={"key": "air-1", "weight": 1.0, "dest_lat": lat, "dest_lon": lon})
        assert r.status_code == 201, r.text
        assert r.json()["decision"]["vehicle_id"] == "d1", r.text
        page.wait_for_selector(f"{INTENTS} >> nth=3", timeout=8000)  # on the mission event (or the 5 s poll)
        shown = drawn(page)
        published = op.get("/v1/airspace/intents", params={"vehicle_id": "d1"}).json()["features"]
    kinds = {v["kind"] for v in shown}
    assert {"climb", "cruise", "descent"} <= kinds, kinds
    for v in shown:
        assert float(v["altLo"]) < float(v["altHi"]) and v["t0"] < v["t1"], v
        # The tooltip: the vehicle, the phase, the altitude band and the time window.
        assert v["title"].startswith(f"d1 {v['phase']}"), v["title"]
        assert re.search(r": \d+–\d+ m, [\d:]{8}( [AP]M)?–[\d:]{8}( [AP]M)?$", v["title"]), v["title"]
    listed = page.eval_on_selector_all("#intents li", "els => els.map(e => e.textContent)")
    assert len(listed) == len(shown) and all(v["phase"] in t for v, t in zip(shown, listed, strict=True))

    # Drawn where the planner's own frame (pyproj) puts them: the page projects the WGS84 GeoJSON itself.
    assert server.service is not None
    frame = server.service.config.frame
    matched = 0
    for v in shown:  # the book may have moved some windows since the page read it: matched by outline
        points = outline(v["d"])
        for f in published:
            ring = f["geometry"]["coordinates"][0]
            if f["properties"]["phase"] != v["phase"] or len(ring) != len(points):
                continue
            xs, ys = frame.to_local([p[0] for p in ring], [p[1] for p in ring])
            if max(abs(px - x) + abs(py - y) for (px, py), x, y in zip(points, xs, ys, strict=True)) < 0.05:
                matched += 1
                break
    assert matched >= max(4, len(shown) // 2), (
        matched,
        [(v["phase"], v["t0"], len(outline(v["d"]))) for v in shown],
        [
            (f["properties"]["phase"], f["properties"]["t0"], len(f["geometry"]["coordinates"][0]))
            for f in published
        ],
    )
    page.click("#map-tools [data-zoom=in]")
    page.click("#map-tools [data-zoom=in]")
    page.screenshot(path=str(shots / "airspace-1-selected.png"))

    # A click on the drone's marker clears the selection and the volumes; another brings them back.
    click_vehicle(page, "d1")  # where it is now: Playwright's own click would wait for it to stand still
    page.wait_for_selector("#intents", state="hidden")
    assert page.locator(INTENTS).count() == 0
    assert page.locator("#layer-vehicles [data-vehicle='d1'].selected").count() == 0
    click_vehicle(page, "d1")
    page.wait_for_selector(INTENTS, timeout=8000)
    assert page.evaluate("window.lastmileConsole.selected") == "d1"

    # The flight ends (delivered, back on its pad): the volumes are freed and the page clears them.
    page.wait_for_selector("#intents[data-vehicle='d1'][data-count='0']", timeout=60_000)
    assert page.locator(INTENTS).count() == 0
    page.screenshot(path=str(shots / "airspace-2-flight-over.png"))
    # Redrawn by every refresh since, the station's mark keeps its on-screen size (it lost it once).
    assert "scale(" in (page.get_attribute("#station-mark", "transform") or "")
    page.keyboard.press("Escape")
    page.wait_for_selector("#intents", state="hidden")
    assert page.evaluate("window.lastmileConsole.selected") is None
    assert not console.errors, console.errors
