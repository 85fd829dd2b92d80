"""The live event stream: `GET /v1/events` (WebSocket) and `GET /v1/events/recent` (plain JSON).

Each message is one event of the station's `EventBus` as JSON (`seq`, `at`, `type`, then the event's own
fields, which never replace those three; a vehicle's mission item is `item`). `seq` only grows, also across
restarts (see `controller.service.events`), so `?since=N`, which first replays the events after N still in
the bus's history, lets a console that reconnects with its last `seq` miss nothing recent and see nothing
twice. Browsers cannot set headers on a WebSocket, so the
token may come as `?token=`; a bad token closes the socket with code 4401, a role without the right
with 4403 (after the handshake, so a browser can read the code).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

from controller.api.auth import authorize, bearer, require
from controller.api.deps import service_of
from controller.api.errors import ApiError
from controller.api.schemas import ErrorBody

router = APIRouter(prefix="/v1", tags=["events"])


class RecentEvents(BaseModel):
    """Events after `since` still in the history, and the newest sequence number."""

    events: list[dict[str, Any]]
    last_seq: int


@router.get(
    "/events/recent",
    summary="Recent live events (polling)",
    response_model=RecentEvents,
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    dependencies=[Depends(require("fleet:read"))],
)
async def recent(request: Request, since: Annotated[int, Query(ge=0)] = 0) -> RecentEvents:
    """For clients that poll instead of holding a WebSocket open."""
    bus = service_of(request).bus
    return RecentEvents(events=json.loads(_dumps(bus.recent(since))), last_seq=bus.last_seq)


def _dumps(value: Any) -> str:
    # Vehicle events may carry values JSON has no type for (a datetime, a numpy float); show them as text.
    return json.dumps(value, default=str)


@router.websocket("/events")
async def events(
    websocket: WebSocket,
    since: Annotated[int | None, Query(ge=0)] = None,
    token: Annotated[str | None, Query()] = None,
) -> None:
    """Stream every event as it happens; see the module docstring for auth and replay."""
    await websocket.accept()
    service = websocket.app.state.service
    given = token or bearer(websocket.headers.get("authorization"))
    try:
        authorize(given, service.config.api.tokens, "fleet:read")
    except ApiError as exc:
        await websocket.close(code=4000 + exc.status, reason=exc.reason[:120])
        return
    pump = asyncio.create_task(_pump(websocket, service.bus.subscribe(since)))
    listen = asyncio.create_task(_until_closed(websocket))
    try:
        await asyncio.wait({pump, listen}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, listen):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task


async def _pump(websocket: WebSocket, stream: Any) -> None:
    try:
        async for event in stream:
            await websocket.send_text(_dumps(event))
    finally:
        await stream.aclose()


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a closed socket ends the stream at once."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
