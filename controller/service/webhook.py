"""Push the store's package events to a webhook: the dispatcher's (van hand-overs, optionally every state
change) and the station's notifications (`controller.service.notify`). One class, `EventWebhook`, for both.

One task follows the store's event log (`Store.events_since(cursor)`, filtered by `to_state` when given: the
same source as `GET /v1/van-fallback`), asks `render` for each event's body (None: not for this receiver),
and POSTs it as JSON. A POST that fails (no answer, or not 2xx) is retried with jittered exponential backoff
until it succeeds; only then does the cursor move on, so each event is delivered exactly once per success
and in order.

The cursor is kept in the store (`webhook_cursors`, per station, webhook name and URL), written after each
acknowledged POST by the leader only (a fenced write: a controller that lost its lease gets `LeaseLost` and
stops pushing). A restarted controller, or a standby that took over, resumes from it, so what was handed
over while no controller ran is pushed after the restart. That is at-least-once across a controller change
(the POST in flight when the old leader stopped may come again): every POST carries
`X-Lastmile-Event: <event id>`, the same id each time, so a receiver drops duplicates. A webhook with no
stored cursor (first start, or a new URL) starts from the log's end.

With a key, the body is signed: `X-Lastmile-Signature: sha256=<hex HMAC-SHA256 of the body's bytes>`.

It wakes on the event bus (a package event) and also polls every `poll_s`, so a missed wake-up only delays
a delivery, never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from controller.packages import Package, PackageEvent, PackageState
from controller.service.events import EventBus
from controller.store import Store
from controller.store.lease import LeaseLost, NotLeader

log = logging.getLogger("lastmile.service.webhook")

__all__ = ["EventWebhook", "Render", "VanWebhook", "feed_end", "sign"]

Render = Callable[[PackageEvent, Package], dict[str, Any] | None]
_PAGE = 100
SIGNATURE_HEADER = "X-Lastmile-Signature"


def feed_end(store: Store) -> int:
    """The event log's cursor at its current end (what a webhook with nothing stored starts from)."""
    return store.last_event_id()


def sign(key: bytes, body: bytes) -> str:
    """The signature header's value for `body`: what a receiver computes with the same key and compares."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class EventWebhook:
    """Deliver the events `render` makes a body for to `url`; `await start()`, then `await run()`.

    `station` and `name` key the stored cursor; without a `station` the cursor lives in memory only (a
    webhook for a test or a tool). `epoch` tells which lease epoch the cursor is written under (recorded).
    """

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        url: str,
        *,
        render: Render,
        name: str = "dispatcher",
        station: str | None = None,
        to_state: PackageState | None = None,
        key: bytes | None = None,
        kind: Callable[[PackageEvent], str] | None = None,
        cursor: int | None = None,
        epoch: Callable[[], int | None] | None = None,
        timeout_s: float = 10.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 60.0,
        poll_s: float = 5.0,
    ) -> None:
        self.store = store
        self.bus = bus
        self.url = url
        self.render = render
        self.name = name
        self.station = station
        self.to_state = to_state
        self.key = key
        self.kind = kind
        self.cursor = cursor
        self.epoch = epoch
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.poll_s = poll_s
        self.delivered = 0  # events acknowledged by the receiver
        self.attempts = 0  # POSTs tried, successful or not
        self.stopped: BaseException | None = None  # why run() gave up (a lost lease), if it did
        self._saved: int | None = None
        self._wake = asyncio.Event()

    # --- the cursor ----------------------------------------------------------------------------------------

    async def start(self) -> int:
        """Find the cursor: the one given, the stored one, or the log's end (stored then). Returns it.

        Called before the server takes requests, so nothing handed over from then on is missed.
        """
        if self.cursor is None and self.station is not None:
            self.cursor = await asyncio.to_thread(
                self.store.webhook_cursor, self.station, self.name, self.url
            )
            self._saved = self.cursor
        if self.cursor is None:
            self.cursor = await asyncio.to_thread(feed_end, self.store)
        await self._save()
        return self.cursor

    async def _save(self) -> None:
        """Store the cursor if it moved (fenced: `LeaseLost`/`NotLeader` go to the caller)."""
        if self.station is None or self.cursor is None or self.cursor == self._saved:
            return
        cursor = self.cursor
        epoch = self.epoch() if self.epoch is not None else None
        await asyncio.to_thread(
            self.store.save_webhook_cursor, self.station, self.name, self.url, cursor, epoch=epoch
        )
        self._saved = cursor

    # --- the loop ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the log until cancelled, or until the lease is lost (then `stopped` says so)."""
        if self.cursor is None or (self.station is not None and self._saved != self.cursor):
            await self.start()
        watcher = asyncio.create_task(self._watch(), name=f"lastmile.webhook.{self.name}.watch")
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                while True:
                    try:
                        full = await self._page(client)
                    except (LeaseLost, NotLeader) as exc:
                        self.stopped = exc
                        log.error("%s webhook stopped: %s", self.name, exc)
                        return
                    except Exception as exc:  # the store is away: the next poll tries again
                        log.warning("%s webhook: cannot read or save its place (%s)", self.name, exc)
                        full = False
                    if full:
                        continue
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_s):
                            await self._wake.wait()
                    self._wake.clear()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _page(self, client: httpx.AsyncClient) -> bool:
        """Deliver one page of events; True when another page is ready now."""
        assert self.cursor is not None
        events, cursor = await asyncio.to_thread(
            self.store.events_since, self.cursor, to_state=self.to_state, limit=_PAGE
        )
        for event in events:
            body = await asyncio.to_thread(self._body, event)
            if body is not None:
                await self._deliver(client, event, body)
            self.cursor = event.id
            if body is not None:
                await self._save()  # acknowledged: a new leader does not send it again
        self.cursor = max(self.cursor, cursor)
        await self._save()
        return len(events) == _PAGE

    def _body(self, event: PackageEvent) -> dict[str, Any] | None:
        """The event's body, or None; off the event loop (reads the package, and `render` may read more)."""
        return self.render(event, self.store.get(event.package_id))

    async def _watch(self) -> None:
        async for event in self.bus.subscribe():
            if event.get("type") == "package" and (
                self.to_state is None or event.get("state") == self.to_state.value
            ):
                self._wake.set()

    async def _deliver(self, client: httpx.AsyncClient, event: PackageEvent, body: dict[str, Any]) -> None:
        content = orjson.dumps(body, option=orjson.OPT_UTC_Z)
        headers = {"X-Lastmile-Event": str(event.id), "Content-Type": "application/json"}
        if self.kind is not None:
            headers["X-Lastmile-Kind"] = self.kind(event)
        if self.key is not None:
            headers[SIGNATURE_HEADER] = sign(self.key, content)
        attempt = 0
        while True:
            self.attempts += 1
            try:
                response = await client.post(self.url, content=content, headers=headers)
                if response.is_success:
                    self.delivered += 1
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)
            log.warning(
                "%s webhook: event %d of package %s not delivered (%s); retrying in %.1f s",
                self.name,
                event.id,
                event.package_id,
                problem,
                delay,
                extra={"package": event.package_id},
            )
            attempt += 1
            await asyncio.sleep(delay)


class VanWebhook(EventWebhook):
    """The dispatcher's webhook with van hand-overs only (the default of `[api] webhook_events`)."""

    def __init__(self, store: Store, bus: EventBus, url: str, *, render: Render, **kwargs: Any) -> None:
        kwargs.setdefault("to_state", PackageState.VAN)
        super().__init__(store, bus, url, render=render, **kwargs)
