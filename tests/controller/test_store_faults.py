"""Store faults are service faults (issue 17, item 5): a PostgreSQL that goes away, or whose connections
are killed under load, answers 503 with `Retry-After` (never 500), logs once, not a traceback per request,
never stops the controller, and everything answered 201 is stored exactly once.

Real PostgreSQL behind a TCP relay the test cuts and restores (`tests/relays.py`), a real station API
(`ApiThread`, uvicorn) on its own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from controller.api.server import ApiThread
from controller.store.faults import StoreFaults, classify
from tests.api.helpers import ROLE_TOKEN, package, station_config
from tests.relays import TcpRelay

pytestmark = pytest.mark.postgres


@contextlib.asynccontextmanager
async def station_behind_relay(postgres_url: str) -> AsyncIterator[tuple[ApiThread, TcpRelay, str, str]]:
    """A station whose store reaches PostgreSQL through a relay; yields (api, relay, admin url, app name)."""
    base = make_url(postgres_url)
    relay = TcpRelay(base.port or 5432)
    await relay.start()
    name = f"lm_faults_{uuid.uuid4().hex[:8]}"  # to kill this store's connections and nobody else's
    query = {**base.query, "application_name": name}
    url = base.set(host="127.0.0.1", port=relay.port, query=query).render_as_string(hide_password=False)
    # The relay runs on this loop: opening the store (ApiThread()) and starting the server must not block it.
    api = await asyncio.to_thread(ApiThread, station_config(), url)
    await asyncio.to_thread(api.__enter__)
    try:
        yield api, relay, postgres_url, name
    finally:
        await asyncio.to_thread(api.__exit__, None, None, None)
        await relay.aclose()


def client(api: ApiThread) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {ROLE_TOKEN['operator']}"}
    return httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30)


async def test_a_lost_database_answers_503_with_retry_after_and_comes_back(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with station_behind_relay(postgres_url) as (api, relay, _, _), client(api) as http:
        assert (await http.post("/v1/packages", json=package("before"))).status_code == 201
        relay.cut()
        answers = [await http.post("/v1/packages", json=package(f"during-{i}")) for i in range(5)]
        for r in answers:
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "5"
            [problem] = r.json()["errors"]
            assert problem["code"] == "store_unavailable" and "nothing was changed" in problem["reason"]
        listing = await http.get("/v1/packages")
        assert listing.status_code == 503  # reads too: the store's state, not a bug
        assert api.service.store_faults.current() is not None  # what /healthz reports
        faults = [r for r in caplog.records if "store fault" in r.getMessage()]
        assert len(faults) <= 2, [r.getMessage() for r in faults]  # once a minute per kind, not per request
        assert not [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]  # no tracebacks
        relay.restore()
        again = await http.post("/v1/packages", json=package("after"))
        assert again.status_code == 201, again.text  # the pool reconnects: nothing to restart
        assert api.service.store_faults.current() is None
        keys = {p["key"] for p in (await http.get("/v1/packages", params={"limit": 100})).json()["items"]}
        assert {"before", "after"} <= keys and not any(k.startswith("during") for k in keys)


async def test_connections_killed_under_intake_load_lose_nothing_and_never_500(postgres_url: str) -> None:
    async with station_behind_relay(postgres_url) as (api, _, admin_url, name), client(api) as http:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        killed = 0

        async def kill_connections() -> None:
            nonlocal killed
            for _ in range(5):
                await asyncio.sleep(0.05)  # the intake runs meanwhile: kill it mid-stream, several times
                with admin.connect() as conn:
                    killed += len(conn.execute(text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"
                    ), {"n": name}).all())  # fmt: skip

        async def intake() -> list[httpx.Response]:
            return [await http.post("/v1/packages", json=package(f"load-{i}")) for i in range(60)]

        answers, _ = await asyncio.gather(intake(), kill_connections())
        admin.dispose()
        assert killed >= 1
        codes = [r.status_code for r in answers]
        assert set(codes) <= {201, 503}, codes
        assert codes.count(201) >= 50, codes  # a killed connection is replaced, the call retried once
        listing = (await http.get("/v1/packages", params={"limit": 200})).json()
        stored = {p["key"] for p in listing["items"]}
        accepted = {r.json()["key"] for r in answers if r.status_code == 201}
        assert accepted <= stored  # a 201 means durable


def test_faults_are_told_apart_from_bugs_and_logged_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    full = OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))
    readonly = OperationalError(
        "INSERT", {}, sqlite3.OperationalError("attempt to write a readonly database")
    )
    assert classify(full) == "the store's disk is full"
    assert classify(readonly) == "the store's database is read-only"
    assert classify(ValueError("a bug")) is None
    assert classify(OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x"))) is None
    faults = StoreFaults(log_every_s=60.0)
    caplog.set_level(logging.ERROR)
    for _ in range(100):
        faults.record("the store's disk is full", "submit")
    assert len([r for r in caplog.records if "disk is full" in r.getMessage()]) == 1
    assert faults.count == 100 and faults.current() == "the store's disk is full"
    faults.ok()
    assert faults.current() is None
