"""The fleet's one MQTT connection: subscribe with wildcards, dispatch by topic to each robot's handle.

One aiomqtt client serves the whole fleet (1,000 robots would otherwise mean 1,000 TCP connections and
keepalives). Reconnects follow aiomqtt's documented pattern: leave the `async with`, back off with jitter,
enter again and re-subscribe. A fresh `aiomqtt.Client` is built per attempt because a client that lost its
connection keeps a completed "connected" future, which would make the next `async with` return before the
broker's CONNACK.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import ssl
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiomqtt

from vehicles.errors import LinkError
from vehicles.vda5050.codec import ROBOT_TOPICS, decode, encode, parse_topic
from vehicles.vda5050.errors import BrokerUnavailable, MalformedMessage
from vehicles.vda5050.events import EventHub, EventStream, RobotEvent
from vehicles.vda5050.robot import RobotHandle
from vehicles.vda5050.versions import SUPPORTED_VERSIONS, version_info

__all__ = ["FleetLink", "LinkStats", "describe_tls_error", "tls_context"]

log = logging.getLogger("lastmile.vehicles.vda5050")
BROKER_REMINDER_S = 60.0  # while the broker stays away, its warning is repeated this often
_ids = itertools.count(1)


def tls_context(
    ca_file: str | Path | None = None,
    client_cert: str | Path | None = None,
    client_key: str | Path | None = None,
) -> ssl.SSLContext:
    """The controller's TLS context for an `mqtts://` broker.

    The broker's certificate must chain to `ca_file` (the system's CAs when None, for a broker with a public
    certificate) and name the host the controller dials (`check_hostname`): encryption without both would let
    anyone on the path pose as the broker. `client_cert`/`client_key` are presented to a broker that asks for
    client certificates. A file that cannot be used raises ValueError naming it.
    """
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"ca_file {ca_file}: not a readable PEM CA certificate ({exc})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_cert is not None or client_key is not None:
        if client_cert is None:
            raise ValueError("client_key given without client_cert: both or neither")
        try:
            context.load_cert_chain(str(client_cert), str(client_key) if client_key else None)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"client_cert {client_cert} / client_key {client_key}: not a usable certificate and key "
                f"({exc})"
            ) from None
    return context


def describe_tls_error(error: str, host: str) -> str:
    """An operator's reading of OpenSSL's words for a failed TLS connection (the original in brackets)."""
    if "CERTIFICATE_VERIFY_FAILED" in error:
        if "mismatch" in error.lower():
            return (
                f"TLS: the broker's certificate is not for '{host}' (the host name in the broker URL must be "
                f"one the certificate names) [{error}]"
            )
        return (
            "TLS: the broker's certificate is not signed by a CA this side trusts (check the CA file, "
            f"[broker] ca_file) [{error}]"
        )
    if "WRONG_VERSION_NUMBER" in error or "record layer failure" in error.lower():
        return f"TLS: the broker does not speak TLS on this port (a plaintext mqtt:// listener?) [{error}]"
    if "CERTIFICATE_REQUIRED" in error or "certificate required" in error.lower():
        return (
            f"TLS: the broker requires a client certificate ([broker] client_cert and client_key) [{error}]"
        )
    return error


@dataclass
class LinkStats:
    """Counters an operator (and the tests) can read."""

    received: int = 0
    applied: int = 0
    sent: int = 0
    connects: int = 0
    header_gaps: int = 0
    orders_resent: int = 0
    malformed: Counter[str] = field(default_factory=Counter)  # by kind


class FleetLink:
    """One MQTT client for all VDA 5050 robots of a station.

    Use as `async with FleetLink(...) as link:`; add robots before or after entering.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        keepalive: int = 10,
        stale_after_s: float = 30.0,
        resend_after_s: float = 2.0,
        max_payload_bytes: int = 256 * 1024,
        reconnect_max_s: float = 5.0,
        validate: bool = True,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if stale_after_s <= 0:
            raise ValueError(f"stale_after_s={stale_after_s!r}: must be > 0 seconds")
        if max_payload_bytes <= 0:
            raise ValueError(f"max_payload_bytes={max_payload_bytes!r}: must be > 0")
        self.host, self.port = host, port
        self._username, self._password = username, password
        self.client_id = client_id or f"lastmile-controller-{next(_ids)}-{random.getrandbits(32):08x}"
        self.keepalive = keepalive
        self.stale_after_s = stale_after_s
        self.resend_after_s = resend_after_s
        self.max_payload_bytes = max_payload_bytes
        self.reconnect_max_s = reconnect_max_s
        self.validate = validate
        self.tls_context = tls_context  # mqtts:// in production; None for the local test broker
        self.stats = LinkStats()
        self.connected = asyncio.Event()
        self.epoch = 0  # increments on every successful connection
        self.last_error: str | None = None
        self._warned_at = 0.0  # when the last broker warning was logged (monotonic)
        self._robots: dict[tuple[str, str, str], RobotHandle] = {}  # (interface, manufacturer, serial)
        self._by_serial: dict[str, RobotHandle] = {}
        self._hub = EventHub()
        self._client: aiomqtt.Client | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[None] | None = None
        self._closing = False

    # ---- robots ------------------------------------------------------------------------------
    def add_robot(
        self,
        serial_number: str,
        *,
        manufacturer: str,
        version: str = "2.1.0",
        map_id: str = "station",
        battery_wh: float = 500.0,
    ) -> RobotHandle:
        """Register a robot (one VDA 5050 version per robot: 2.0.0, 2.1.0 or 3.0.0) and return its handle.

        `map_id` is the `mapId` the robot's own map has for the station's frame (every node carries it).

        `battery_wh` (the pack's capacity; VDA 5050 reports only percent) turns charge used into Wh.
        """
        if not battery_wh > 0:
            raise ValueError(f"battery_wh={battery_wh!r}: must be > 0 Wh")
        info = version_info(version)
        if not isinstance(map_id, str) or not map_id:
            raise ValueError(f"map_id={map_id!r}: must be a non-empty string (the robot's map name)")
        for name, value in (("serial_number", serial_number), ("manufacturer", manufacturer)):
            if not value or any(c in value for c in "/+#"):
                raise ValueError(
                    f"{name}={value!r}: must be non-empty and free of MQTT topic characters / + #"
                )
        if serial_number in self._by_serial:
            raise ValueError(f"serial_number={serial_number!r}: already registered")
        handle = RobotHandle(self, info, manufacturer, serial_number, map_id, battery_wh=battery_wh)
        self._robots[(info.interface, manufacturer, serial_number)] = handle
        self._by_serial[serial_number] = handle
        return handle

    def robot(self, serial_number: str) -> RobotHandle:
        """The handle of a registered robot; KeyError names the serial number."""
        try:
            return self._by_serial[serial_number]
        except KeyError:
            raise KeyError(f"serial_number={serial_number!r}: no such robot registered") from None

    @property
    def robots(self) -> list[RobotHandle]:
        return list(self._by_serial.values())

    def events(self, maxsize: int = 100_000) -> EventStream:
        """A stream of every robot's events plus link-level ones (`malformed`, `broker`)."""
        return self._hub.stream(maxsize)

    # ---- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start connecting (in the background) and the stale-state watchdog."""
        self._closing = False
        self._main = asyncio.create_task(self._run(), name=f"vda5050[{self.client_id}].run")
        self._spawn(self._watchdog(), name=f"vda5050[{self.client_id}].watchdog")

    @property
    def url(self) -> str:
        """The broker as a URL (`mqtts://` over TLS), for messages."""
        return f"{'mqtts' if self.tls_context is not None else 'mqtt'}://{self.host}:{self.port}"

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Wait for the broker; BrokerUnavailable (with the last error) after `timeout_s` seconds."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.connected.wait()
        except TimeoutError:
            raise BrokerUnavailable(
                f"no connection to {self.url} within {timeout_s:g} s: {self.last_error}"
            ) from None

    async def stop(self) -> None:
        """Disconnect and stop every task."""
        self._closing = True
        tasks = [t for t in (self._main, *self._tasks) if t is not None]
        for task in tasks:
            # re-cancel until done: Python 3.11's wait_for (inside aiomqtt) can swallow one cancel
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
        self._main = None
        self.connected.clear()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            client = aiomqtt.Client(
                self.host,
                self.port,
                username=self._username,
                password=self._password,
                identifier=self.client_id,
                keepalive=self.keepalive,
                clean_session=True,
                timeout=10,
                tls_context=self.tls_context,
            )
            try:
                async with client:
                    prefixes = sorted({(v.interface, v.major) for v in SUPPORTED_VERSIONS.values()})
                    await client.subscribe(
                        [
                            (f"{interface}/{major}/+/+/{topic}", 1 if topic == "connection" else 0)
                            for interface, major in prefixes
                            for topic in ROBOT_TOPICS
                        ]
                    )
                    attempt = 0
                    self._client = client
                    self.epoch += 1
                    self.stats.connects += 1
                    self.last_error = None
                    self.connected.set()
                    self._on_link_change(True)
                    async for message in client.messages:
                        self._dispatch(message)
            except aiomqtt.MqttError as exc:
                error = str(exc) or type(exc).__name__
                if self.tls_context is not None:
                    error = describe_tls_error(error, self.host)
                self._note_failure(error, attempt + 1)
            finally:
                self._client = None
                if self.connected.is_set():
                    self.connected.clear()
                    self._on_link_change(False)
            if self._closing:
                break
            attempt += 1
            # jittered exponential backoff, capped so a restarted broker is found again quickly
            await asyncio.sleep(random.uniform(0, min(self.reconnect_max_s, 0.05 * 1.5 ** min(20, attempt))))

    def _note_failure(self, error: str, attempt: int) -> None:
        """Warn when the broker is lost or its error changes, then once a minute while it stays away.

        Reconnects come every few seconds at most: a broker down for an hour wrote a line each time.
        """
        now = time.monotonic()
        if error != self.last_error or now - self._warned_at >= BROKER_REMINDER_S:
            again = f" (still, after {attempt} attempts)" if error == self.last_error else ""
            log.warning("broker %s: %s%s", self.url, error, again)
            self._warned_at = now
        self.last_error = error

    def _on_link_change(self, connected: bool) -> None:
        self._hub.emit(RobotEvent("broker", None, {"connected": connected, "epoch": self.epoch}))
        for robot in self._by_serial.values():
            robot._refresh_availability()
            if connected and robot._pending_unsent():
                self._spawn(robot._publish_order(resend=True))

    async def _watchdog(self) -> None:
        """Mark robots stale when their state stops (VDA 5050: state at least every 30 s)."""
        loop = asyncio.get_running_loop()
        period = min(1.0, self.stale_after_s / 5)
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for robot in self._by_serial.values():
                silent = robot.silent_for()
                if silent is not None and silent > self.stale_after_s and not robot.stale:
                    robot._mark_stale(now)

    # ---- traffic -----------------------------------------------------------------------------
    def _dispatch(self, message: aiomqtt.Message) -> None:
        self.stats.received += 1
        topic = message.topic.value
        try:
            address = parse_topic(topic)
            robot = self._robots.get((address.info.interface, address.manufacturer, address.serial_number))
            if robot is None:
                raise MalformedMessage(
                    "unknown_robot", f"no robot {address.manufacturer}/{address.serial_number}"
                )
            payload = message.payload
            if not isinstance(payload, bytes | bytearray | str):
                raise MalformedMessage("bad_json", f"payload of type {type(payload).__name__}")
            body = decode(
                payload, address, max_bytes=self.max_payload_bytes, validate=self.validate, info=robot.info
            )
        except MalformedMessage as exc:
            self.stats.malformed[exc.kind] += 1
            log.warning("dropped message on %s: %s", topic, exc)
            self._hub.emit(
                RobotEvent("malformed", None, {"kind": exc.kind, "reason": exc.reason, "topic": topic})
            )
            return
        try:
            robot._receive(address.subtopic, body, retained=bool(message.retain))
        except Exception:  # one bad message (or a bug of ours) must not take the fleet's link down
            self.stats.malformed["unusable"] += 1
            log.exception("could not apply message on %s", topic)
            return
        self.stats.applied += 1

    async def publish(self, topic: str, message: dict[str, Any], *, qos: int = 0, wait: float = 5.0) -> None:
        """Publish one message (VDA 5050: order and instantActions go out with QoS 0).

        Waits up to `wait` seconds for the broker when the link is down; LinkError after that.
        """
        try:
            async with asyncio.timeout(wait):
                while True:
                    await self.connected.wait()
                    client = self._client
                    if client is None:
                        await asyncio.sleep(0)  # the run loop is between connections
                        continue
                    try:
                        await client.publish(topic, encode(message), qos=qos)
                    except aiomqtt.MqttError as exc:
                        # the connection died under us; the run loop will clear `connected`
                        self.last_error = str(exc)
                        await asyncio.sleep(0.05)
                        continue
                    self.stats.sent += 1
                    return
        except TimeoutError:
            raise LinkError(f"cannot publish to {topic}: broker unavailable ({self.last_error})") from None
