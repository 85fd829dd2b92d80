"""Small shared pieces of the routes: the service behind the app, and running store calls off the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request

if TYPE_CHECKING:
    from controller.service import StationService

T = TypeVar("T")


def service_of(request: Request) -> StationService:
    """The `StationService` this app was created for."""
    return request.app.state.service  # type: ignore[no-any-return]


def station_of(service: StationService) -> tuple[float, float]:
    """(lat, lon) of the station, for distances."""
    return (service.config.lat, service.config.lon)


def tracking_base(service: StationService) -> str:
    """What tracking links start with: `[notifications] public_url`, or nothing (a path on the API)."""
    return service.config.notifications.public_url or ""


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a synchronous store call in a worker thread: the store never runs on the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)
