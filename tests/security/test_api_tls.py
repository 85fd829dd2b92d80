"""The API over HTTPS from the station file (`[api] tls_cert`, `tls_key`), with certificates the test makes.

What is proved, over real sockets: clients that trust the station's CA are served (HTTP and WebSocket);
plaintext HTTP to the HTTPS port and clients that trust another CA get nothing; slow clients are closed
within the station's limits over TLS too, including one that never starts its handshake (asyncio's own
limit would be 60 s), while a normal POST answers in well under 100 ms; serving a non-loopback address
without TLS logs a warning; unusable certificate settings are refused at load, naming the field.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
import ssl
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from controller.api.server import ApiThread, is_loopback, serve
from controller.errors import InputError
from controller.service import StationService
from controller.station import load_station
from controller.store import Store
from sitl.tls import Pki, make_pki
from tests.api.helpers import ROLE_TOKEN, package, station_config

HEADER_S, BODY_S = 1.0, 1.5
OP = {"Authorization": f"Bearer {ROLE_TOKEN['operator']}"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), hosts=["127.0.0.1"])


@pytest.fixture
def https(pki: Pki, tmp_path: Path) -> Iterator[ApiThread]:
    config = station_config(
        tls_cert=pki.server.cert, tls_key=pki.server.key, header_timeout_s=HEADER_S, body_timeout_s=BODY_S
    )
    with ApiThread(config, f"sqlite:///{tmp_path / 's.sqlite3'}") as api:
        yield api


def trusting(pki: Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca_file))


def port_of(api: ApiThread) -> int:
    return int(api.url.rsplit(":", 1)[1])


def test_clients_that_trust_the_station_are_served_over_https(https: ApiThread, pki: Pki) -> None:
    assert https.url.startswith("https://")
    with httpx.Client(base_url=https.url, verify=trusting(pki), headers=OP, timeout=10) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        posted = client.post("/v1/packages", json=package("tls-1"))
        assert posted.status_code == 201, posted.text
        package_id = posted.json()["id"]
        assert client.get(f"/v1/packages/{package_id}").json()["key"] == "tls-1"
    wss = https.url.replace("https://", "wss://") + f"/v1/events?since=0&token={ROLE_TOKEN['operator']}"
    with connect(wss, ssl=trusting(pki), open_timeout=5) as ws:
        assert ws.recv(timeout=5)  # the event stream works over TLS too


def test_plaintext_and_untrusted_clients_get_nothing(https: ApiThread, tmp_path: Path) -> None:
    plain = https.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(plain + "/healthz", timeout=3)
    stranger = make_pki(tmp_path / "other", hosts=["127.0.0.1"])
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(https.url + "/healthz", verify=trusting(stranger), timeout=3)


def test_slow_clients_are_closed_over_tls_while_a_normal_post_is_fast(https: ApiThread, pki: Pki) -> None:
    port = port_of(https)
    context = trusting(pki)
    token = ROLE_TOKEN["dispatcher"]
    head = (
        f"POST /v1/packages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
    ).encode()
    # kind -> (bytes sent at once after the handshake, bytes trickled one per 100 ms, deadline)
    kinds: dict[str, tuple[bytes | None, bytes, float]] = {
        "no handshake": (None, b"", HEADER_S),  # TCP only: never says hello
        "slow headers": (b"GET /healthz HTTP/1.1\r\n", b"X-Slow: " + b"a" * 1000, HEADER_S),
        "slow body": (head, b" " * 1000, BODY_S),
    }
    clients: list[dict[str, Any]] = []
    start = time.monotonic()
    for kind, (first, _, deadline) in kinds.items():
        for _ in range(10):
            raw = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock: socket.socket = raw
            if first is not None:
                sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
                sock.sendall(first)
            sock.setblocking(False)
            clients.append(
                {"kind": kind, "sock": sock, "deadline": deadline, "sent": 0, "got": b"", "closed": None}
            )

    served: list[float] = []
    last_trickle = 0.0
    with httpx.Client(base_url=https.url, verify=context, timeout=10) as client:
        client.get("/healthz")  # the handshake of this keep-alive connection is not part of the figure
        while any(c["closed"] is None for c in clients) and time.monotonic() - start < 4.5:
            now = time.monotonic()
            if now - last_trickle >= 0.1:
                last_trickle = now
                for c in clients:
                    trickle = kinds[c["kind"]][1]
                    if c["closed"] is None and c["sent"] < len(trickle):
                        with contextlib.suppress(OSError):  # closed by the server: seen below
                            c["sock"].send(trickle[c["sent"] : c["sent"] + 1])
                            c["sent"] += 1
                if len(served) < 10:
                    t0 = time.perf_counter()
                    answer = client.post(
                        "/v1/packages",
                        json=package(f"ok-{len(served)}"),
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    served.append(time.perf_counter() - t0)
                    assert answer.status_code == 201, answer.text
            readable, _, _ = select.select([c["sock"] for c in clients if c["closed"] is None], [], [], 0.02)
            for c in clients:
                if c["sock"] not in readable:
                    continue
                try:
                    data = c["sock"].recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except (ConnectionResetError, ssl.SSLError):
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
        if c["kind"] != "no handshake":
            assert c["got"].startswith(b"HTTP/1.1 408 "), (c["kind"], c["got"][:200])
    assert len(served) == 10
    assert statistics.median(served) < 0.1 and max(served) < 0.5, served


def test_serving_beyond_loopback_without_tls_is_warned_about(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("station.example")

    async def serve_once(host: str, **api: Any) -> None:
        store = Store(f"sqlite:///{tmp_path / f's{len(api)}.sqlite3'}")
        try:
            async with StationService(station_config(**api), store) as service:
                ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
                task = asyncio.create_task(serve(service, host, 0, on_ready=ready.set_result))
                await asyncio.wait_for(ready, 20)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            store.close()

    with caplog.at_level(logging.WARNING, logger="lastmile.api"):
        asyncio.run(serve_once("0.0.0.0"))
    assert any("without TLS" in r.getMessage() and "tls_cert" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lastmile.api"):
        asyncio.run(serve_once("0.0.0.0", tls_cert=pki.server.cert, tls_key=pki.server.key))
        asyncio.run(serve_once("127.0.0.1"))
    assert not [r for r in caplog.records if "without TLS" in r.getMessage()]


def test_tls_settings_are_checked_at_load(tmp_path: Path, pki: Pki) -> None:
    head = 'name = "tls"\nlat = 33.44\nlon = -112.256\n[api]\nhost = "0.0.0.0"\n'
    station = tmp_path / "station.toml"
    (tmp_path / "station.crt").write_bytes(pki.server.cert.read_bytes())
    (tmp_path / "station.key").write_bytes(pki.server.key.read_bytes())
    station.write_text(head + 'tls_cert = "station.crt"\ntls_key = "station.key"\n')
    config = load_station(station)
    assert config.api.tls and config.api.tls_cert == (tmp_path / "station.crt").resolve()
    station.write_text(head + 'tls_cert = "missing.crt"\ntls_key = "station.key"\n')
    with pytest.raises(InputError) as refused:
        load_station(station)
    assert refused.value.field == "api.tls_cert" and "does not exist" in str(refused.value)
    station.write_text(head + 'tls_cert = "station.crt"\n')
    with pytest.raises(InputError, match="tls_key"):
        load_station(station)
