"""Fixtures shared by the robot tests (driver, simulator, broker, end-to-end). Import them explicitly:

    from tests.robot_fixtures import broker, controller_link, schema_tap  # noqa: F401

Everything runs through a real mosquitto started per test on a free 127.0.0.1 port (`sitl.broker.Broker`),
and `schema_tap` listens to *every* VDA 5050 message on that broker and checks it against the official
schemas read from `<repo>/../shared/vda5050-schemas` and `vda5050-schemas-v2.0.0` (the originals, not the
shipped copies). On `uagv/v2` topics a message saying 2.0.0 is checked against the 2.0.0 schemas (2.0.0 and
2.1.0 share the topics), plus the one 2.0.0 rule its schema file leaves out: instant actions under
`instantActions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from jsonschema import Draft202012Validator

from sitl.broker import Broker
from vehicles.vda5050 import FleetLink

REPO = Path(__file__).resolve().parents[1]
SHARED_SCHEMAS = REPO.parent / "shared" / "vda5050-schemas"
SHARED_SCHEMAS_200 = REPO.parent / "shared" / "vda5050-schemas-v2.0.0"
VERSION_OF_PREFIX = {"uagv/v2": "2.1.0", "vda5050/v3": "3.0.0"}
MINORS_OF_PREFIX = {"uagv/v2": ("2.0.0", "2.1.0"), "vda5050/v3": ("3.0.0",)}
ROBOTS = ("r1", "r2", "r3")
MANUFACTURER = "lastmile"


@cache
def original_validator(version: str, topic: str) -> Draft202012Validator:
    """A validator built from the original schema file `<topic>.schema` in ../shared."""
    folder = SHARED_SCHEMAS_200 if version == "2.0.0" else SHARED_SCHEMAS / f"v{version}"
    path = folder / f"{topic}.schema"
    return Draft202012Validator(json.loads(path.read_text()))


def schema_errors(version: str, topic: str, message: Any) -> list[str]:
    """Every schema violation of `message`, as 'path: reason' strings."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in original_validator(version, topic).iter_errors(message)
    ]


class SchemaTap:
    """A wiretap on the broker: validates every VDA 5050 message that crosses it."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()  # (version, topic) -> count
        self.invalid: list[tuple[str, str]] = []  # (mqtt topic, problem)
        self.ignored_serials: set[str] = set()  # serials a test feeds garbage on purpose
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._arrived = asyncio.Condition()

    def check(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        version = VERSION_OF_PREFIX.get("/".join(parts[:2]))
        if version is None or len(parts) != 5:
            self.invalid.append((topic, "not a VDA 5050 topic"))
            return
        if parts[3] in self.ignored_serials:
            return
        try:
            message = json.loads(payload)
        except ValueError as exc:
            self.invalid.append((topic, f"not JSON: {exc}"))
            return
        said = message.get("version") if isinstance(message, dict) else None
        if said in MINORS_OF_PREFIX["/".join(parts[:2])]:
            version = said
        else:
            self.invalid.append((topic, f"version field {said!r} on a {version} topic"))
        errors = schema_errors(version, parts[4], message)
        if version == "2.0.0" and parts[4] == "instantActions" and "instantActions" not in message:
            errors.append("instantActions: 2.0.0 instant actions travel under `instantActions`")
        if errors:
            self.invalid.append((topic, "; ".join(errors[:3])))
        self.seen[(version, parts[4])] += 1
        self.messages.append((topic, message))

    async def wait_for(self, predicate: Any, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: predicate(self))

    async def notify(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    """A mosquitto with users r1, r2, r3 (manufacturer `lastmile`) and `controller`."""
    async with Broker(robots=ROBOTS, manufacturer=MANUFACTURER, kind="mosquitto") as b:
        yield b


@pytest.fixture
async def schema_tap(broker: Broker) -> AsyncIterator[SchemaTap]:
    """Validates every message on the broker; the test fails at teardown if any was invalid."""
    tap = SchemaTap()
    user, password = broker.controller_credentials()
    ready = asyncio.Event()

    async def listen() -> None:
        while True:  # survive the broker-restart test
            try:
                async with aiomqtt.Client(
                    broker.host, broker.port, username=user, password=password, identifier="schema-tap"
                ) as client:
                    await client.subscribe([("uagv/#", 1), ("vda5050/#", 1)])
                    ready.set()
                    async for message in client.messages:
                        tap.check(message.topic.value, bytes(message.payload))  # type: ignore[arg-type]
                        await tap.notify()
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)

    task = asyncio.create_task(listen(), name="schema-tap")
    async with asyncio.timeout(10):
        await ready.wait()
    yield tap
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert tap.invalid == [], f"schema-invalid VDA 5050 messages on the wire: {tap.invalid[:5]}"


@pytest.fixture
async def controller_link(broker: Broker) -> AsyncIterator[FleetLink]:
    """The controller's FleetLink, connected, with a short stale limit and fast reconnects."""
    user, password = broker.controller_credentials()
    link = FleetLink(
        broker.host, broker.port, username=user, password=password, keepalive=5, reconnect_max_s=0.5
    )
    async with link:
        await link.wait_connected(10)
        yield link


def robot_credentials(broker: Broker, *serials: str) -> dict[str, tuple[str, str]]:
    return {s: broker.credentials(s) for s in serials}
