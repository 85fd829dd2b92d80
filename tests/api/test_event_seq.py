"""The live stream's sequence numbers over real WebSocket and HTTP: the bus's own, growing across restarts.

A vehicle's events carry fields of their own; MAVLink's MISSION_ITEM_REACHED has a `seq` (the mission item),
which once replaced the bus's `seq` and made subscribers drop the events as already seen. The vehicle here
is a stand-in robot whose trip reports the driver's own `MissionItemReached` events: what is under test is
the stream, not a vehicle protocol.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from controller.api.server import ApiThread
from controller.missions.results import DeliveryResult
from controller.service.carriers import Assignment, EventSink, VehicleSnapshot
from tests.api.helpers import ROLE_TOKEN, STATION, package, station_config
from vehicles.mavlink import MissionItemReached
from vehicles.spec import VehicleKind

ITEMS = 5


class ReportingRobot:
    """A robot whose trip reports five mission items reached, all in one pass of the loop, then delivers."""

    kind = VehicleKind.ROBOT

    def __init__(self, vehicle_id: str) -> None:
        self.vehicle_id = vehicle_id

    def snapshot(self) -> VehicleSnapshot:
        lat, lon = STATION
        return VehicleSnapshot(self.vehicle_id, self.kind, online=True, charge=1.0, lat=lat, lon=lon)

    async def deliver(self, job: Assignment, on_event: EventSink) -> DeliveryResult:
        on_event({"event": "phase", "phase": "flying", "t": time.monotonic()})
        await asyncio.sleep(0.05)
        for item in range(1, ITEMS + 1):
            on_event(MissionItemReached(seq=item).as_dict())  # {"event": ..., "seq": item, "t": ...}
        await asyncio.sleep(0.05)
        return DeliveryResult(job.package_id, self.vehicle_id, delivered=True, returned=True)

    resume = deliver

    async def abort(self) -> None:
        return None


def _add_robot(api: ApiThread) -> None:
    async def add() -> None:
        api.service.carriers["r1"] = ReportingRobot("r1")

    api.call(add)


def _ws(api: ApiThread, since: int) -> ClientConnection:
    url = f"{api.url.replace('http', 'ws')}/v1/events?since={since}&token={ROLE_TOKEN['operator']}"
    return connect(url, open_timeout=10)


def _until(ws: ClientConnection, done: Callable[[dict[str, Any]], bool], timeout: float = 20) -> list[dict]:
    """Every event up to and including the first for which `done` holds."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        seen.append(json.loads(ws.recv(timeout=left)))
        if done(seen[-1]):
            return seen
    raise AssertionError(f"not seen in time; got {[(e['type'], e.get('state')) for e in seen]}")


def _op(api: ApiThread) -> httpx.Client:
    return httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {ROLE_TOKEN['operator']}"})


def _increasing(seqs: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(seqs))


def test_vehicle_events_with_their_own_seq_all_reach_a_subscriber_in_order(
    make_api: Callable[..., ApiThread],
) -> None:
    api = make_api()
    _add_robot(api)
    with _op(api) as op:
        since = op.get("/healthz").json()["last_event"]
        with _ws(api, since) as ws:
            assert op.post("/v1/packages", json=package("items")).status_code == 201
            events = _until(ws, lambda e: e["type"] == "mission" and e["state"] == "completed")
        recent = op.get("/v1/events/recent", params={"since": since}).json()
    reached = [e for e in events if e.get("event") == "MissionItemReached"]
    assert [e["item"] for e in reached] == list(range(1, ITEMS + 1))  # every one, with its mission item
    assert all(e["type"] == "vehicle" and e["vehicle_id"] == "r1" for e in reached)
    seqs = [e["seq"] for e in events]
    assert seqs[0] > since and _increasing(seqs)  # the bus's own numbers, none replaced by a vehicle's
    polled = [e["seq"] for e in recent["events"]]
    assert _increasing(polled) and set(seqs) <= set(polled)  # the history agrees, no number twice
    assert recent["last_seq"] == polled[-1]
    package_states = [e["state"] for e in events if e["type"] == "package"]
    assert package_states[-1] == "delivered"


def test_since_after_a_restart_gives_the_new_events_once(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'restart.sqlite3'}"
    with ApiThread(station_config(), store) as api, _op(api) as op:
        for i in range(6):  # more events before the restart than after it (a count from 1 would skip them)
            op.post("/v1/packages", json=package(f"before-{i}", weight=30))
        before = op.get("/v1/events/recent", params={"since": 0}).json()
        last = before["events"][-1]["seq"]
        assert before["last_seq"] == last
    with ApiThread(station_config(), store) as api, _op(api) as op:
        with _ws(api, last) as ws:  # a console that reconnects with the last seq it saw
            assert op.post("/v1/packages", json=package("after", weight=30)).status_code == 201
            streamed = _until(ws, lambda e: e["type"] == "package" and e["state"] == "van")
        page = op.get("/v1/events/recent", params={"since": last}).json()
        again = op.get("/v1/events/recent", params={"since": page["last_seq"]}).json()
    seqs = [e["seq"] for e in page["events"]]
    assert seqs and seqs[0] > last and _increasing(seqs)  # the new run's events, every one after `last`
    assert [e["state"] for e in page["events"] if e["type"] == "service"] == ["started"]
    keys = [(e.get("key"), e.get("state")) for e in page["events"] if e["type"] == "package"]
    assert keys == [("after", "received"), ("after", "van")]
    assert [e["seq"] for e in streamed] == seqs[: len(streamed)]  # the socket: the same events, once each
    assert again["events"] == []  # polled on from the newest: nothing repeats
