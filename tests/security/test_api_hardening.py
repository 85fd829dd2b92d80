"""Hostile clients against a real station over real HTTP and sockets (issue 18, the API's part).

- the OpenAPI document needs a token; the /docs page holds no data and loads nothing from elsewhere;
- every answer (console, API, intake fast path, errors) carries the security headers;
- pathological JSON (too deep, beyond the parser's own limit, numbers it cannot hold) is a 422 naming the
  field, never a 500, through the fast path and through FastAPI alike, and stores nothing;
- slow clients (silent connections, headers or bodies a byte at a time) are closed within the station's
  limits while a normal request is still answered at once.
"""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import connect

from controller.api.hardening import CONTENT_SECURITY_POLICY, MAX_JSON_DEPTH
from controller.api.server import ApiThread
from tests.api.helpers import ROLE_TOKEN, package, station_config

OP = {"Authorization": f"Bearer {ROLE_TOKEN['operator']}"}
SECURITY = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@pytest.fixture(params=["fast path", "FastAPI route"])
def intake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiThread]:
    """A station whose `POST /v1/packages` goes through the fast path, or through FastAPI only."""
    fast = request.param == "fast path"
    with ApiThread(station_config(), f"sqlite:///{tmp_path / 's.sqlite3'}", fast_path=fast) as api:
        yield api


# --- OpenAPI and /docs ----------------------------------------------------------------------------------


def test_openapi_needs_a_token_of_any_role(api: ApiThread) -> None:
    anonymous = httpx.get(api.url + "/openapi.json")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert "test station" not in anonymous.text
    assert httpx.get(api.url + "/openapi.json", headers={"Authorization": "Bearer nope"}).status_code == 401
    for role, token in ROLE_TOKEN.items():
        answer = httpx.get(api.url + "/openapi.json", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, role
        doc = answer.json()
        assert "test station" in doc["info"]["title"]
        assert "/v1/packages" in doc["paths"]
        assert "/openapi.json" not in doc["paths"] and "/docs" not in doc["paths"]


def test_docs_page_holds_no_data_and_loads_nothing_from_elsewhere(api: ApiThread) -> None:
    page = httpx.get(api.url + "/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "test station" not in page.text
    assert "<script>" not in page.text and "style=" not in page.text  # nothing inline: the CSP forbids it
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") or s.startswith("data:") for s in sources), sources
    script = httpx.get(api.url + "/console/docs.js")
    assert script.status_code == 200
    assert not re.search(r"https?://", script.text), "the docs page must not load anything from elsewhere"
    assert "/openapi.json" in script.text and "Authorization" in script.text
    # FastAPI's own pages (Swagger UI and ReDoc from a CDN) are off.
    assert httpx.get(api.url + "/redoc").status_code == 404
    assert httpx.get(api.url + "/docs/oauth2-redirect").status_code == 404
    assert httpx.get(api.url + "/healthz").status_code == 200  # still open


# --- security headers -----------------------------------------------------------------------------------


def test_every_answer_carries_the_security_headers(api: ApiThread) -> None:
    with httpx.Client(base_url=api.url) as client:
        answers = {
            "console": client.get("/"),
            "docs": client.get("/docs"),
            "static": client.get("/console/console.js"),
            "health": client.get("/healthz"),
            "read": client.get("/v1/fleet", headers=OP),
            "401": client.get("/v1/fleet"),
            "404": client.get("/v1/nothing-here", headers=OP),
            "intake": client.post("/v1/packages", json=package("h1"), headers=OP),
            "intake 401": client.post("/v1/packages", json=package("h2")),
            "intake 422": client.post("/v1/packages", json={"key": "h3"}, headers=OP),
        }
    for name, answer in answers.items():
        for header, value in SECURITY.items():
            assert answer.headers.get(header) == value, (name, header, answer.headers)
    csp = CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


# --- pathological JSON ----------------------------------------------------------------------------------


def _nested(depth: int, leaf: str = '"x"') -> str:
    return "[" * depth + leaf + "]" * depth


def _stored(api: ApiThread) -> int:
    page = httpx.get(api.url + "/v1/packages", params={"limit": 1000}, headers=OP).json()
    return len(page["items"])


def test_deep_json_in_a_package_is_a_422_naming_the_field(intake: ApiThread) -> None:
    single = '{"key": "deep-1", "weight": 1, "dest_lat": 33.45, "dest_lon": -112.25, "note": %s}'
    items = [orjson.dumps(package(f"b{i}")).decode() for i in range(3)]
    items[2] = items[2][:-1] + f', "note": {_nested(50)}}}'
    with httpx.Client(base_url=intake.url, headers={**OP, "content-type": "application/json"}) as client:
        answer = client.post("/v1/packages", content=single % _nested(1000))  # a 500 before
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["field"] == "note" and error["code"] == "invalid"
        assert f"more than {MAX_JSON_DEPTH} levels" in error["reason"]

        answer = client.post("/v1/packages", content=f'{{"packages": [{", ".join(items)}]}}')
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"] == "packages.2.note"
        assert answer.json()["error"]["row"] == 2

        # Deeper than the JSON parser's own limit; nested objects rather than arrays; a deep batch wrapper.
        for body in (
            single % _nested(100_000),
            single % ('{"a": ' * 40 + "1" + "}" * 40),
            _nested(40, "{}"),
        ):
            answer = client.post("/v1/packages", content=body)
            assert answer.status_code == 422, answer.text
            assert "levels deep" in answer.json()["error"]["reason"]

        # Numbers and strings no parser should accept, and a note nested just within the limit.
        for body in (
            single % ("1" + "0" * 5000),
            single % "1e999",
            single % '"\\ud800"',
            single % _nested(MAX_JSON_DEPTH - 1),
        ):
            answer = client.post("/v1/packages", content=body)
            assert answer.status_code == 422, (body[:120], answer.text)
    assert _stored(intake) == 0


def test_a_huge_bad_value_is_named_not_echoed_whole(intake: ApiThread) -> None:
    """A 200 kB string where a number belongs: the error names the field and shows the start of the value,
    not the whole of it (the answer would be as big as the attack, and logs would hold customers' data)."""
    huge = "9" * 100_000 + "x" * 100_000
    with httpx.Client(base_url=intake.url, headers=OP) as client:
        answer = client.post("/v1/packages", json={**package("huge-1"), "weight": huge})
        assert answer.status_code == 422, answer.text[:300]
        error = answer.json()["error"]
        assert error["field"] == "weight" and "200,002 characters" in error["reason"]
        assert len(answer.content) < 2_000
        listing = client.get("/v1/packages", params={"state": "nope" * 10_000})
        assert listing.status_code == 422 and len(listing.content) < 2_000
    assert _stored(intake) == 0


def test_deep_json_to_other_routes_is_a_422_too(api: ApiThread) -> None:
    with httpx.Client(base_url=api.url, headers=OP) as client:
        for body in (
            f'{{"reason": {_nested(900)}}}',
            f'{{"reason": {_nested(5000)}}}',
            f'{{"reason": 1{"0" * 5000}}}',
        ):
            answer = client.post(
                "/v1/fleet/ground", content=body, headers={"content-type": "application/json"}
            )
            assert answer.status_code == 422, answer.text
        assert client.get("/v1/fleet").json()["grounded"] is False
        # Small routes take small bodies: 413 before anything is parsed.
        big = b'{"reason": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        answer = client.post("/v1/fleet/ground", content=big, headers={"content-type": "application/json"})
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "too_large"


# --- slow clients ---------------------------------------------------------------------------------------

HEADER_S, BODY_S = 1.0, 1.5


@pytest.fixture
def guarded(make_api: Callable[..., ApiThread]) -> ApiThread:
    return make_api(station_config(header_timeout_s=HEADER_S, body_timeout_s=BODY_S))


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.setblocking(False)
    return sock


def test_slow_clients_are_closed_within_the_limits_while_others_are_served(guarded: ApiThread) -> None:
    token = ROLE_TOKEN["dispatcher"]
    body_head = (
        f"POST /v1/packages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
    ).encode()
    ground_head = (
        b"POST /v1/fleet/ground HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer op-token\r\n"
        b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"
    )
    # kind -> (first bytes, bytes trickled one at a time every 100 ms, the deadline it must be closed by)
    kinds: dict[str, tuple[bytes, bytes, float]] = {
        "silent": (b"", b"", HEADER_S),
        "slow headers": (b"GET /healthz HTTP/1.1\r\n", b"X-Slow: " + b"a" * 1000, HEADER_S),
        "slow intake body": (body_head, b" " * 1000, BODY_S),
        "slow body elsewhere": (ground_head, b" " * 1000, BODY_S),
    }
    clients: list[dict[str, Any]] = []
    start = time.monotonic()
    for kind, (first, _, deadline) in kinds.items():
        for _ in range(185 if kind == "slow intake body" else 5):  # 200 in all
            sock = _connect(guarded.url)
            if first:
                sock.sendall(first)
            clients.append(
                {"kind": kind, "sock": sock, "deadline": deadline, "sent": 0, "got": b"", "closed": None}
            )

    served: list[float] = []
    last_trickle = 0.0
    while any(c["closed"] is None for c in clients) and time.monotonic() - start < 6:
        now = time.monotonic()
        if now - last_trickle >= 0.1:
            last_trickle = now
            for c in clients:
                trickle = kinds[c["kind"]][1]
                if c["closed"] is None and c["sent"] < len(trickle):
                    try:
                        c["sock"].send(trickle[c["sent"] : c["sent"] + 1])
                        c["sent"] += 1
                    except OSError:
                        pass  # closed by the server: seen by recv below
            if len(served) < 10:  # meanwhile, an ordinary client is answered at once
                t0 = time.perf_counter()
                answer = httpx.post(
                    guarded.url + "/v1/packages",
                    json=package(f"ok-{len(served)}"),
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert answer.status_code == 201, answer.text
                served.append(time.perf_counter() - t0)
        open_ = [c["sock"] for c in clients if c["closed"] is None]
        readable, _, _ = select.select(open_, [], [], 0.02)
        for c in clients:
            if c["sock"] in readable:
                try:
                    data = c["sock"].recv(65536)
                except ConnectionResetError:
                    data = b""
                c["got"] += data
                if not data:
                    c["closed"] = time.monotonic() - start
    for c in clients:
        c["sock"].close()

    late = [
        (c["kind"], c["closed"]) for c in clients if c["closed"] is None or c["closed"] > c["deadline"] + 1.0
    ]
    assert not late, f"slow clients not closed within their limit (+1 s): {late}"
    for c in clients:
        if c["kind"] == "silent":
            assert c["got"] == b""  # never began a request: closed without a word, like an idle keep-alive
        else:
            assert c["got"].startswith(b"HTTP/1.1 408 "), (c["kind"], c["got"][:200])
            assert b'"code":"timeout"' in c["got"]
    assert len(served) == 10
    assert max(served) < 1.0, served  # ordinary requests were not held up by the slow ones
    assert httpx.get(guarded.url + "/v1/fleet", headers=OP).json()["grounded"] is False


def test_timeouts_are_part_of_the_station_file() -> None:
    config = station_config(header_timeout_s=2, body_timeout_s=30)
    assert (config.api.header_timeout_s, config.api.body_timeout_s) == (2, 30)
    default = station_config().api
    assert default.header_timeout_s + default.body_timeout_s <= 15
    with pytest.raises(ValueError, match="header_timeout_s"):
        station_config(header_timeout_s=0)


def test_the_deadlines_leave_websockets_and_keep_alive_connections_alone(guarded: ApiThread) -> None:
    ws_url = guarded.url.replace("http://", "ws://") + f"/v1/events?token={ROLE_TOKEN['operator']}"
    with connect(ws_url) as ws, httpx.Client(base_url=guarded.url, headers=OP) as client:
        assert client.get("/healthz").status_code == 200
        time.sleep(HEADER_S + BODY_S + 0.3)  # past both deadlines, under the 5 s keep-alive
        answer = client.post("/v1/packages", json=package("ws-1"))  # same connection, reused
        assert answer.status_code == 201
        event = orjson.loads(ws.recv(timeout=5))
        while event.get("key") != "ws-1":
            event = orjson.loads(ws.recv(timeout=5))
        assert event["type"] == "package"
