"""`GET /v1/report`: the end-of-day figures (see `controller.report`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from controller.api.auth import require
from controller.api.deps import blocking, service_of
from controller.api.schemas import ErrorBody
from controller.report import day_report

router = APIRouter(prefix="/v1", tags=["report"])


@router.get(
    "/report",
    summary="End-of-day figures",
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    dependencies=[Depends(require("fleet:read"))],
)
async def report(
    request: Request,
    day: Annotated[date | None, Query(description="UTC day, YYYY-MM-DD (default: today)")] = None,
) -> dict[str, Any]:
    """Delivered by mode, on-time share, median delivery time, van fallbacks by reason, energy, failures."""
    service = service_of(request)
    return await blocking(day_report, service.store, day or service.clock().date())
