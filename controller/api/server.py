"""Serving the API: the station service and uvicorn on one event loop.

- `serve(service, host, port)`: run the app until cancelled (what `lastmile serve` builds on).
- `ApiThread(config)`: a whole station (store, service, API) on a background thread with its own loop;
  the tests and the benchmark talk to it over real HTTP, like any client.
- `python -m controller.api.server --station STATION.toml --store URL --port N`: a standalone server,
  used by `bench/api.py` to keep the load generator out of the server's process.

Slow clients cannot hold the server (`GuardedHttp`): a request's line and headers must arrive within
`[api] header_timeout_s` of its first byte (and a new connection must start one within that time), its body
within `[api] body_timeout_s` of its headers; idle keep-alive connections close after `KEEP_ALIVE_S`, and
past `MAX_CONNECTIONS` open connections new requests are answered 503 until some close.

HTTPS (`[api] tls_cert`, `tls_key`): the TLS handshake has `header_timeout_s` too (`tls_protocol`; asyncio's
own default is 60 s, which a client that connects and says nothing would enjoy). Serving any address but
loopback without TLS logs a warning: tokens would cross the network in clear (docs/security.md).
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.sslproto
import contextlib
import gc
import ipaddress
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from controller import eventloop
from controller.api.app import create_app
from controller.api.errors import error_body, problem
from controller.api.fastpath import SubmitFastPath
from controller.api.hardening import SECURITY_HEADERS
from controller.api.standby import Role, StandbyGuard
from controller.errors import InputError
from controller.service import StationService
from controller.station import ApiConfig, StationConfig, load_station
from controller.store import Store
from controller.tokens import hash_tokens

__all__ = [
    "GC_THRESHOLDS",
    "KEEP_ALIVE_S",
    "MAX_CONNECTIONS",
    "ApiThread",
    "GuardedHttp",
    "is_loopback",
    "serve",
    "server_tls_context",
    "tls_protocol",
]

log = logging.getLogger("lastmile.api")

# The collector's thresholds while serving: 100,000 new objects before a young pass, 50 young passes per
# middle one, 1,000 middle passes per full one (see `serve`).
GC_THRESHOLDS = (100_000, 50, 1000)
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this many seconds
# Past this many open connections (slow, idle or busy), new requests get 503 until some close: a bound on
# what a crowd of clients can make the station hold, well under the process's file limit.
MAX_CONNECTIONS = 1000


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools) with deadlines for the request head and body.

    uvicorn itself bounds only the idle time between requests (`timeout_keep_alive`): a client that sends
    its headers or body a byte at a time, or opens a connection and says nothing, holds the connection for
    as long as it likes. Here each request gets `header_timeout_s` from its first byte (or from the
    connection's opening, for the first) to the end of its headers and then `body_timeout_s` to the end of
    its body. A request over its deadline is answered 408 if no answer has started, and the connection is
    closed; the app sees a disconnect. Requests that upgrade to a WebSocket leave the deadlines at the
    upgrade (the WebSocket has its own pings). `serve` makes a subclass with the station's values.
    """

    header_timeout_s: float = 5.0
    body_timeout_s: float = 10.0

    # The parser's callbacks only note the phase and when it began; the timer is set (or moved) once per
    # chunk of data, after parsing it. A request that arrives whole in one chunk, as nearly all do, never
    # sets a timer at all.
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = (
            "new"  # new (connection open, no request yet), head, body, idle (between requests), done
        )
        self._phase_no = 0  # which phase the timer is for: a new phase, even of the same name, moves it
        self._since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_for = -1

    def _enter(self, phase: str) -> None:
        self._phase = phase
        self._phase_no += 1
        self._since = self.loop.time()

    def _settle(self) -> None:
        """Set, move or drop the timer for the phase the connection is in now."""
        if self._timer_for == self._phase_no:
            return
        self._cancel()
        limit = {"new": self.header_timeout_s, "head": self.header_timeout_s, "body": self.body_timeout_s}
        seconds = limit.get(self._phase)
        if seconds is not None:
            self._timer = self.loop.call_at(self._since + seconds, self._expired)
            self._timer_for = self._phase_no

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_for = -1

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._enter("new")
        self._settle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._enter("done")
        self._cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._phase != "done":
            self._settle()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._enter("head")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        upgrade = self.parser.should_upgrade() and self._should_upgrade()
        self._enter("done" if upgrade else "body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._enter("idle")  # uvicorn's keep-alive timeout takes over once the answer is sent

    def handle_websocket_upgrade(self) -> None:
        self._enter("done")  # the WebSocket protocol takes the connection, with its own pings
        self._cancel()
        super().handle_websocket_upgrade()

    def _expired(self) -> None:
        self._timer = None
        self._timer_for = -1
        if self.transport.is_closing():
            return
        cycle = self.cycle if self._phase == "body" else None
        # A connection that never began a request is just closed, as an idle keep-alive one is.
        if self._phase != "new" and (cycle is None or not cycle.response_started):
            part, limit = (
                ("headers", self.header_timeout_s) if self._phase == "head" else ("body", self.body_timeout_s)
            )
            self.transport.write(_timeout_answer(f"the request's {part} did not arrive within {limit:g} s"))
        if cycle is not None:
            # What `connection_lost` would do: the app waiting for the body gets a disconnect, and whatever
            # it answers is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        self._enter("done")
        self.transport.close()


def _timeout_answer(reason: str) -> bytes:
    body = orjson.dumps(error_body([problem(reason, field="(request)", code="timeout")]))
    head = [
        b"HTTP/1.1 408 Request Timeout",
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
        *(name + b": " + value for name, value in SECURITY_HEADERS),
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def guarded_http(header_timeout_s: float, body_timeout_s: float) -> type[GuardedHttp]:
    """`GuardedHttp` with these deadlines (uvicorn makes one protocol object per connection from a class)."""
    limits = {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s}
    return type("GuardedHttp", (GuardedHttp,), limits)


def server_tls_context(api: ApiConfig) -> ssl.SSLContext | None:
    """The API's TLS context from `[api] tls_cert`/`tls_key` (None without); `InputError` names the field."""
    if api.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(api.tls_cert), str(api.tls_key) if api.tls_key else None)
    except (OSError, ssl.SSLError) as exc:
        raise InputError(
            f"cannot serve HTTPS with {api.tls_cert} and {api.tls_key}: {exc}", field="api.tls_cert"
        ) from None
    return context


def tls_protocol(
    http: type[GuardedHttp], context: ssl.SSLContext, handshake_timeout_s: float
) -> Callable[..., asyncio.BaseProtocol]:
    """uvicorn's protocol factory for HTTPS: `http` behind asyncio's TLS layer, with a handshake deadline.

    uvicorn hands its TLS context to `loop.create_server`, which gives every handshake 60 s: a client that
    opens a connection and never says hello holds it that long. Building the TLS layer here, per connection,
    sets the deadline to `handshake_timeout_s`; the request's own deadlines (`GuardedHttp`) start once the
    handshake is done. The protocol sees the TLS transport, so requests carry `scheme = "https"`.
    """

    def factory(**kwargs: Any) -> asyncio.BaseProtocol:
        loop = kwargs.get("_loop") or asyncio.get_running_loop()
        inner = http(**kwargs)
        # The closing TLS exchange gets as long as the handshake (asyncio's default, 30 s, kept a connection
        # whose client vanished without a close_notify in the server's books that long).
        return asyncio.sslproto.SSLProtocol(
            loop, inner, context, None, server_side=True,
            ssl_handshake_timeout=handshake_timeout_s, ssl_shutdown_timeout=handshake_timeout_s,
        )  # fmt: skip

    return factory


def _websocket_protocol() -> type[asyncio.Protocol] | None:
    """uvicorn's WebSocket protocol, with a shutdown that tolerates a connection already closing.

    uvicorn 0.55's sans-I/O protocol answers a server shutdown by sending a close frame, which the websockets
    library refuses (`InvalidState`) when the client's own close is under way; over TLS, where closing takes
    a round trip more, the refusal came up as an error at nearly every shutdown after a console left. Such a
    connection only needs its transport closed. None: uvicorn's default (another implementation).
    """
    try:
        from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
        from websockets.exceptions import InvalidState
    except ImportError:
        return None
    if AutoWebSocketsProtocol is not WebSocketsSansIOProtocol:
        return None

    class ClosingWebSockets(WebSocketsSansIOProtocol):
        def shutdown(self) -> None:
            try:
                super().shutdown()
            except InvalidState:
                self.transport.close()

    return ClosingWebSockets


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


async def serve(
    service: StationService,
    host: str = "127.0.0.1",
    port: int = 8750,
    *,
    on_ready: Callable[[int], None] | None = None,
    log_level: str = "warning",
    fast_path: bool = True,
    role: Role | None = None,
    **uvicorn_options: Any,
) -> None:
    """Serve the API over an already started service until cancelled; `on_ready(port)` once listening.

    `fast_path=False` leaves package intake to the FastAPI route (the tests compare the two). `role` (a
    `Leadership`): while it does not lead, the service need not be started, reads are served and writes
    refused (`StandbyGuard`, in front of everything), and `/healthz` says the role.
    """
    # Open WebSockets (consoles following events) must not hold a shutdown up forever.
    uvicorn_options.setdefault("timeout_graceful_shutdown", 5)
    limits = service.config.api
    http = guarded_http(limits.header_timeout_s, limits.body_timeout_s)
    tls = server_tls_context(limits)
    if tls is not None:
        uvicorn_options.setdefault("http", tls_protocol(http, tls, limits.header_timeout_s))
    else:
        uvicorn_options.setdefault("http", http)
        if not is_loopback(host):
            log.warning(
                "serving the API on %s without TLS: tokens and data cross the network in clear; set [api] "
                "tls_cert and tls_key, or bind 127.0.0.1 behind a TLS proxy (docs/security.md)",
                host,
            )
    uvicorn_options.setdefault("timeout_keep_alive", KEEP_ALIVE_S)
    websocket = _websocket_protocol()
    if websocket is not None:
        uvicorn_options.setdefault("ws", websocket)
    uvicorn_options.setdefault("limit_concurrency", MAX_CONNECTIONS)
    # The intake fast path sits outside FastAPI's whole middleware stack (see `fastpath`).
    app: Any = create_app(service, role=role)
    if fast_path:
        app = SubmitFastPath(app, service)
    if role is not None:
        app = StandbyGuard(app, role, service.config.name)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on", **uvicorn_options)
    server = uvicorn.Server(config)
    listener = _listen(host, port, config.backlog)
    task = asyncio.create_task(server.serve(sockets=[listener]), name="lastmile.api.uvicorn")
    try:
        while not server.started:
            if task.done():
                await task  # raises what stopped it (e.g. the port is taken)
                raise RuntimeError(f"the API server on {host}:{port} stopped before it started")
            await asyncio.sleep(0.01)
        # What exists now (modules, schemas, zone indexes, the app) lives as long as the process: frozen,
        # the garbage collector's full passes stop walking it. Measured under API load, full passes took
        # up to 200 ms each without this, which was most of the p99.
        gc.collect()
        gc.freeze()
        # A batch of packages allocates a few hundred thousand short-lived objects; with the default
        # thresholds (700, 10, 10) the collector ran every few packages and promoted a cycle's live objects
        # into full passes. Measured in-process with 4 batches of 500 in flight: about 7,700 packages/s with
        # the defaults, 8,600 with these, 9,200 with no collector at all (medians of three, noisy VM).
        gc.set_threshold(*GC_THRESHOLDS)
        if on_ready is not None:
            on_ready(server.servers[0].sockets[0].getsockname()[1])
        await asyncio.shield(task)
    finally:
        # A graceful stop (open connections closed, lifespan shutdown run) rather than a cancelled server.
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        listener.close()


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    """The listening socket, bound here rather than by uvicorn.

    uvicorn answers a port that is taken with `sys.exit(1)`, and a SystemExit inside a task stops the whole
    event loop: the demo could not fall back to another port, and `lastmile serve` died without saying
    which port. An `OSError` naming the address is something a caller can handle.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise OSError(exc.errno, f"cannot serve the API on {host}:{port}: {reason}") from exc


class ApiThread:
    """A station served on 127.0.0.1 (a free port) from a background thread: `with ApiThread(cfg) as api:`.

    `api.url` is the base URL; `api.service` and `api.store` are the real objects (call the service only
    through `api.call(coro_fn)`, which runs on the server's loop).
    """

    def __init__(
        self,
        config: StationConfig,
        store_url: str | None = None,
        *,
        start_timeout_s: float = 20,
        fast_path: bool = True,
    ):
        self.config = config
        self.store = Store(store_url or config.store_url)
        self.service = StationService(config, self.store)
        self.url = ""
        self.scheme = "https" if config.api.tls else "http"
        self._timeout = start_timeout_s
        self._fast_path = fast_path
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lastmile-api", daemon=True)

    def __enter__(self) -> ApiThread:
        self._thread.start()
        if not self._ready.wait(self._timeout):
            raise TimeoutError(f"the API did not start within {self._timeout} s")
        if self._error is not None:
            raise RuntimeError("the API failed to start") from self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._main is not None:
            self._loop.call_soon_threadsafe(self._main.cancel)
        self._thread.join(self._timeout)
        self.store.close()

    def call(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run `fn()` (a coroutine function) on the server's loop and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._amain())
        except BaseException as exc:  # reported to the thread that waits in __enter__
            self._error = exc
            self._ready.set()

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()

        def ready(port: int) -> None:
            self.url = f"{self.scheme}://127.0.0.1:{port}"
            self._ready.set()

        async with self.service:
            with contextlib.suppress(asyncio.CancelledError):
                await serve(self.service, "127.0.0.1", 0, on_ready=ready, fast_path=self._fast_path)


def main(argv: list[str] | None = None) -> None:
    """Standalone server: `python -m controller.api.server --station STATION.toml [--port N]`."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--station", required=True)
    parser.add_argument("--store", default=None, help="store URL (default: the station file's store_url)")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--token", action="append", default=[], help="TOKEN=ROLE, added to the file's tokens")
    parser.add_argument(
        "--write-rate-per-s",
        type=float,
        default=None,
        help="writes per token per second (default: the station file's; 0: no limit, for load benchmarks)",
    )
    args = parser.parse_args(argv)
    config = load_station(args.station)
    plain = {}
    for item in args.token:
        token, _, role = item.partition("=")
        if role not in ("dispatcher", "operator", "viewer"):
            parser.error(f"--token {token[:4]}…={role}: the role must be dispatcher, operator or viewer")
        plain[token] = role
    # Held in memory for this process only, hashed like the file's (the file's own tokens are kept).
    tokens = {**config.api.tokens, **{f"cli-{k}": v for k, v in hash_tokens(plain).items()}}  # type: ignore[arg-type]
    api_update: dict[str, Any] = {"tokens": tokens}
    if args.write_rate_per_s is not None:
        api_update["write_rate_per_s"] = args.write_rate_per_s
    config = config.model_copy(update={"api": config.api.model_copy(update=api_update)})

    async def run() -> None:
        store = Store(args.store or config.store_url)
        try:
            async with StationService(config, store) as service:
                await serve(
                    service,
                    args.host or config.api.host,
                    config.api.port if args.port is None else args.port,
                    on_ready=lambda port: print(f"listening on {port}", flush=True),
                )
        finally:
            store.close()

    with contextlib.suppress(KeyboardInterrupt):
        eventloop.run(run())


if __name__ == "__main__":
    main()
