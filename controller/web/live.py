"""The console's live channel: fleet positions at a fixed rate plus the station's events, on one socket.

Vehicle telemetry is not on the event bus (it would drown the state changes that consoles and the van
dispatcher care about), so a `TelemetryFeed` samples `StationService.fleet_status()` at `rate_hz`,
projects the positions into the station's local metric frame once for every console, and remembers the
track each vehicle has flown on its current mission. `GET /v1/console/live?token=&since=` (WebSocket)
sends, in order: a `hello` (role, newest event seq), the events after `since` (as `/v1/events`: `seq` grows
across restarts, so a reconnecting console passes the last one it saw), then events
as they happen interleaved with `telemetry` frames. A console that cannot keep up skips telemetry frames
(only the newest matters) but never events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from controller.api.auth import PERMISSIONS, authorize, bearer
from controller.api.errors import ApiError

if TYPE_CHECKING:
    from controller.service import StationService

log = logging.getLogger("lastmile.web")
router = APIRouter(prefix="/v1/console", tags=["console"])

TRACK_MIN_STEP_M = 3.0  # closer samples add nothing visible at street scale
TRACK_MAX_POINTS = 4000  # ~17 minutes at 4 Hz; older halves are thinned, never the whole track lost


class TelemetryFeed:
    """Samples the fleet at `rate_hz` and fans one encoded frame out to every subscriber."""

    def __init__(self, service: StationService, *, rate_hz: float = 4.0) -> None:
        self.service = service
        self.period_s = 1.0 / rate_hz
        self.tracks: dict[str, list[tuple[float, float]]] = {}  # mission id -> [(x, y)] in metres
        self.latest: dict[str, Any] | None = None
        self._subscribers: set[Callable[[str], None]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling (idempotent); called from the app's lifespan."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="lastmile.web.telemetry")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def subscribe(self, deliver: Callable[[str], None]) -> Callable[[], None]:
        """`deliver(text)` gets every frame from now on; call the returned function to stop."""
        self._subscribers.add(deliver)
        return lambda: self._subscribers.discard(deliver)

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self.sample()
            except Exception:  # a bad sample must not end the feed; the next one tries again
                log.exception("telemetry sample failed")
            await asyncio.sleep(max(0.0, self.period_s - (time.monotonic() - started)))

    def sample(self) -> dict[str, Any]:
        """Take one frame now, record tracks, and hand the frame to every subscriber."""
        frame = self.frame(self.service.fleet_status())
        self.latest = frame
        if self._subscribers:  # encoded once for every console; not at all when none is open
            text = json.dumps(frame, separators=(",", ":"))
            for deliver in list(self._subscribers):
                deliver(text)
        return frame

    def frame(self, vehicles: list[dict[str, Any]]) -> dict[str, Any]:
        """Vehicles in the local frame (x east, y north, metres), short keys: it goes out 4 times a second."""
        lats = np.array([v["lat"] if v.get("lat") is not None else np.nan for v in vehicles], dtype=float)
        lons = np.array([v["lon"] if v.get("lon") is not None else np.nan for v in vehicles], dtype=float)
        xs, ys = self.service.config.frame.to_local(lons, lats) if len(vehicles) else ([], [])
        out = []
        active: set[str] = set()
        for v, x, y in zip(vehicles, np.atleast_1d(xs), np.atleast_1d(ys), strict=True):
            placed = bool(np.isfinite(x) and np.isfinite(y))
            mission = v.get("mission_id")
            if mission:
                active.add(mission)
                if placed:
                    self._record(mission, float(x), float(y))
            out.append({
                "id": v["vehicle_id"], "kind": v["kind"], "online": bool(v.get("online")),
                "x": round(float(x), 1) if placed else None, "y": round(float(y), 1) if placed else None,
                "h": _round(v.get("heading_deg"), 0), "c": _round(v.get("charge"), 3),
                "alt": _round(v.get("alt_m"), 1), "spd": _round(v.get("speed_mps"), 1),
                "mode": v.get("mode"), "age": _round(v.get("link_age_s"), 1), "mission": mission,
                "err": list(v.get("errors") or []),
            })  # fmt: skip
        for gone in set(self.tracks) - active:  # the mission is over: its track is history now
            del self.tracks[gone]
        return {"type": "telemetry", "t": time.time(), "vehicles": out}

    def _record(self, mission: str, x: float, y: float) -> None:
        track = self.tracks.setdefault(mission, [])
        if track and math.hypot(track[-1][0] - x, track[-1][1] - y) < TRACK_MIN_STEP_M:
            return
        track.append((round(x, 1), round(y, 1)))
        if len(track) > TRACK_MAX_POINTS:
            track[: TRACK_MAX_POINTS // 2] = track[: TRACK_MAX_POINTS // 2 : 2]


def _round(value: Any, digits: int) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return round(f, digits) if math.isfinite(f) else None


@router.websocket("/live")
async def live(
    websocket: WebSocket,
    since: Annotated[int | None, Query(ge=0)] = None,
    token: Annotated[str | None, Query()] = None,
) -> None:
    """Events and telemetry for one console; auth as `/v1/events` (close codes 4401 / 4403)."""
    await websocket.accept()
    app = websocket.app
    service = app.state.service
    try:
        role = authorize(token or bearer(websocket.headers.get("authorization")), service.config.api.tokens,
                         "fleet:read")  # fmt: skip
    except ApiError as exc:
        await websocket.close(code=4000 + exc.status, reason=exc.reason[:120])
        return
    feed: TelemetryFeed = app.state.console_feed
    feed.start()  # an app served without its lifespan still gets positions
    outbox: asyncio.Queue[str] = asyncio.Queue()
    pending_frame: list[str] = []  # at most the newest telemetry frame not yet sent
    wake = asyncio.Event()

    def on_frame(text: str) -> None:
        pending_frame[:] = [text]
        wake.set()

    hello = {
        "type": "hello", "role": role, "permissions": sorted(PERMISSIONS[role]),
        "last_seq": service.bus.last_seq, "station": service.config.name,
    }  # fmt: skip
    await websocket.send_text(json.dumps(hello))
    unsubscribe = feed.subscribe(on_frame)

    async def pump_events() -> None:
        stream = service.bus.subscribe(since)
        try:
            async for event in stream:
                outbox.put_nowait(json.dumps(event, default=str))
                wake.set()
        finally:
            await stream.aclose()

    async def send() -> None:
        if feed.latest is not None:
            on_frame(json.dumps(feed.latest, separators=(",", ":")))
        while True:
            await wake.wait()
            wake.clear()
            while not outbox.empty():
                await websocket.send_text(outbox.get_nowait())
            if pending_frame:
                await websocket.send_text(pending_frame.pop())

    async def until_closed() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()

    tasks = [asyncio.create_task(c) for c in (pump_events(), send(), until_closed())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        unsubscribe()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
