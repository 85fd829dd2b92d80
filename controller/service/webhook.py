"""Push every package handed to the vans to the dispatcher's webhook, so it need not poll the feed.

One task follows the store's event log (`Store.events_since(cursor, to_state=VAN)`), the same source as
`GET /v1/van-fallback`, and POSTs each hand-over as JSON to `[api] webhook_url`. A POST that fails (no
answer, or not 2xx) is retried with jittered exponential backoff until it succeeds; only then does the
cursor move on, so each hand-over is delivered exactly once per success and in order. The cursor lives in
memory: after a restart the webhook starts from the log's end (what was handed over while the controller
was down is in the pull feed), and every POST carries `X-Lastmile-Event: <event id>` so a receiver that
wants to can drop duplicates across restarts.

It wakes on the event bus (a package reaching `van`) and also polls every `poll_s`, so a missed wake-up
only delays a delivery, never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

import httpx

from controller.packages import Package, PackageEvent, PackageState
from controller.service.events import EventBus
from controller.store import Store

log = logging.getLogger("lastmile.service.webhook")

__all__ = ["Render", "VanWebhook", "feed_end"]

Render = Callable[[PackageEvent, Package], dict[str, Any]]
_PAGE = 10_000


def feed_end(store: Store) -> int:
    """The van feed's cursor at its current end (what a fresh follower starts from)."""
    cursor = 0
    while True:
        events, cursor = store.events_since(cursor, to_state=PackageState.VAN, limit=_PAGE)
        if len(events) < _PAGE:
            return cursor


class VanWebhook:
    """Deliver van hand-overs to `url`; `await run()` until cancelled."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        url: str,
        *,
        render: Render,
        cursor: int = 0,
        timeout_s: float = 10.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 60.0,
        poll_s: float = 5.0,
    ) -> None:
        self.store = store
        self.bus = bus
        self.url = url
        self.render = render
        self.cursor = cursor
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.poll_s = poll_s
        self.delivered = 0  # hand-overs acknowledged by the receiver
        self.attempts = 0  # POSTs tried, successful or not
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Follow the feed forever; cancel the task to stop (an unfinished POST is retried next start)."""
        watcher = asyncio.create_task(self._watch(), name="lastmile.webhook.watch")
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                while True:
                    events, cursor = await asyncio.to_thread(
                        self.store.events_since, self.cursor, to_state=PackageState.VAN, limit=100
                    )
                    for event in events:
                        await self._deliver(client, event)
                        self.cursor = event.id
                    self.cursor = max(self.cursor, cursor)
                    if len(events) == 100:
                        continue
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_s):
                            await self._wake.wait()
                    self._wake.clear()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self) -> None:
        async for event in self.bus.subscribe():
            if event.get("type") == "package" and event.get("state") == PackageState.VAN.value:
                self._wake.set()

    async def _deliver(self, client: httpx.AsyncClient, event: PackageEvent) -> None:
        package = await asyncio.to_thread(self.store.get, event.package_id)
        body = self.render(event, package)
        headers = {"X-Lastmile-Event": str(event.id), "Content-Type": "application/json"}
        attempt = 0
        while True:
            self.attempts += 1
            try:
                response = await client.post(self.url, json=body, headers=headers)
                if response.is_success:
                    self.delivered += 1
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)
            log.warning(
                "van webhook: package %s not delivered (%s); retrying in %.1f s",
                event.package_id,
                problem,
                delay,
                extra={"package": event.package_id},
            )
            attempt += 1
            await asyncio.sleep(delay)
