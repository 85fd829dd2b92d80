"""The van webhook against a real (tiny) HTTP receiver that fails its first two POSTs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from controller.api.server import ApiThread
from tests.api.helpers import ROLE_TOKEN, package, station_config


class Receiver:
    """Answers 500 to the first `fail` POSTs, then 200; keeps what it accepted."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.attempts = 0
        self.accepted: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.changed:
                    receiver.attempts += 1
                    ok = receiver.attempts > receiver.fail
                    if ok:
                        receiver.accepted.append((dict(self.headers), body))
                    receiver.changed.notify_all()
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20) -> None:
        with self.changed:
            assert self.changed.wait_for(predicate, timeout), "the webhook did not deliver in time"

    def keys(self) -> list[str]:
        return [body["package"]["key"] for _, body in self.accepted]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=2)
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_each_handover_arrives_exactly_once_after_retries(
    make_api: Callable[..., ApiThread], receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    api = make_api(station_config(webhook_url=receiver.url))
    # No key in the station file: it works, unsigned, and the operator is told so at start.
    assert any("is not signed" in r.getMessage() for r in caplog.records if r.name == "lastmile.api")
    op = httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {ROLE_TOKEN['operator']}"})
    first = op.post("/v1/packages", json=package("hook-1")).json()
    receiver.wait_for(lambda: len(receiver.accepted) >= 1)
    assert receiver.attempts == 3  # two refused, the third accepted
    second = op.post("/v1/packages", json=package("hook-2")).json()
    receiver.wait_for(lambda: len(receiver.accepted) >= 2)
    assert receiver.keys() == ["hook-1", "hook-2"]  # in order, and hook-1 was not sent again
    assert receiver.attempts == 4
    headers, body = receiver.accepted[0]
    assert body["package"]["id"] == first["id"] and body["reasons"] == ["no_vehicle_available"]
    assert headers["X-Lastmile-Event"] == str(body["event_id"])
    assert "X-Lastmile-Signature" not in headers
    # The webhook's body is the van feed's item for the same hand-over.
    feed = op.get("/v1/van-fallback").json()["items"]
    assert [i["package"]["id"] for i in feed] == [first["id"], second["id"]]
    assert feed[0]["event_id"] == body["event_id"]
    op.close()
