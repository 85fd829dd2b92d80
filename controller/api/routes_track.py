"""The customer's tracking page: `GET /track/{token}` (a small page) and `GET /v1/track/{token}` (its data).

No auth: the token in the link is the key, and it opens one package's public view (`controller.service.notify
.public_view`: state in words, ETA with its zone, how it travels, a pin), nothing an operator sees. An unknown
token and a malformed one get the same 404, so the answer says nothing about which tokens exist. Each
client address may ask `[notifications] track_burst` times at once (30), then `track_rate_per_s` a second (2),
429 with Retry-After beyond, so the tokens cannot be walked quickly; with 128 random bits they cannot be
walked at all.

The page is the station's own file (`controller/web/static/track.html`, its script and style beside it),
under the same Content-Security-Policy as the console: no inline code, no CDN, no basemap.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from controller.api.auth import WriteLimiter
from controller.api.deps import blocking, service_of
from controller.api.errors import ApiError
from controller.api.schemas import ErrorBody
from controller.service.notify import public_view

__all__ = ["TRACK_BURST", "TRACK_RATE_PER_S", "TrackView", "router"]

router = APIRouter(tags=["tracking"])

TRACK_RATE_PER_S = 2.0  # the defaults of [notifications] track_rate_per_s/track_burst: a page polls every
TRACK_BURST = 30  # 30 s, and a person reloading stays far below this
_MAX_CLIENTS = 10_000  # addresses remembered before the buckets start afresh (memory stays bounded)
_NO_STORE = {"Cache-Control": "no-store"}


class Point(BaseModel):
    lat: float
    lon: float


class TrackView(BaseModel):
    """What a tracking link shows (`controller.service.notify.public_view`), documented for the schema."""

    state: str = Field(description="received, assigned, en_route, delivered, van, failed or cancelled")
    state_text: str = Field(description="the state in plain words")
    by: str | None = Field(description="drone, robot or van, once known")
    eta: datetime | None = Field(description="expected arrival (UTC), while one is promised")
    eta_local: str | None = Field(description="the ETA in the station's zone, ISO 8601 to the minute")
    time_zone: str = Field(description="the station's IANA zone ([notifications] time_zone)")
    updated_at: datetime = Field(description="the last change of the package")
    destination: Point
    station: Point


_TRACK_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no such tracking page (unknown or malformed token alike)"},
    429: {"model": ErrorBody, "description": "too many tracking requests from this address"},
}


def _limiter(request: Request) -> WriteLimiter:
    limiter: WriteLimiter | None = getattr(request.app.state, "track_limiter", None)
    if limiter is None or len(limiter._buckets) > _MAX_CLIENTS:
        notes = service_of(request).config.notifications
        limiter = WriteLimiter(notes.track_rate_per_s, notes.track_burst)
        request.app.state.track_limiter = limiter
    return limiter


def _admit(request: Request) -> None:
    client = request.client.host if request.client else "?"
    try:
        _limiter(request).take(client)
    except ApiError as exc:
        raise ApiError(
            429,
            f"too many tracking requests from this address; retry in {exc.headers['Retry-After']} s"
            if exc.headers
            else "too many tracking requests from this address",
            code="rate_limited",
            headers=exc.headers,
        ) from None


async def _view(request: Request, token: str) -> dict[str, Any]:
    _admit(request)
    service = service_of(request)
    package = await blocking(service.store.by_tracking_token, token)
    if package is None:
        raise ApiError(404, "no such tracking page", code="not_found")
    config = service.config
    return public_view(package, station=(config.lat, config.lon), zone=config.notifications.time_zone)


@router.get(
    "/v1/track/{token}",
    summary="A package's public tracking view (no auth: the token is the key)",
    response_model=None,
    responses={200: {"model": TrackView}, **_TRACK_ERRORS},
)
async def track_json(request: Request, token: str) -> Response:
    """State in plain words, ETA (UTC and the station's zone), how it travels, destination and station."""
    view = await _view(request, token)
    content = orjson.dumps(view, option=orjson.OPT_UTC_Z)
    return Response(content, media_type="application/json", headers=_NO_STORE)


@router.get("/track/{token}", include_in_schema=False)
async def track_page(request: Request, token: str) -> FileResponse:
    """The page; it reads `/v1/track/{token}` itself (and again every 30 s)."""
    from controller.web.mount import STATIC

    await _view(request, token)  # an unknown token is a 404 here too, not an empty page
    return FileResponse(STATIC / "track.html", headers=_NO_STORE)
