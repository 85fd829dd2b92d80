"""`POST /v1/packages` answers the same through the intake fast path and through the FastAPI route.

`serve` puts `SubmitFastPath` in front of the app for speed; the route stays for OpenAPI and for apps served
without it. Two stations, one each way, get the same requests, and every answer must match: status, body
(apart from the ids and times each store makes up) and the auth challenge header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.api.fastpath import MAX_BODY_BYTES
from controller.api.server import ApiThread
from tests.api.helpers import ROLE_TOKEN, package, station_config


@pytest.fixture
def both(tmp_path: Path) -> Iterator[tuple[ApiThread, ApiThread]]:
    fast = ApiThread(station_config(), f"sqlite:///{tmp_path / 'fast.sqlite3'}").__enter__()
    route_store = f"sqlite:///{tmp_path / 'route.sqlite3'}"
    route = ApiThread(station_config(), route_store, fast_path=False).__enter__()
    yield fast, route
    for api in (fast, route):
        api.__exit__(None, None, None)


def _comparable(value: Any) -> Any:
    """The answer without what differs between two stores: package ids and times."""
    if isinstance(value, dict):
        return {
            k: ("<varies>" if k in ("id", "eta", "tracking_url") else _comparable(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"\b[0-9a-f]{32}\b", "<id>", value)  # a package id named in a reason
    return value


REQUESTS: list[tuple[str, str | None, bytes]] = [
    ("new package", "dispatcher", json.dumps(package("p1")).encode()),
    ("idempotent repeat", "dispatcher", json.dumps(package("p1")).encode()),
    ("same key, other content", "dispatcher", json.dumps(package("p1", weight=3.0)).encode()),
    ("not JSON", "dispatcher", b"{not json"),
    ("not an object", "dispatcher", b"[1, 2]"),
    ("bad field", "dispatcher", json.dumps(package("p2", weight=-1)).encode()),
    ("unknown field", "dispatcher", json.dumps(package("p2", colour="red")).encode()),
    (
        "batch with one bad item",
        "dispatcher",
        json.dumps({"packages": [package("b1"), package("b2", dest_lat=95.0)]}).encode(),
    ),
    ("batch", "operator", json.dumps({"packages": [package("b1"), package("b2", weight=40)]}).encode()),
    ("empty batch", "dispatcher", b'{"packages": []}'),
    ("no token", None, json.dumps(package("p3")).encode()),
    ("viewer may not submit", "viewer", json.dumps(package("p3")).encode()),
]


def test_fast_path_answers_exactly_as_the_route(both: tuple[ApiThread, ApiThread]) -> None:
    fast, route = both
    for what, role, body in REQUESTS:
        headers = {"Content-Type": "application/json"}
        if role is not None:
            headers["Authorization"] = f"Bearer {ROLE_TOKEN[role]}"
        answers = [httpx.post(f"{api.url}/v1/packages", content=body, headers=headers) for api in both]
        (a, b) = answers
        assert a.status_code == b.status_code, what
        assert _comparable(a.json()) == _comparable(b.json()), what
        assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate"), what
        assert a.headers["content-type"].startswith("application/json"), what
    # And what was stored is the same on both sides.
    viewer = {"Authorization": f"Bearer {ROLE_TOKEN['viewer']}"}
    stored = [httpx.get(f"{api.url}/v1/packages", headers=viewer).json() for api in (fast, route)]
    keys = [sorted((p["key"], p["state"]) for p in page["items"]) for page in stored]
    assert keys[0] == keys[1] == [("b1", "van"), ("b2", "van"), ("p1", "van")]


def test_fast_path_refuses_an_oversized_body_without_storing(both: tuple[ApiThread, ApiThread]) -> None:
    fast, _ = both
    body = b'{"packages": [' + b" " * MAX_BODY_BYTES + b"]}"
    answer = httpx.post(
        f"{fast.url}/v1/packages",
        content=body,
        headers={"Authorization": f"Bearer {ROLE_TOKEN['dispatcher']}"},
        timeout=60,
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["field"] == "(body)" and "MiB" in answer.json()["error"]["reason"]
    assert sum(fast.store.count_by_state().values()) == 0
