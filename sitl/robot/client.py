"""Simulated robots on MQTT: one aiomqtt client per robot (own credentials, own last will), one motion ticker.

Per VDA 5050: the robot subscribes to its own `order` and `instantActions`; publishes `connection` ONLINE
(QoS 1, retained) on connect with a retained QoS 1 last will saying CONNECTIONBROKEN / CONNECTION_BROKEN;
publishes `state` on every event and at least every `state_interval_s` (the standard asks for at least
every 30 s); `factsheet` on connect and on factsheetRequest; `connection` OFFLINE when shut down in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self

import aiomqtt

from sitl.robot.inbox import Refusal, read_message
from sitl.robot.sim import SimRobot
from sitl.robot.wire import dumps

__all__ = ["RobotClient", "RobotFleet"]

log = logging.getLogger("lastmile.sitl.robot")


class RobotClient:
    """The MQTT side of one SimRobot, reconnecting with backoff when the broker goes away."""

    def __init__(
        self,
        sim: SimRobot,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 5,
        state_interval_s: float = 1.0,
        reconnect_max_s: float = 2.0,
        on_publish: Callable[[str, int, float], None] | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.sim = sim
        self.tls_context = tls_context  # mqtts://: verifies the broker's certificate and host name
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.keepalive = keepalive
        self.state_interval_s = state_interval_s
        self.reconnect_max_s = reconnect_max_s
        self.on_publish = on_publish  # (topic, headerId, wall time) hook for benchmarks
        self.connected = asyncio.Event()
        self.connects = 0
        self.last_error: str | None = None
        self._client: aiomqtt.Client | None = None
        self._dirty = asyncio.Event()
        self._closing = False
        self._topic = lambda sub: sim.wire.topic(sim.manufacturer, sim.serial, sub)

    def notify(self) -> None:
        """Something happened: publish a state now."""
        self._dirty.set()

    async def run(self) -> None:
        """Connect, serve, reconnect; until cancelled or `stop()`."""
        attempt = 0
        while not self._closing:
            will = aiomqtt.Will(
                self._topic("connection"), dumps(self.sim.connection_message("broken")), 1, True
            )
            client = aiomqtt.Client(
                self.host,
                self.port,
                username=self.username,
                password=self.password,
                identifier=f"{self.sim.manufacturer}-{self.sim.serial}",
                keepalive=self.keepalive,
                will=will,
                clean_session=True,
                tls_context=self.tls_context,
            )
            try:
                async with client:
                    attempt = 0
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc)
                log.info("robot %s: broker connection lost: %s", self.sim.serial, exc)
            finally:
                self._client = None
                self.connected.clear()
            if self._closing:
                break
            attempt += 1
            await asyncio.sleep(random.uniform(0, min(self.reconnect_max_s, 0.05 * 1.5 ** min(20, attempt))))

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.subscribe([(self._topic("order"), 0), (self._topic("instantActions"), 0)])
        self._client = client
        await self._publish("connection", self.sim.connection_message("ONLINE"), qos=1, retain=True)
        if self.sim.factsheet_on_connect:
            await self._publish("factsheet", self.sim.factsheet_message())
        await self._publish("state", self.sim.state_message())
        self.connects += 1
        self.connected.set()
        states = asyncio.create_task(self._state_loop(), name=f"robot[{self.sim.serial}].state")
        try:
            async for message in client.messages:
                self._on_message(message)
        finally:
            await _cancel(states)

    async def _state_loop(self) -> None:
        # a random phase, so a fleet that connected together does not publish in lock-step bursts
        wait = random.uniform(0, self.state_interval_s)
        while True:
            # asyncio.wait, not asyncio.timeout: on Python 3.11 a timeout expiring together with a
            # cancel turns the cancel into a TimeoutError, and suppressing that hung fleet shutdowns
            waiter = asyncio.ensure_future(self._dirty.wait())
            try:
                await asyncio.wait({waiter}, timeout=wait)
            finally:
                waiter.cancel()
            self._dirty.clear()
            wait = self.state_interval_s
            if self.sim.wants_factsheet:
                self.sim.wants_factsheet = False
                await self._publish("factsheet", self.sim.factsheet_message())
            await self._publish("state", self.sim.state_message())

    def _on_message(self, message: aiomqtt.Message) -> None:
        subtopic = "order" if message.topic.value.endswith("/order") else "instantActions"
        payload = message.payload if isinstance(message.payload, bytes | bytearray | str) else b""
        try:
            body = read_message(self.sim.wire, self.sim.serial, subtopic, payload)
        except Refusal as exc:
            log.warning("robot %s: refused message on %s: %s", self.sim.serial, message.topic, exc)
            self.sim.report_refusal(exc.error)
            self.notify()
            return
        if subtopic == "order":
            self.sim.handle_order(body)
        else:
            self.sim.handle_instant_actions(body)
        self.notify()

    async def _publish(
        self, sub: str, message: dict[str, Any], *, qos: int = 0, retain: bool = False
    ) -> None:
        client = self._client
        if client is None:
            return  # offline: the next state after reconnecting carries the news
        payload = dumps(message)
        if self.on_publish is not None:  # noted before the send: aiomqtt may return only after the PUBACK
            self.on_publish(sub, message["headerId"], _wall())
        try:
            await client.publish(self._topic(sub), payload, qos=qos, retain=retain)
        except aiomqtt.MqttError as exc:  # the connection just died; the reconnect loop takes over
            log.debug("robot %s: %s not published: %s", self.sim.serial, sub, exc)

    async def stop(self) -> None:
        """Orderly shutdown: publish OFFLINE (retained), then disconnect; the will is not sent."""
        self._closing = True
        with contextlib.suppress(aiomqtt.MqttError):
            await self._publish("connection", self.sim.connection_message("OFFLINE"), qos=1, retain=True)


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait for it to end, cancelling again if a cancel gets swallowed.

    Python 3.11's `asyncio.wait_for` (used inside aiomqtt's publish) can lose a cancel that arrives as
    its future completes; a single `cancel()` then leaves the task running forever.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)


def _wall() -> float:
    import time

    return time.time()


class RobotFleet:
    """Many simulated robots in one process, stepped by one ticker at `speedup` x real time."""

    def __init__(
        self,
        sims: Iterable[SimRobot],
        host: str,
        port: int,
        *,
        credentials: dict[str, tuple[str, str]] | None = None,
        speedup: float = 1.0,
        tick_s: float = 0.05,
        state_interval_s: float = 1.0,
        keepalive: int = 5,
        on_publish: Callable[[str, str, int, float], None] | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if speedup <= 0:
            raise ValueError(f"speedup={speedup!r}: must be > 0")
        self.speedup = speedup
        self.tick_s = tick_s
        self.clients: dict[str, RobotClient] = {}
        for sim in sims:
            user, password = (credentials or {}).get(sim.serial, (None, None))
            hook = None
            if on_publish is not None:
                hook = (lambda serial: lambda sub, hid, t: on_publish(serial, sub, hid, t))(sim.serial)
            self.clients[sim.serial] = RobotClient(
                sim,
                host,
                port,
                username=user,
                password=password,
                keepalive=keepalive,
                state_interval_s=state_interval_s,
                on_publish=hook,
                tls_context=tls_context,
            )
        self._tasks: list[asyncio.Task[None]] = []

    def sim(self, serial: str) -> SimRobot:
        return self.clients[serial].sim

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self, timeout_s: float = 30.0) -> None:
        """Connect every robot; returns when all are online (TimeoutError after `timeout_s`)."""
        loop = asyncio.get_running_loop()
        for serial, client in self.clients.items():
            self._tasks.append(loop.create_task(client.run(), name=f"robot[{serial}]"))
        self._tasks.append(loop.create_task(self._ticker(), name="robot-fleet.ticker"))
        async with asyncio.timeout(timeout_s):
            for client in self.clients.values():
                await client.connected.wait()

    async def stop(self) -> None:
        """Say OFFLINE for every robot, then stop."""
        with contextlib.suppress(TimeoutError):  # a broker that is gone must not hold us up
            async with asyncio.timeout(10):
                await asyncio.gather(*(c.stop() for c in self.clients.values()), return_exceptions=True)
        await asyncio.gather(*(_cancel(t) for t in self._tasks))
        self._tasks.clear()

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.tick_s)
            now = loop.time()
            dt = (now - last) * self.speedup
            last = now
            for client in self.clients.values():
                sim = client.sim
                if (sim.order_active() or sim.driving) and sim.step(dt):
                    client.notify()

    def poke(self, serial: str) -> None:
        """Publish a state for `serial` now (after a test hook changed the robot)."""
        self.clients[serial].notify()
