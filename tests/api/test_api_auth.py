"""Who may do what: every endpoint against no token, a wrong token, and each role's token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from controller.api.server import ApiThread
from tests.api.helpers import ROLE_TOKEN, package

ALL = {"dispatcher", "operator", "viewer"}
# (method, path, json body, roles allowed)
ENDPOINTS: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/v1/packages", package("auth-1"), {"dispatcher", "operator"}),
    ("GET", "/v1/packages", None, ALL),
    ("GET", "/v1/packages/unknown", None, ALL),
    ("POST", "/v1/packages/unknown/van", None, {"operator"}),
    ("GET", "/v1/van-fallback", None, ALL),
    ("GET", "/v1/van-routes", None, ALL),
    ("GET", "/v1/fleet", None, {"operator", "viewer"}),
    ("GET", "/v1/missions", None, {"operator", "viewer"}),
    ("POST", "/v1/missions/unknown/launch", None, {"operator"}),
    ("POST", "/v1/missions/unknown/abort", None, {"operator"}),
    ("POST", "/v1/fleet/ground", {"reason": "auth test"}, {"operator"}),
    ("POST", "/v1/fleet/unground", None, {"operator"}),
    ("GET", "/v1/events/recent", None, {"operator", "viewer"}),
    ("GET", "/v1/report", None, {"operator", "viewer"}),
]


def _call(api: ApiThread, method: str, path: str, body: Any, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, api.url + path, json=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), ENDPOINTS, ids=[f"{m} {p}" for m, p, *_ in ENDPOINTS]
)
def test_auth_matrix(api: ApiThread, method: str, path: str, body: Any, allowed: set[str]) -> None:
    for token in (None, "wrong-token"):
        r = _call(api, method, path, body, token)
        assert r.status_code == 401, (token, r.text)
        assert r.json()["error"]["field"] == "Authorization"
        assert r.headers["WWW-Authenticate"] == "Bearer"
    for role in sorted(ALL):
        r = _call(api, method, path, body, ROLE_TOKEN[role])
        if role in allowed:
            assert r.status_code not in (401, 403), (role, r.text)
        else:
            assert r.status_code == 403, (role, r.text)
            assert role in r.json()["error"]["reason"]


def test_refused_submit_stores_nothing(api: ApiThread) -> None:
    _call(api, "POST", "/v1/packages", package("viewer-try"), ROLE_TOKEN["viewer"])
    _call(api, "POST", "/v1/packages", package("anon-try"), None)
    assert api.store.get_by_key("viewer-try") is None and api.store.get_by_key("anon-try") is None


def test_other_auth_schemes_are_refused(api: ApiThread) -> None:
    r = httpx.get(api.url + "/v1/packages", headers={"Authorization": f"Basic {ROLE_TOKEN['operator']}"})
    assert r.status_code == 401


def test_healthz_needs_no_token(api: ApiThread) -> None:
    r = httpx.get(api.url + "/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


@pytest.mark.parametrize(("token", "code"), [(None, 4401), ("wrong", 4401), ("disp-token", 4403)])
def test_websocket_refuses_bad_tokens_with_a_close_code(api: ApiThread, token: str | None, code: int) -> None:
    query = f"?token={token}" if token else ""
    url = api.url.replace("http", "ws") + "/v1/events" + query
    with connect(url, open_timeout=10) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code
