"""The customer's tracking page (/track/{token}) in real headless Chromium, under the station's CSP.

What a customer opening the link from a text message sees: the state in plain words, the ETA with its
zone, how the package travels, and a pin east/north of the station; no operator data, no CDN, no inline
code (the browser enforces the policy, so a violation would be a console error). An unknown link says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.api.server import ApiThread
from controller.packages import PackageState as S
from controller.station import NotificationsConfig
from tests.api.helpers import ROLE_TOKEN, package, station_config
from tests.web.conftest import Console

ETA = datetime(2026, 12, 8, 17, 45, tzinfo=UTC)  # 10:45 in Phoenix (no daylight saving)


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiThread]:
    tmp = tmp_path_factory.mktemp("track-page")
    config = station_config().model_copy(
        update={"notifications": NotificationsConfig(time_zone="America/Phoenix")}
    )
    with ApiThread(config, f"sqlite:///{tmp / 's.sqlite3'}") as api:
        yield api


def _open(browser: Any, url: str) -> tuple[Any, Console]:
    context = browser.new_context(viewport={"width": 400, "height": 800})  # a phone
    console = Console(context.new_page())
    console.page.set_default_timeout(15_000)
    console.page.goto(url)
    return context, console


def test_the_tracking_page_shows_state_eta_and_pin_to_anyone_with_the_link(
    browser: Any, station: ApiThread, shots: Path
) -> None:
    op = httpx.Client(base_url=station.url, headers={"Authorization": f"Bearer {ROLE_TOKEN['operator']}"})
    # A grounded fleet: the planner leaves the package on the shelf, and the test moves it as a flight would.
    assert op.post("/v1/fleet/ground", json={"reason": "tracking page test"}).status_code == 200
    created = op.post(
        "/v1/packages", json=package("page-1", recipient="Grace H.", note="leave at the back door")
    ).json()
    url = op.get(f"/v1/packages/{created['id']}").json()["tracking_url"]
    op.close()
    store = station.store
    store.transition(created["id"], S.ASSIGNED, reason="assigned", vehicle_id="d1", mode="drone", eta=ETA)
    store.transition(created["id"], S.LAUNCHING, reason="launching")
    store.transition(created["id"], S.EN_ROUTE, reason="took off")

    context, console = _open(browser, station.url + url)
    page = console.page
    try:
        page.wait_for_function("() => document.querySelector('#state').dataset.state === 'en_route'")
        assert page.locator("#state").text_content() == "On its way"
        assert page.locator("#eta").text_content() == "Expected at 10:45 (America/Phoenix), Tue 8 Dec"
        assert page.locator("#by").text_content() == "Travelling by drone"
        # The pin: 1.2 km north-east of the station, so up and to the right of the station's square.
        pin = page.locator("#pin").bounding_box()
        square = page.locator("#station-mark").bounding_box()
        assert pin is not None and square is not None
        assert pin["x"] > square["x"] + square["width"] and pin["y"] + pin["height"] < square["y"] + 20
        assert "from the station" in page.locator("#pin-map text").text_content()
        html = page.content()
        for private in ("Grace", "back door", "d1", created["id"], "page-1"):
            assert private not in html
        page.screenshot(path=str(shots / "tracking-en-route.png"))

        # Delivered: the page says so without an ETA, at its next refresh (a reload here).
        station.store.transition(created["id"], S.DELIVERED, reason="delivered")
        page.reload()
        page.wait_for_function("() => document.querySelector('#state').dataset.state === 'delivered'")
        assert page.locator("#state").text_content() == "Delivered"
        assert page.locator("#eta").is_hidden()
        assert console.errors == []  # no CSP violation, no script error
    finally:
        context.close()


def test_an_unknown_link_shows_nothing(browser: Any, station: ApiThread) -> None:
    context, console = _open(browser, station.url + "/track/not-a-real-token")
    try:
        assert "Your delivery" not in console.page.content()  # a bare 404, no page, no data
        assert console.errors  # the 404 itself (and the browser's favicon guess)
        assert set(console.errors) == {
            "Failed to load resource: the server responded with a status of 404 (Not Found)"
        }
    finally:
        context.close()
