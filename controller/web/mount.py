"""Wiring the console into an API app: routes, static files, and the telemetry feed's life.

The feed must run while the app serves (it records the tracks flown, whether or not a page is open), so it
is tied to the app's lifespan: `mount_console` wraps the app's own lifespan rather than asking
`create_app` to know about the console.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from controller.api.hardening import content_security_policy
from controller.web import live, routes
from controller.web.live import TelemetryFeed

if TYPE_CHECKING:
    from controller.service import StationService

STATIC = Path(__file__).parent / "static"


def mount_console(app: FastAPI, service: StationService, *, rate_hz: float = 4.0) -> TelemetryFeed:
    """Serve the console on `app` (built by `create_app(service)`); returns the telemetry feed.

    Mounting twice is harmless (the second call returns the first feed), so callers need not know whether
    `create_app` already did it.
    """
    existing: TelemetryFeed | None = getattr(app.state, "console_feed", None)
    if existing is not None:
        return existing
    feed = TelemetryFeed(service, rate_hz=rate_hz)
    app.state.console_feed = feed
    app.include_router(routes.router)
    app.include_router(live.router)
    app.mount("/console", StaticFiles(directory=STATIC), name="console")

    headers = {"Cache-Control": "no-cache"}
    origin = service.config.console.basemap_origin
    if origin is not None:  # the basemap's tiles are images from that host; nothing else from anywhere
        headers["Content-Security-Policy"] = content_security_policy((origin,))

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        # The page itself holds no data: it asks for a token and then reads the API like any client.
        return FileResponse(STATIC / "index.html", headers=headers)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        # The API reference: like the console page, no data of its own; it reads /openapi.json with a token.
        return FileResponse(STATIC / "docs.html", headers={"Cache-Control": "no-cache"})

    @app.get("/console", include_in_schema=False)
    async def console() -> RedirectResponse:
        return RedirectResponse("/")

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            feed.start()
            try:
                yield state
            finally:
                await feed.stop()

    app.router.lifespan_context = lifespan
    return feed
