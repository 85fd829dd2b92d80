"""The console in real headless Chromium against a simulated station (drones over MAVLink, a robot over
MQTT), the API and the console served on one port, as an operator and a viewer would use it.

The tests in this module share one station and run in order: the operator flies and aborts a delivery,
the viewer then looks at the same station, and last the server is restarted under an open page.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.conftest import OPERATOR, STATION, VIEWER, Console, at
from tests.web.serving import ConsoleServer

pytestmark = pytest.mark.slow
VISIBLE_VEHICLES = "#layer-vehicles g.vehicle:not([display])"


def client(server: ConsoleServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    """Until `check()` is truthy: the simulator has no events to wait on, so it is sampled (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s} s: {what}")
        time.sleep(0.1)


def copter(server: ConsoleServer, vehicle_id: str) -> Any:
    station = server.context
    return station.copters.vehicles[station.drone_ids.index(vehicle_id)]


def metres_from_home(vehicle: Any) -> float:
    dn = (vehicle.lat - STATION[0]) * 111_320.0
    de = (vehicle.lon - STATION[1]) * 111_320.0 * math.cos(math.radians(STATION[0]))
    return math.hypot(dn, de)


def held_mission(server: ConsoleServer) -> dict[str, Any]:
    with client(server, OPERATOR) as op:
        return wait_for("a held mission", lambda: next(
            (m for m in op.get("/v1/missions").json() if m["state"] == "held"), None))  # fmt: skip


def test_operator_launches_and_aborts_a_delivery_from_the_map(
    sim_station: ConsoleServer, open_console: Callable[..., Console], shots: Path
) -> None:
    server = sim_station
    console = open_console(server.url, OPERATOR)
    page = console.page

    # The map: three zones (exclusions filled red, the operating area outlined), both radii, the vehicles.
    page.wait_for_selector(f"{VISIBLE_VEHICLES} >> nth=2")
    assert page.locator("#layer-zones [data-zone]").count() == 3
    assert page.locator("#layer-zones .zone.excl").count() == 2
    assert page.locator("#layer-zones .zone.area").count() == 1
    assert page.locator("#layer-radii circle[data-radius]").count() == 2
    drawn = set(page.eval_on_selector_all(VISIBLE_VEHICLES, "els => els.map(e => e.dataset.vehicle)"))
    assert {"d1", "d2", "r1"} <= drawn
    page.screenshot(path=str(shots / "1-loaded.png"))

    # A package arrives: the station holds its mission for an operator; the page shows it within a second.
    lat, lon = at(1500, 1200)
    with client(server, OPERATOR) as op:
        r = op.post("/v1/packages", json={"key": "console-1", "weight": 1.0, "weight_unit": "kg",
                                          "dest_lat": lat, "dest_lon": lon})  # fmt: skip
        assert r.status_code == 201, r.text
        package_id = r.json()["id"]
    mission = held_mission(server)
    vid = mission["vehicle_id"]
    launch = page.locator(f"#missions tr[data-mission='{mission['id']}'] button[data-action='launch']")
    launch.wait_for(timeout=3000)
    page.wait_for_selector(f"#layer-dests [data-package='{package_id}']")
    page.wait_for_selector(f"#layer-routes polyline.route[data-mission='{mission['id']}']")
    marker = page.locator(f"#layer-vehicles [data-vehicle='{vid}']")
    x0, y0 = float(marker.get_attribute("data-x")), float(marker.get_attribute("data-y"))  # type: ignore[arg-type]

    # Launch from the page: a confirmation first (cancel does nothing), then the drone takes off.
    launch.click()
    page.wait_for_selector("#confirm[open]")
    page.click("#confirm button[value=cancel]")
    assert copter(server, vid).armed is False
    launch.click()
    page.click("#confirm-ok")
    wait_for("the drone climbs", lambda: copter(server, vid).alt_m > 10.0, 60)
    page.wait_for_function(
        """([id, x0, y0]) => { const g = document.querySelector(`#layer-vehicles [data-vehicle='${id}']`);
             return Math.hypot(g.dataset.x - x0, g.dataset.y - y0) > 100; }""",
        arg=[vid, x0, y0], timeout=60_000,
    )  # fmt: skip
    page.wait_for_selector(f"#layer-vehicles [data-vehicle='{vid}'][data-state='busy']")
    page.wait_for_function(
        "id => (document.querySelector(`polyline.track[data-mission='${id}']`)?.points.length ?? 0) >= 3",
        arg=mission["id"],
    )
    page.wait_for_selector(f"#missions tr[data-mission='{mission['id']}'][data-state='en_route']")
    page.wait_for_function(  # well out, for a screenshot that shows the route and the track
        """id => { const d = document.querySelector(`[data-vehicle='${id}']`).dataset;
                   return Math.hypot(d.x, d.y) > 700; }""",
        arg=vid,
    )
    page.click("#map-tools [data-zoom=in]")
    page.screenshot(path=str(shots / "2-flying.png"))

    # Abort from the page: the drone comes home and lands; the mission ends aborted.
    page.click(f"#missions tr[data-mission='{mission['id']}'] button[data-action='abort']")
    page.click("#confirm-ok")
    page.wait_for_selector("#toast:not([hidden])")
    with client(server, OPERATOR) as op:
        wait_for("the mission is aborted", lambda: any(
            m["id"] == mission["id"] and m["state"] == "aborted"
            for m in op.get("/v1/missions?all=true").json()
        ), 90)  # fmt: skip
    drone = copter(server, vid)
    wait_for("the drone is back and disarmed", lambda: not drone.armed and metres_from_home(drone) < 25, 90)
    page.wait_for_selector(f"#missions tr[data-mission='{mission['id']}']", state="detached")
    page.wait_for_function(
        """id => { const d = document.querySelector(`[data-vehicle='${id}']`).dataset;
                   return Math.hypot(d.x, d.y) < 40; }""",
        arg=vid,
    )
    page.screenshot(path=str(shots / "3-aborted.png"))
    assert not console.errors, console.errors


def test_viewer_sees_everything_and_can_do_nothing(
    sim_station: ConsoleServer, open_console: Callable[..., Console], shots: Path
) -> None:
    server = sim_station
    mission = held_mission(server)  # the aborted package was planned again, and held
    console = open_console(server.url, VIEWER)
    page = console.page
    page.wait_for_selector(f"#missions tr[data-mission='{mission['id']}']")
    page.wait_for_selector(f"{VISIBLE_VEHICLES} >> nth=2")
    assert page.locator("#queue tbody tr").count() >= 1
    page.wait_for_selector("#fleet tbody tr >> nth=3")
    assert page.locator("#fleet tbody tr").count() == 4
    page.wait_for_selector("#events li >> nth=5")
    assert page.locator("button[data-action]").count() == 0
    assert page.inner_text("#role") == "viewer"

    # The filter narrows the panels and dims the other vehicles on the map.
    page.fill("#filter", "r1")  # ("d2" could be part of a mission id, in hex)
    page.wait_for_selector("#layer-vehicles [data-vehicle='d1'].dim")
    assert page.locator("#fleet tbody tr:not(.hidden)").count() == 1
    assert "dim" not in (page.get_attribute("[data-vehicle='r1']", "class") or "")
    page.fill("#filter", "")
    page.wait_for_selector("#layer-vehicles [data-vehicle='d1']:not(.dim)")
    page.screenshot(path=str(shots / "4-viewer.png"))
    assert not console.errors, console.errors

    # The API refuses the viewer's writes whoever sends them: this page's own fetch, and a plain client.
    status = page.evaluate(
        """async (id) => (await fetch(`/v1/missions/${id}/launch`, {method: "POST",
             headers: {Authorization: `Bearer ${sessionStorage.getItem("lastmile.token")}`}})).status""",
        mission["id"],
    )
    assert status == 403
    with client(server, VIEWER) as viewer:
        writes = [
            f"/v1/missions/{mission['id']}/launch",
            f"/v1/missions/{mission['id']}/abort",
            "/v1/fleet/ground",
            "/v1/fleet/unground",
            f"/v1/packages/{mission['package_id']}/van",
        ]
        for path in writes:
            assert viewer.post(path).status_code == 403, path
    assert held_mission(server)["id"] == mission["id"]  # nothing moved


def test_page_reconnects_after_a_server_restart_and_shows_current_state(
    sim_station: ConsoleServer, open_console: Callable[..., Console], shots: Path
) -> None:
    server = sim_station
    console = open_console(server.url, OPERATOR)
    page = console.page
    assert page.is_hidden("#grounded")
    port = server.port

    server.stop_server()
    page.wait_for_selector("#conn[data-state='offline']", timeout=10_000)
    assert server.service is not None
    service = server.service
    server.call(lambda: service.ground("restart drill"))  # changes while the page cannot hear
    server.start_server()
    assert server.port == port

    page.wait_for_selector("#conn[data-state='live']", timeout=15_000)
    page.wait_for_selector("#grounded:not([hidden])")
    assert "restart drill" in page.inner_text("#grounded")
    page.wait_for_selector("#events li[data-type='fleet']")  # replayed with since=
    page.wait_for_selector("button[data-action='unground']")
    page.screenshot(path=str(shots / "5-reconnected.png"))

    # The page is live again: releasing the fleet from it works and shows at once.
    page.click("button[data-action='unground']")
    page.click("#confirm-ok")
    page.wait_for_selector("#grounded", state="hidden")
    assert service.grounded is None

    # A change made elsewhere (here: another operator's client) shows on the page within a second.
    with client(server, OPERATOR) as op:
        started = time.monotonic()
        assert op.post("/v1/fleet/ground", json={"reason": "seen live"}).status_code == 200
        page.wait_for_selector("#grounded:not([hidden])", timeout=1000)
        print(f"\nAPI change to page: {1000 * (time.monotonic() - started):.0f} ms")

        # While grounded a new package waits; the operator hands it to the vans from the queue panel.
        lat, lon = at(-800, 1500)
        r = op.post("/v1/packages", json={"key": "console-van", "weight": 1.0, "weight_unit": "kg",
                                          "dest_lat": lat, "dest_lon": lon})  # fmt: skip
        package_id = r.json()["id"]
        row = page.locator(f"#queue tr[data-package='{package_id}']")
        row.locator("button[data-action='van']").click()
        page.fill("#confirm-reason", "customer asked for a van")
        page.click("#confirm-ok")
        row.wait_for(state="detached")
        handed = op.get(f"/v1/packages/{package_id}").json()
        assert handed["state"] == "van" and handed["reasons"] == ["operator"]
        assert handed["history"][-1]["reason"] == "customer asked for a van"
        assert op.post("/v1/fleet/unground").status_code == 200
    page.wait_for_selector("#grounded", state="hidden", timeout=1000)
    # The browser logs the refused connections while the server was down; nothing else.
    assert [e for e in console.errors if "WebSocket" not in e and "ERR_CONNECTION_REFUSED" not in e] == []
