"""`/healthz` says the controller's role and links, `lastmile status` says the role, and a standby's API
refuses writes in front of everything (`StandbyGuard`) while reads and `/healthz` go through."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from controller.api.app import create_app
from controller.api.server import ApiThread
from controller.api.standby import StandbyGuard
from tests.api.test_cli_ops import lastmile


def test_healthz_without_a_lease_is_a_leader_with_its_links(api: ApiThread) -> None:
    body = httpx.get(api.url + "/healthz").json()
    assert body["status"] == "ok" and body["store"] == "ok"
    assert (body["role"], body["epoch"]) == ("leader", None)  # no lease: the only controller of its store
    assert body["broker"] == "none" and body["vehicles_linked"] == 0  # no broker configured, nothing linked
    assert {"station", "grounded", "last_event"} <= body.keys()  # what it answered before stays


def test_healthz_is_503_when_the_store_cannot_be_reached(
    api: ApiThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> None:
        raise ConnectionError("connection refused")

    monkeypatch.setattr(api.store, "ping", down)
    r = httpx.get(api.url + "/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable" and r.json()["store"] == "unreachable: connection refused"


def test_status_prints_the_role(api: ApiThread) -> None:
    code, out = lastmile(api, "status")
    assert code == 0 and "role: leader" in out, out


class StubRole:
    """A standby that knows its leader, until `leading` is set."""

    leading = False
    became_leader = asyncio.Event()

    def describe_leader(self) -> str:
        return "the leader is host-a pid 7 (epoch 3)"

    def health(self) -> dict[str, Any]:
        return {"role": "leader" if self.leading else "standby", "epoch": 3, "leader": self.describe_leader()}


async def test_a_standby_answers_reads_and_refuses_writes_naming_the_leader(api: ApiThread) -> None:
    role = StubRole()
    app = StandbyGuard(create_app(api.service, role=role, webhook=False), role, "test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://standby") as client:
        health = (await client.get("/healthz")).json()
        assert (health["role"], health["epoch"], health["leader"]) == ("standby", 3, role.describe_leader())
        refused = await client.post("/v1/packages", json={"key": "k"})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        error = refused.json()["error"]
        assert error["code"] == "standby" and "host-a pid 7 (epoch 3)" in error["reason"], error
        assert refused.headers["x-content-type-options"] == "nosniff"  # the security headers, as everywhere
        assert (await client.get("/v1/fleet")).status_code == 401  # reads go through (to their auth)
        role.leading = True
        assert (await client.post("/v1/packages", json={"key": "k"})).status_code == 401  # now the app's


async def test_the_guard_lets_websockets_and_lifespan_through() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    guard = StandbyGuard(inner, StubRole(), "test")
    for kind in ("websocket", "lifespan"):
        await guard({"type": kind}, None, None)  # type: ignore[arg-type]
    assert seen == ["websocket", "lifespan"]


async def test_a_standbys_van_webhook_starts_when_it_leads(tmp_path: Path) -> None:
    """Only the leader hands packages over to the vans' webhook: a standby's starts once it leads."""
    from controller.service import StationService
    from controller.store import Store
    from tests.api.helpers import station_config

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    role = StubRole()
    role.became_leader = asyncio.Event()
    app = create_app(StationService(station_config(webhook_url="http://127.0.0.1:9/hook"), store), role=role)
    try:
        async with app.router.lifespan_context(app):
            await asyncio.sleep(0.05)
            assert app.state.webhook is None  # a standby hands nothing over
            role.became_leader.set()
            for _ in range(500):
                if app.state.webhook is not None:
                    break
                await asyncio.sleep(0.01)
            assert app.state.webhook is not None
    finally:
        store.close()


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_write_the_lease_refuses_is_503_not_500(tmp_path: Path, fast_path: bool) -> None:
    """The instant a leader is fenced (or a standby's store is asked to write), the store's fence raises; the
    API answers that as the standby guard does, never as a bug."""
    from controller.store.lease import NotLeader
    from tests.api.helpers import ROLE_TOKEN, station_config

    def refuse(conn: object) -> None:
        raise NotLeader("test station", "the leader is host-b pid 9 (epoch 4)")

    with ApiThread(station_config(), f"sqlite:///{tmp_path / 's.sqlite3'}", fast_path=fast_path) as api:
        api.store.fence = refuse
        r = httpx.post(
            api.url + "/v1/packages",
            json={"key": "k", "weight": 1.0, "dest_lat": 33.45, "dest_lon": -112.25},
            headers={"Authorization": f"Bearer {ROLE_TOKEN['dispatcher']}"},
        )
    assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
    assert r.json()["error"]["code"] == "standby" and "host-b pid 9 (epoch 4)" in r.json()["error"]["reason"]
