"""The station's live event stream: every state change, fanned out to consoles and the web page.

Each subscriber gets its own bounded queue; a subscriber too slow to keep up loses its oldest events (and
is told how many) rather than slowing the controller down. A short history lets a console that connects
(or reconnects) start from a recent sequence number instead of a blank screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

Event = dict[str, Any]


class EventBus:
    """Publish events to any number of async subscribers."""

    def __init__(self, *, history: int = 500, queue_size: int = 2000) -> None:
        self._seq = 0
        self._history: deque[Event] = deque(maxlen=history)
        self._queues: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest event (0 before any)."""
        return self._seq

    def publish(self, kind: str, /, **data: Any) -> Event:
        """Stamp an event with a sequence number and time, and hand it to every subscriber."""
        self._seq += 1
        event: Event = {"seq": self._seq, "at": datetime.now(UTC).isoformat(), "type": kind, **data}
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
        at = datetime.now(UTC).isoformat()
        skip = 0
        if not self._queues and self._history.maxlen is not None:
            skip = max(0, len(items) - self._history.maxlen)
            self._seq += skip
        for item in itertools.islice(items, skip, None):
            self._seq += 1
            data = item if shape is None else shape(item)
            self._deliver({"seq": self._seq, "at": at, "type": kind, **data})

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
