"""The van feed, the live event stream, grounding, missions, van routes and the day report, over real
HTTP and WebSocket."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from controller.api.server import ApiThread
from tests.api.helpers import ROLE_TOKEN, package


def _events(api: ApiThread, since: int) -> ClientConnection:
    url = f"{api.url.replace('http', 'ws')}/v1/events?since={since}&token={ROLE_TOKEN['operator']}"
    return connect(url, open_timeout=10)


def _wait_event(ws: ClientConnection, match: Callable[[dict[str, Any]], bool], timeout: float = 15) -> dict:
    """The first event that matches, or AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = json.loads(ws.recv(timeout=left))
        if match(event):
            return event
    raise AssertionError("no matching event in time")


def _seq(op: httpx.Client) -> int:
    return op.get("/healthz").json()["last_event"]


# --- van feed -------------------------------------------------------------------------------------


def _drain(op: httpx.Client, since: int, limit: int) -> tuple[list[dict], int]:
    items: list[dict] = []
    while True:
        page = op.get("/v1/van-fallback", params={"since": since, "limit": limit}).json()
        items += page["items"]
        since = page["next"]
        if not page["more"]:
            return items, since


def test_van_feed_gives_each_handover_exactly_once_per_cursor(as_role: Callable[[str], httpx.Client]) -> None:
    dispatcher, op = as_role("dispatcher"), as_role("operator")
    dispatcher.post("/v1/packages", json={"packages": [package(f"v-{i}") for i in range(7)]})
    first, cursor = _drain(dispatcher, 0, limit=3)
    assert [i["package"]["key"] for i in first] == [f"v-{i}" for i in range(7)]
    assert all(i["reasons"] == ["no_vehicle_available"] and not i["failed_attempts"] for i in first)
    # Nothing new: the cursor gives nothing, however often it is asked.
    assert dispatcher.get("/v1/van-fallback", params={"since": cursor}).json()["items"] == []
    # New hand-overs (one from intake, one by an operator) come once each from the same cursor.
    dispatcher.post("/v1/packages", json=package("v-late"))
    op.post("/v1/fleet/ground", json={"reason": "hold"})
    held = dispatcher.post("/v1/packages", json=package("v-held")).json()["id"]
    op.post(f"/v1/packages/{held}/van")
    more, cursor2 = _drain(dispatcher, cursor, limit=1)
    assert [i["package"]["key"] for i in more] == ["v-late", "v-held"]
    assert more[1]["reasons"] == ["operator"]
    assert cursor2 > cursor
    everything, _ = _drain(dispatcher, 0, limit=1000)
    ids = [i["package"]["id"] for i in everything]
    assert len(ids) == len(set(ids)) == 9


def test_van_feed_rejects_a_bad_cursor(op: httpx.Client) -> None:
    r = op.get("/v1/van-fallback", params={"since": -1})
    assert r.status_code == 422 and r.json()["error"]["field"] == "since"


def test_van_routes_cover_the_van_packages(op: httpx.Client) -> None:
    op.post(
        "/v1/packages",
        json={"packages": [package(f"r-{i}", dest_lat=33.44 + 0.01 * i, weight=20) for i in range(4)]},
    )
    r = op.get("/v1/van-routes", params={"time_limit_s": 0.5})
    assert r.status_code == 200, r.text
    plan = r.json()
    routed = {s for route in plan["routes"] for s in route["stops"]}
    unrouted = {u["package_id"] for u in plan["unassigned"]}
    assert plan["packages"] == 4 and len(routed | unrouted) == 4
    assert plan["feasible"] is True and routed


# --- live events ----------------------------------------------------------------------------------


def test_websocket_streams_the_package_events_of_a_post(api: ApiThread, op: httpx.Client) -> None:
    with _events(api, _seq(op)) as ws:
        pid = op.post("/v1/packages", json=package("ws-1")).json()["id"]
        received = _wait_event(ws, lambda e: e["type"] == "package" and e.get("package_id") == pid)
        assert received["state"] == "received" and received["key"] == "ws-1"
        to_van = _wait_event(ws, lambda e: e.get("package_id") == pid and e.get("state") == "van")
        assert to_van["seq"] > received["seq"]


def test_websocket_replays_from_since(api: ApiThread, op: httpx.Client) -> None:
    start = _seq(op)
    pid = op.post("/v1/packages", json=package("ws-replay")).json()["id"]
    with _events(api, start) as ws:  # connected after the fact: the replay still has it
        event = _wait_event(ws, lambda e: e.get("package_id") == pid)
        assert event["seq"] > start
    recent = op.get("/v1/events/recent", params={"since": start}).json()
    assert any(e.get("package_id") == pid for e in recent["events"])
    assert recent["last_seq"] >= event["seq"]


# --- grounding ------------------------------------------------------------------------------------


def test_ground_keeps_packages_queued_and_unground_releases_them(api: ApiThread, op: httpx.Client) -> None:
    r = op.post("/v1/fleet/ground", json={"reason": "gusts 14 m/s"})
    assert r.status_code == 200 and r.json()["grounded"] is True
    first = op.post("/v1/packages", json=package("g-1")).json()
    assert first["state"] == "received"
    assert first["decision"]["decision"] == "queued"
    assert first["decision"]["reason"] == "fleet grounded: gusts 14 m/s"
    op.post("/v1/packages", json=package("g-2"))  # another planning request: still nothing moves
    assert op.get(f"/v1/packages/{first['id']}").json()["state"] == "received"
    status = op.get("/v1/fleet").json()
    assert status["grounded_reason"] == "gusts 14 m/s" and status["queue"]["received"] == 2
    with _events(api, _seq(op)) as ws:
        released = op.post("/v1/fleet/unground")
        assert released.status_code == 200 and released.json()["grounded"] is False
        _wait_event(ws, lambda e: e.get("package_id") == first["id"] and e.get("state") == "van")
    after = op.get(f"/v1/packages/{first['id']}").json()
    assert after["state"] == "van" and after["decision"]["decision"] == "van"


def test_fleet_lists_every_vehicle_and_the_queue(op: httpx.Client) -> None:
    status = op.get("/v1/fleet").json()
    assert [v["vehicle_id"] for v in status["vehicles"]] == ["d1", "d2", "r1", "v1", "v2"]
    assert set(status["queue"]) >= {"received", "van", "delivered"}
    assert status["grounded"] is False


# --- missions -------------------------------------------------------------------------------------


def test_missions_list_and_unknown_mission_actions(op: httpx.Client) -> None:
    assert op.get("/v1/missions").json() == []
    assert op.get("/v1/missions", params={"all": "true"}).json() == []
    for action in ("launch", "abort"):
        r = op.post(f"/v1/missions/nope/{action}")
        assert r.status_code == 404 and r.json()["error"]["field"] == "mission_id"


# --- report ---------------------------------------------------------------------------------------


def test_report_counts_the_day(op: httpx.Client) -> None:
    op.post("/v1/packages", json={"packages": [package(f"rep-{i}") for i in range(3)]})
    op.post("/v1/packages", json=package("rep-heavy", weight=30, weight_unit="kg"))
    today = datetime.now(UTC).date().isoformat()
    report = op.get("/v1/report", params={"day": today}).json()
    assert report["day"] == today
    assert report["received"] == 4
    assert report["van_fallbacks"]["total"] == 4
    assert report["van_fallbacks"]["by_reason"]["overweight"] == 1
    assert report["delivered"]["total"] == 0 and report["failures"]["total"] == 0
    other = op.get("/v1/report", params={"day": "2020-01-01"}).json()
    assert other["received"] == 0
    bad = op.get("/v1/report", params={"day": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "day"


def test_van_feed_includes_packages_that_failed_in_the_air(api: ApiThread, op: httpx.Client) -> None:
    # Grounded, so the planner leaves the package alone; its flight is then written as the mission layer
    # would (the real flights are in tests/e2e), straight into the store.
    op.post("/v1/fleet/ground", json={"reason": "test"})
    pid = op.post("/v1/packages", json=package("air-1")).json()["id"]
    cursor = op.get("/v1/van-fallback").json()["next"]
    for state, reason, extra in [
        ("assigned", "assigned to drone d1", {"vehicle_id": "d1", "mode": "drone"}),
        ("launching", "launching d1", {}),
        ("en_route", "d1 under way", {}),
        ("failed", "battery failsafe", {}),
        ("van", "2 attempt(s) failed; last: battery failsafe", {"reasons": ["flight_failed"]}),
    ]:
        api.store.transition(pid, state, reason=reason, **extra)
    page = op.get("/v1/van-fallback", params={"since": cursor}).json()
    [item] = page["items"]
    assert item["package"]["id"] == pid
    assert item["failed_attempts"] is True and item["reasons"] == ["flight_failed"]
    assert "battery failsafe" in item["reason"]
    assert op.get("/v1/van-fallback", params={"since": page["next"]}).json()["items"] == []


def test_an_abort_the_robot_refused_is_a_409_and_one_nobody_heard_a_503(
    api: ApiThread, op: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The abort route answers what the vehicle did (the robot side is tested against the simulator and
    vda-5050-lib in tests/vehicles/vda5050 and tests/interop): never `ok` while the robot drives on."""
    from vehicles.errors import LinkError
    from vehicles.vda5050.errors import CancelRefused

    async def refused(mission_id: str) -> None:
        raise CancelRefused("cancelOrder refused: noOrderToCancel", vehicle="r1")

    async def unheard(mission_id: str) -> None:
        raise LinkError("no broker", vehicle="r1")

    monkeypatch.setattr(api.service, "abort", refused)
    r = op.post("/v1/missions/m-1/abort")
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "cancel_refused" and "noOrderToCancel" in error["reason"]
    monkeypatch.setattr(api.service, "abort", unheard)
    r = op.post("/v1/missions/m-1/abort")
    assert r.status_code == 503 and r.json()["error"]["code"] == "vehicle_unreachable", r.text
