"""The station's live event stream: every state change, fanned out to consoles and the web page.

Each subscriber gets its own bounded queue; a subscriber too slow to keep up loses its oldest events (and
is told how many) rather than slowing the controller down. A short history lets a console that connects
(or reconnects) start from a recent sequence number instead of a blank screen.

Every event starts with the bus's own fields, `seq`, `at` and `type`, stamped after the event's data so no
data can replace them: a data field of the same name is kept as `<type>_<name>` (`vehicle_type`). The
service renames a vehicle's mission item `seq` to `item` on the way in (see `StationService`).

`seq` is strictly increasing, also across restarts and takeovers, so `?since=` after either never skips or
repeats an event: it is time-stamped, each event taking max(previous + 1, microseconds since the Unix epoch
now). A sequence number therefore never runs ahead of the clock by more than a burst of more than one event
per microsecond (a batch of a thousand packages numbers a millisecond ahead, and the pass that made it
took longer), so a controller that starts after another one stopped numbers above anything the other
issued, as long as their clocks agree to better than the gap between the two (a restart or a takeover takes
seconds; NTP keeps hosts within milliseconds). Nothing has to be stored for it, and nothing is lost if the
store is unreachable. The numbers stay below 2^53, the largest integer JavaScript holds exactly, until the
year 2255 (they are about 1.8e15 in 2026). They are not dense: the gap between two numbers says nothing
about how many events came between.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

Event = dict[str, Any]
_STAMPED = 3  # the bus's own fields in every event: seq, at, type


def _now_us() -> int:
    """Microseconds since the Unix epoch."""
    return time.time_ns() // 1000


class EventBus:
    """Publish events to any number of async subscribers."""

    def __init__(
        self, *, history: int = 500, queue_size: int = 2000, clock_us: Callable[[], int] = _now_us
    ) -> None:
        self._clock_us = clock_us  # the sequence's base (see the module's docstring); tests may fix it
        self._seq = clock_us()  # nothing this bus publishes is at or below it
        self._history: deque[Event] = deque(maxlen=history)
        self._queues: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest event (before any: the time the bus was made, in microseconds)."""
        return self._seq

    def _take(self, count: int) -> int:
        """Reserve `count` sequence numbers; returns the first."""
        first = max(self._seq + 1, self._clock_us())
        self._seq = first + count - 1
        return first

    def publish(self, kind: str, /, **data: Any) -> Event:
        """Stamp an event with a sequence number and time, and hand it to every subscriber."""
        event = _stamp(self._take(1), datetime.now(UTC).isoformat(), kind, data)
        self._deliver(event)
        return event

    def publish_many(
        self, kind: str, items: Sequence[Any], shape: Callable[[Any], dict[str, Any]] | None = None
    ) -> None:
        """`publish` for many events of one kind that happened together (one commit): one timestamp.

        Each item becomes an event's data through `shape` (the item itself without one). With nobody
        subscribed only the items the history keeps are shaped: a batch's thousand events were otherwise
        built to be dropped. Every item still takes a sequence number.
        """
        if not items:
            return
        at = datetime.now(UTC).isoformat()
        first = self._take(len(items))
        skip = 0
        if not self._queues and self._history.maxlen is not None:
            skip = max(0, len(items) - self._history.maxlen)
        for seq, item in enumerate(itertools.islice(items, skip, None), first + skip):
            self._deliver(_stamp(seq, at, kind, item if shape is None else shape(item)))

    def _deliver(self, event: Event) -> None:
        """Keep it in the history and queue it for every subscriber; a full queue drops its oldest."""
        self._history.append(event)
        for queue in self._queues:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    def recent(self, since: int = 0) -> list[Event]:
        """Events after `since` that are still in the history."""
        return [e for e in self._history if e["seq"] > since]

    async def subscribe(self, since: int | None = None) -> AsyncIterator[Event]:
        """Yield events as they happen, first replaying history after `since` when given."""
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._queues.add(queue)
        try:
            last = 0
            if since is not None:
                for event in self.recent(since):
                    last = event["seq"]
                    yield event
            while True:
                event = await queue.get()
                if event["seq"] <= last:
                    continue
                last = event["seq"]
                yield event
        finally:
            self._queues.discard(queue)


def _stamp(seq: int, at: str, kind: str, data: dict[str, Any]) -> Event:
    """The event: the bus's fields first and unchangeable; a data field with one of their names is renamed."""
    event: Event = {"seq": seq, "at": at, "type": kind, **data}
    if len(event) == _STAMPED + len(data):  # no clash (one cheap test: this runs for every event)
        return event
    event = {"seq": seq, "at": at, "type": kind}
    for key, value in data.items():
        event[f"{kind}_{key}" if key in ("seq", "at", "type") else key] = value
    return event
