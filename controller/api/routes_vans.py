"""The van dispatcher's side: the fallback feed (pull, with a cursor) and planned van routes.

The feed is the store's own event log filtered to hand-overs to vans, so it includes packages that
failed in the air and came back, and its cursor (an event id) never skips or repeats: each hand-over
appears exactly once for a client that always passes the last `next` it got.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from controller.api.auth import require
from controller.api.deps import blocking, service_of, station_of, tracking_base
from controller.api.errors import ApiError
from controller.api.schemas import ErrorBody, PackageOut, package_out
from controller.packages import Package, PackageEvent, PackageState
from controller.store import Store
from vehicles.spec import VehicleKind

router = APIRouter(prefix="/v1", tags=["vans"])
MAX_CURSOR = 2**63 - 1  # event ids are 64-bit integers in both databases
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    422: {"model": ErrorBody},
}


class VanHandover(BaseModel):
    """One package handed to the vans: when, why (reason codes, words, hints), and the package."""

    event_id: int = Field(description="the feed position of this hand-over")
    handed_at: datetime
    reason: str = Field(description="why, in words (e.g. '2 attempt(s) failed; last: ...')")
    reasons: list[str] = Field(description="reason codes, e.g. ['overweight'] or ['flight_failed']")
    hints: dict[str, dict[str, str]] = Field(default_factory=dict)
    failed_attempts: bool = Field(description="true when a drone or robot tried and failed first")
    package: PackageOut


class VanFeedPage(BaseModel):
    """Hand-overs after `since`, oldest first; pass `next` as `since` to continue."""

    items: list[VanHandover]
    next: int
    more: bool = Field(description="true when another page is ready now")


def handover(
    event: PackageEvent, package: Package, station: tuple[float, float], *, base: str = ""
) -> dict[str, Any]:
    """The JSON of one hand-over, as the feed lists it and the webhook POSTs it (`base`: tracking links')."""
    out = package_out(package, station, base=base)
    return VanHandover.model_validate(
        {
            "event_id": event.id,
            "handed_at": event.at,
            "reason": event.reason,
            "reasons": list(package.reasons),
            "hints": out["hints"],
            "failed_attempts": event.from_state is PackageState.FAILED,
            "package": out,
        }
    ).model_dump(mode="json")


def _page(store: Store, since: int, limit: int) -> tuple[list[tuple[PackageEvent, Package]], int]:
    events, cursor = store.events_since(since, to_state=PackageState.VAN, limit=limit)
    return [(e, store.get(e.package_id)) for e in events], cursor


@router.get(
    "/van-fallback",
    summary="Packages handed to vans since a cursor",
    response_model=VanFeedPage,
    responses=_ERRORS,
    dependencies=[Depends(require("vans:read"))],
)
async def van_fallback(
    request: Request,
    since: Annotated[
        int, Query(ge=0, le=MAX_CURSOR, description="`next` of the previous page; 0 for the beginning")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> VanFeedPage:
    """Every package no drone or robot carries (from intake, a failed flight, or an operator), once each."""
    service = service_of(request)
    rows, cursor = await blocking(_page, service.store, since, limit)
    station = station_of(service)
    return VanFeedPage.model_validate(
        {
            "items": [handover(e, p, station, base=tracking_base(service)) for e, p in rows],
            "next": cursor,
            "more": len(rows) == limit,
        }
    )


@router.get(
    "/van-routes",
    summary="Routes for the station's vans over the van packages",
    responses={**_ERRORS, 501: {"model": ErrorBody}},
    dependencies=[Depends(require("vans:read"))],
)
async def van_routes(
    request: Request,
    since: Annotated[
        datetime | None,
        Query(description="packages handed to vans from this time (default: 00:00 UTC today)"),
    ] = None,
    time_limit_s: Annotated[float, Query(gt=0, le=60, description="solver time budget")] = 2.0,
) -> dict[str, Any]:
    """Plan van tours (capacity, time windows) from the station over the packages with the vans.

    The body is the van planner's plan: routes (stops in order, arrivals, distance, load) and the packages
    no van can take, each with a reason.
    """
    try:
        from controller.vans import Van, VanStop, plan_van_routes
    except ImportError as exc:  # the van planner is an optional part of a deployment
        raise ApiError(
            501, f"van routing is not available in this build ({exc})", code="not_implemented"
        ) from exc
    if since is not None and since.tzinfo is None:
        raise ApiError(422, "since has no time zone; add Z or an offset", field="since")
    service = service_of(request)
    now = service.clock()
    since = since or datetime.combine(now.date(), time(0), tzinfo=UTC)
    vans = [
        Van(
            v.id,
            capacity_kg=spec.capacity_kg or 1000.0,
            capacity_m3=spec.capacity_m3,
            speed_mps=spec.cruise_speed_mps,
        )
        for v in service.config.fleet
        if v.kind is VehicleKind.VAN
        for spec in [v.vehicle_spec()]
    ]
    if not vans:
        raise ApiError(409, "the station has no vans in its fleet", field="fleet", code="no_vans")
    packages = await blocking(_van_packages, service.store, since)
    stops = [
        VanStop(
            p.id,
            p.dest_lat,
            p.dest_lon,
            p.weight_kg,
            volume_m3=(p.length_m * p.width_m * p.height_m)
            if p.length_m and p.width_m and p.height_m
            else None,
            earliest=p.earliest,
            deadline=p.deadline,
        )
        for p in packages
    ]
    plan = await blocking(
        plan_van_routes,
        (service.config.lat, service.config.lon),
        stops,
        vans,
        start=now,
        time_limit_s=time_limit_s,
    )
    return {"since": since.isoformat(), "packages": len(stops), **plan.as_dict()}


def _van_packages(store: Store, since: datetime) -> list[Package]:
    out: list[Package] = []
    after: str | None = None
    while True:
        page = store.list(state=PackageState.VAN, limit=1000, after=after)
        out.extend(p for p in page if p.updated_at >= since)
        if len(page) < 1000:
            return out
        after = page[-1].id
