"""Read endpoints the console needs beyond the API: the map, who the token is, and the decided queue.

They live here rather than in `controller.api` because only the page needs them; they use the API's auth
(`require`), errors and store helpers, so they behave like every other route (401/403, JSON errors).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from controller.api.auth import PERMISSIONS, Role, require
from controller.api.deps import blocking, service_of, station_of
from controller.api.schemas import ErrorBody, decision_out, package_out
from controller.packages import PackageState
from controller.web.geometry import georef_grid, project, zone_shapes
from geofences import zones_to_geojson
from vehicles.spec import DRONE_DEFAULT, ROBOT_DEFAULT

router = APIRouter(tags=["console"])
_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}
DELIVERED_LIMIT = 50  # the Delivered panel: the latest; any other package is a GET /v1/packages/{id} away
QUEUE_LIMIT = 500  # the panel shows the oldest waiting first; beyond this the page says "and N more"


@router.get("/v1/console/session", summary="The caller's role (console login)", responses=_ERRORS)
async def session(
    request: Request, role: Annotated[Role, Depends(require("packages:read"))]
) -> dict[str, Any]:
    """Every valid token may ask; the page shows actions only for `fleet:write`."""
    service = service_of(request)
    return {"role": role, "permissions": sorted(PERMISSIONS[role]), "station": service.config.name}


@router.get("/v1/map", summary="The station map in its local metric frame", responses=_ERRORS,
            dependencies=[Depends(require("fleet:read"))])  # fmt: skip
async def station_map(request: Request) -> dict[str, Any]:
    """Station, radii, zones (GeoJSON and projected shapes) and each active mission's route and track.

    Coordinates named `x`/`y` or in `shapes`, `route`, `track` are metres east and north of the station
    (azimuthal equidistant, the planner's own frame).
    """
    service = service_of(request)
    config = service.config
    frame = config.frame
    zones = await blocking(lambda: config.zones)  # read from the zones file once, then cached
    missions = await service.missions(unfinished_only=True)
    keys = {p.id: p.key for p in await blocking(service.store.get_many, [m.package_id for m in missions])}
    feed = getattr(request.app.state, "console_feed", None)
    tracks = feed.tracks if feed is not None else {}
    out = []
    for m in missions:
        job = m.plan.get("job", {})
        route = project(frame, job.get("route") or [])
        dest = job.get("destination")
        out.append({
            "id": m.id, "package_id": m.package_id, "package_key": keys.get(m.package_id),
            "vehicle_id": m.vehicle_id, "kind": str(m.kind),
            "state": m.state, "created_at": m.created_at.isoformat(), "route": route,
            "destination": project(frame, [dest])[0] if dest else None,
            "track": [list(p) for p in tracks.get(m.id, [])],
        })  # fmt: skip
    return {
        "station": {"name": config.name, "lat": config.lat, "lon": config.lon, "launch": config.launch},
        "radii": {"drone_m": DRONE_DEFAULT.max_range_m, "robot_m": ROBOT_DEFAULT.max_range_m},
        "zones": zones_to_geojson(zones),
        "shapes": zone_shapes(zones, frame),
        "missions": out,
        "grounded": service.grounded,
        "last_event": service.bus.last_seq,
        "basemap": config.console.basemap_url is not None,
    }


@router.get("/v1/console/basemap", summary="The basemap's tiles and how to lay them under the map",
            responses=_ERRORS, dependencies=[Depends(require("fleet:read"))])  # fmt: skip
async def basemap(request: Request) -> dict[str, Any]:
    """`[console]`'s tile URL template and attribution (null when none is configured), with a grid of the
    local frame's points in lon/lat (`georef_grid`) over the drone radius and a margin."""
    console = service_of(request).config.console
    if console.basemap_url is None:
        return {"url": None}
    frame = service_of(request).config.frame
    grid = await asyncio.to_thread(georef_grid, frame, DRONE_DEFAULT.max_range_m * 1.5)
    return {
        "url": console.basemap_url,
        "attribution": console.basemap_attribution,
        "max_zoom": console.basemap_max_zoom,
        "grid": grid,
    }


@router.get("/v1/console/delivered", summary="The latest deliveries with their proof of delivery",
            responses=_ERRORS, dependencies=[Depends(require("packages:read"))])  # fmt: skip
async def delivered(request: Request) -> dict[str, Any]:
    """Newest first, at most `DELIVERED_LIMIT`: what the Delivered panel lists (the detail is the API's)."""
    service = service_of(request)
    items = await blocking(service.store.recent_proofs, DELIVERED_LIMIT)
    for item in items:
        for key in ("at", "photo_at"):
            item[key] = item[key].isoformat() if item[key] is not None else None
    return {"items": items}


@router.get("/v1/console/queue", summary="Unfinished packages with the controller's decision",
            responses=_ERRORS, dependencies=[Depends(require("packages:read"))])  # fmt: skip
async def queue(request: Request) -> dict[str, Any]:
    """Packages not yet delivered or with the vans, oldest first, each with its decision and where it goes."""
    service = service_of(request)
    packages = await blocking(service.store.unfinished)
    total = len(packages)
    packages = packages[:QUEUE_LIMIT]
    station = station_of(service)
    xy = await asyncio.to_thread(project, service.config.frame, [(p.dest_lat, p.dest_lon) for p in packages])
    items = []
    for p, (x, y) in zip(packages, xy, strict=True):
        item = package_out(p, station)
        item["state"] = str(item["state"])
        for key in ("created_at", "updated_at", "deadline", "earliest", "eta"):
            item[key] = item[key].isoformat() if item[key] is not None else None
        item["decision"] = decision_out(service.decision_of(p)).model_dump(mode="json")
        item["x"], item["y"] = x, y
        items.append(item)
    return {
        "items": items,
        "total": total,
        "waiting": sum(p.state is PackageState.RECEIVED for p in packages),
    }
