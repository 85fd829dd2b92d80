"""The console's server side over real HTTP and WebSocket, without a browser: the page and its files, the
map, the session and queue endpoints, and the live channel, each with the API's roles."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from controller.service import StationService
from controller.store import Store
from tests.web.conftest import DISPATCHER, OPERATOR, VIEWER, at, station_config
from tests.web.serving import ConsoleServer, plain_service
from vehicles.spec import DRONE_DEFAULT, ROBOT_DEFAULT


@pytest.fixture(scope="module")
def server() -> Iterator[ConsoleServer]:
    """A station without vehicle links (nothing flies): only the console's endpoints are under test."""
    tmp = Path(tempfile.mkdtemp(prefix="lastmile-console-routes-"))
    config = station_config(tmp)

    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[StationService]:
        async with plain_service(StationService(config, Store(f"sqlite:///{tmp / 's.sqlite3'}"))) as service:
            yield service

    with ConsoleServer(factory) as srv:
        yield srv
    shutil.rmtree(tmp, ignore_errors=True)


def get(server: ConsoleServer, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(server.url + path, headers=headers, timeout=10)


def test_the_page_and_its_files_are_served_without_a_token(server: ConsoleServer) -> None:
    page = get(server, "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/console/console.js">' in page.text
    for name, kind in [("console.js", "javascript"), ("map.js", "javascript"), ("api.js", "javascript"),
                       ("panels.js", "javascript"), ("console.css", "text/css")]:  # fmt: skip
        r = get(server, f"/console/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"], name
    assert "http" not in get(server, "/console/console.js").text.split("//", 1)[0]  # nothing from a CDN
    assert get(server, "/console/missing.js").status_code == 404


def test_map_needs_fleet_read(server: ConsoleServer) -> None:
    assert get(server, "/v1/map").status_code == 401
    assert get(server, "/v1/map", "nope").status_code == 401
    assert get(server, "/v1/map", DISPATCHER).status_code == 403
    assert get(server, "/v1/map", VIEWER).status_code == 200


def test_map_has_station_radii_zones_in_metres(server: ConsoleServer) -> None:
    m = get(server, "/v1/map", OPERATOR).json()
    assert m["station"]["name"] == "console test" and m["station"]["launch"] == "operator"
    assert m["radii"] == {"drone_m": DRONE_DEFAULT.max_range_m, "robot_m": ROBOT_DEFAULT.max_range_m}
    assert {f["id"] for f in m["zones"]["features"]} == {"tfr", "mall", "area"}
    shapes = {s["id"]: s for s in m["shapes"]}
    tfr = shapes["tfr"]
    assert (
        tfr["r"] == 1200 and abs(tfr["cx"] - 6000) < 20 and abs(tfr["cy"]) < 20
    )  # metres east of the station
    [[outer]] = shapes["mall"]["polygons"]
    assert min(x for x, _ in outer) == pytest.approx(-900, abs=5) and max(
        y for _, y in outer
    ) == pytest.approx(900, abs=5)
    assert shapes["area"]["kind"] == "operating_area"
    assert m["missions"] == [] and m["grounded"] is None


def test_session_says_who_the_token_is(server: ConsoleServer) -> None:
    assert get(server, "/v1/console/session", "nope").status_code == 401
    assert get(server, "/v1/console/session", VIEWER).json()["role"] == "viewer"
    who = get(server, "/v1/console/session", DISPATCHER).json()
    assert who["role"] == "dispatcher" and "fleet:read" not in who["permissions"]
    assert "fleet:write" in get(server, "/v1/console/session", OPERATOR).json()["permissions"]


def test_queue_gives_each_unfinished_package_its_decision_and_place(server: ConsoleServer) -> None:
    service = server.service
    assert service is not None
    server.call(lambda: service.ground("queue test"))  # so the package waits (no vehicle is linked here)
    try:
        lat, lon = at(1000, -2000)
        body = {"key": "q-1", "weight": 1, "weight_unit": "kg", "dest_lat": lat, "dest_lon": lon}
        r = httpx.post(server.url + "/v1/packages", json=body, timeout=10,
                       headers={"Authorization": f"Bearer {OPERATOR}"})  # fmt: skip
        assert r.status_code == 201, r.text
        assert get(server, "/v1/console/queue").status_code == 401
        queue = get(server, "/v1/console/queue", VIEWER).json()
    finally:
        server.call(service.unground)
    [item] = [i for i in queue["items"] if i["key"] == "q-1"]
    assert item["state"] == "received" and queue["waiting"] >= 1
    assert item["decision"]["decision"] == "queued"
    assert item["decision"]["reason"] == "fleet grounded: queue test"
    assert item["x"] == pytest.approx(1000, abs=15) and item["y"] == pytest.approx(-2000, abs=15)


def live_url(server: ConsoleServer, **query: Any) -> str:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return f"ws://127.0.0.1:{server.port}/v1/console/live?{q}"


def test_live_sends_hello_events_and_telemetry(server: ConsoleServer) -> None:
    with connect(live_url(server, token=VIEWER, since=0), open_timeout=10) as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello["type"] == "hello" and hello["role"] == "viewer" and hello["station"] == "console test"
        kinds: set[str] = set()
        seqs: list[int] = []
        while not {"telemetry", "service"} <= kinds:
            msg = json.loads(ws.recv(timeout=5))
            kinds.add(msg["type"])
            if "seq" in msg:
                seqs.append(msg["seq"])
            if msg["type"] == "telemetry":
                ids = {v["id"] for v in msg["vehicles"]}
                assert ids == {"d1", "d2", "r1", "v1"}
                assert all(v["online"] is False and v["x"] is None for v in msg["vehicles"])
        oldest = server.service.bus.recent(0)[0]["seq"]
        assert seqs == sorted(seqs) and seqs[0] == oldest  # replayed from the start of the history


def test_live_refuses_bad_tokens_with_the_api_codes(server: ConsoleServer) -> None:
    for token, code in [("nope", 4401), (DISPATCHER, 4403)]:
        with (
            connect(live_url(server, token=token), open_timeout=10) as ws,
            pytest.raises(ConnectionClosed) as info,
        ):
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == code
