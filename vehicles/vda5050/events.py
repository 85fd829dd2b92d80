"""Robot events and a small fan-out hub, so the controller can *wait* on what robots do instead of polling.

Kinds (`RobotEvent.kind`):
    connection      the connection topic changed (data: state)
    availability    the robot became (un)available for work (data: availability, reason)
    state           a valid state message was applied (data: header_id)
    node_reached    lastNodeId/lastNodeSequenceId moved (data: node_id, sequence_id)
    action          an action changed status (data: action_id, status, result)
    error_raised    a new error appeared (data: error_type, level, description, references)
    error_cleared   an error went away (data: error_type, level, references)
    header_gap      headerIds skipped on a topic (data: topic, expected, got)
    stale           no state for longer than the stale limit (data: silent_s)
    order_sent      an order or order update went out (data: order_id, update_id, resend, full)
    factsheet       a factsheet arrived (read it from `RobotHandle.factsheet`)
    version         the factsheet named another version sharing the topics; the handle speaks it now
                    (data: version, configured)
    malformed       an unusable message arrived (data: kind, reason, topic); fleet-level only
    broker          the controller's own broker connection changed (data: connected)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

__all__ = ["EventHub", "EventStream", "RobotEvent", "wait_quietly"]


async def wait_quietly(future: asyncio.Future[Any], timeout_s: float | None) -> bool:
    """Wait for `future` up to `timeout_s`; True if it finished. Cancels it if *we* are cancelled.

    Why not `asyncio.timeout`: on Python 3.11 a timeout that expires in the same loop iteration as an
    outside cancel reports TimeoutError and the cancel is lost; `asyncio.wait` has no such race.
    """
    try:
        done, _ = await asyncio.wait({future}, timeout=timeout_s)
    except asyncio.CancelledError:
        future.cancel()
        raise
    return bool(done)


@dataclass(frozen=True)
class RobotEvent:
    """Something that happened to one robot (or, with serial_number None, to the whole link)."""

    kind: str
    serial_number: str | None
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)  # wall clock, s since the epoch

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly form for DeliveryResult.events and the API's event stream."""
        return {"kind": self.kind, "vehicle": self.serial_number, "at": self.at, **self.data}


class EventStream:
    """One subscriber's queue; iterate it, and close it (or use `with`) when done."""

    def __init__(self, hub: EventHub, maxsize: int) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[RobotEvent] = asyncio.Queue(maxsize)
        self.dropped = 0  # events lost because this subscriber did not keep up

    def _offer(self, event: RobotEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def get(self, timeout_s: float | None = None) -> RobotEvent:
        """The next event; TimeoutError after `timeout_s` seconds."""
        if timeout_s is None:
            return await self._queue.get()
        getter = asyncio.ensure_future(self._queue.get())
        await wait_quietly(getter, timeout_s)
        if not getter.done():
            getter.cancel()
            raise TimeoutError(f"no event within {timeout_s:g} s")
        return getter.result()

    def get_nowait(self) -> RobotEvent | None:
        """The next queued event, or None."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        """Stop receiving events."""
        self._hub._streams.discard(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[RobotEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[RobotEvent]:
        while True:
            yield await self._queue.get()


class EventHub:
    """Fans events out to every open stream; never blocks the publisher (slow readers lose events)."""

    def __init__(self) -> None:
        self._streams: set[EventStream] = set()

    def stream(self, maxsize: int = 10_000) -> EventStream:
        """A new subscriber."""
        stream = EventStream(self, maxsize)
        self._streams.add(stream)
        return stream

    def emit(self, event: RobotEvent) -> None:
        """Deliver `event` to every subscriber."""
        for stream in tuple(self._streams):
            stream._offer(event)
