"""The HTTP API of one station: `create_app(service)` gives the FastAPI app.

Its OpenAPI document is `GET /openapi.json`, for any valid token (it names the station and the whole API);
`/docs` is a page of the station's own (no CDN) that reads it with the token the user gives. Every answer
carries the security headers and every body passes the guards of `controller.api.hardening`.

The app does not own the `StationService`: whoever runs the station starts it, builds the app over it, and
serves the app (see `controller.api.server`). The app owns only what exists for the API: the webhooks (the
dispatcher's, `[api] webhook_url`, and the customers' notifications, `[notifications] webhook_url`),
started and stopped with the app, and only while this controller leads its station.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from controller.api import (
    routes_airspace,
    routes_fleet,
    routes_packages,
    routes_report,
    routes_track,
    routes_vans,
    ws,
)
from controller.api.auth import require
from controller.api.errors import install_error_handlers
from controller.api.hardening import BodyGuard, SecurityHeaders
from controller.api.health import Health, StoreProbe, health
from controller.api.schemas import PackageBatch
from controller.packages import (
    KG_PER_LB,
    MAX_DIMENSION_M,
    MAX_KEY_LEN,
    MAX_NOTE_LEN,
    MAX_RECIPIENT_LEN,
    MAX_WEIGHT_KG,
    PackageIn,
)

if TYPE_CHECKING:
    from controller.api.standby import Role
    from controller.service import StationService

__all__ = ["API_VERSION", "create_app"]

log = logging.getLogger("lastmile.api")

API_VERSION = "1.0.0"
_DESCRIPTION = """\
The assignment API of a lastmile-fleet station: submit packages, learn at once whether a drone, a robot or a
van takes each (and why), follow the van fallback feed, and run the fleet.

Auth: `Authorization: Bearer <token>`; each token has one role (dispatcher, operator, viewer).
Errors: `{"error": {"field", "reason", "code", "row"}, "errors": [...]}`. Weights in kg or lb, SI inside.
"""


def create_app(service: StationService, *, webhook: bool = True, role: Role | None = None) -> FastAPI:
    """The API over a `StationService`; `webhook=False` leaves the van webhook off.

    `role` (a `Leadership`): the controller's role for its station, for `/healthz`; while it is a standby
    the service is not started and the van webhook waits until it leads (only the leader hands packages
    over). Writes are refused in front of the app (`StandbyGuard`, see `controller.api.server.serve`).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        config = service.config
        if webhook and (config.api.webhook_url or config.notifications.webhook_url):
            became_leader = getattr(role, "became_leader", None)
            if became_leader is None or became_leader.is_set():
                task = await _start_webhooks(app, service, role)
            else:
                task = asyncio.create_task(_webhooks_when_leading(app, service, role, became_leader))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title=f"lastmile-fleet station API ({service.config.name})",
        version=API_VERSION,
        description=_DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's own pages are open to anyone and load Swagger UI from a CDN: ours are below and in
        # `controller.web` (the /docs page).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.state.webhook = None  # the dispatcher's (an `EventWebhook`), once started
    app.state.webhooks = []  # every webhook started
    install_error_handlers(app)
    app.add_middleware(BodyGuard)
    app.add_middleware(SecurityHeaders)  # added last, so outermost: the guard's answers carry the headers too
    routers = (routes_packages, routes_vans, routes_fleet, routes_airspace, ws, routes_report, routes_track)
    for module in routers:
        app.include_router(module.router)

    probe = StoreProbe()

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["health"],
        summary="Liveness, role and links (no auth)",
        responses={503: {"model": Health, "description": "the store cannot be reached"}},
    )
    async def healthz(response: Response) -> Health:
        status, body = await health(service, role, probe)
        response.status_code = status
        return body

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require("packages:read"))])
    async def openapi() -> JSONResponse:
        """The OpenAPI document, for every valid token (each role may read packages)."""
        return JSONResponse(app.openapi())

    from controller.web import mount_console  # here: controller.web builds on controller.api

    mount_console(app, service)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def _webhooks_when_leading(
    app: FastAPI, service: StationService, role: Any, leading: asyncio.Event
) -> None:
    """A standby's webhooks: started once it leads, stopped with the app."""
    await leading.wait()
    task = await _start_webhooks(app, service, role)
    try:
        await asyncio.shield(task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _start_webhooks(app: FastAPI, service: StationService, role: Any) -> asyncio.Task[None]:
    """Build the station's webhooks, find each one's cursor (stored, or the log's end), run them in one task.

    The cursors are found before the server accepts requests, so nothing handed over from now is missed.
    """
    from controller.service.webhook import EventWebhook

    hooks = station_webhooks(service, epoch=lambda: getattr(role, "epoch", None))
    for hook in hooks:
        await hook.start()
    app.state.webhooks = hooks
    app.state.webhook = next((h for h in hooks if h.name == "dispatcher"), None)

    async def run_all(hooks: list[EventWebhook]) -> None:
        async with asyncio.TaskGroup() as group:
            for hook in hooks:
                group.create_task(hook.run(), name=f"lastmile.api.{hook.name}_webhook")

    return asyncio.create_task(run_all(hooks), name="lastmile.api.webhooks")


def station_webhooks(service: StationService, *, epoch: Any = None) -> list[Any]:
    """The webhooks `service`'s station file asks for (not started)."""
    from controller.api.routes_vans import handover
    from controller.packages import PackageState
    from controller.service.notify import Notifier, dispatcher_render, kind_of
    from controller.service.webhook import EventWebhook

    config = service.config
    station = (config.lat, config.lon)
    notes = config.notifications
    base = notes.public_url or ""
    name = config.name[:128]
    hooks: list[EventWebhook] = []
    if config.api.webhook_url:
        if config.api.webhook_key() is None:
            log.warning(
                "the dispatcher's webhook %s is not signed: set [api] webhook_secret_env or "
                "webhook_secret_file so its receiver can tell the station's POSTs from forgeries",
                config.api.webhook_url,
            )
        render = dispatcher_render(
            lambda e, p: handover(e, p, station, base=base),
            events=config.api.webhook_events,
            station_name=config.name,
            station=station,
            zone=notes.time_zone,
            base=base,
        )
        hooks.append(
            EventWebhook(
                service.store,
                service.bus,
                config.api.webhook_url,
                render=render,
                name="dispatcher",
                station=name,
                to_state=PackageState.VAN if config.api.webhook_events == "van" else None,
                key=config.api.webhook_key(),
                kind=kind_of,
                epoch=epoch,
            )
        )
    if notes.webhook_url:
        notifier = Notifier(
            station_name=config.name,
            station=station,
            zone=notes.time_zone,
            base=base,
            eta_change_s=notes.eta_change_s,
            history=service.store.history,
        )
        hooks.append(
            EventWebhook(
                service.store,
                service.bus,
                notes.webhook_url,
                render=notifier,
                name="notifications",
                station=name,
                key=notes.key(),
                epoch=epoch,
            )
        )
    return hooks


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema, plus the request models of the hand-parsed `POST /v1/packages` body."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (PackageIn, PackageBatch):
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in body.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components[model.__name__] = body
    _document_limits(components["PackageIn"])
    app.openapi_schema = schema
    return schema


# The single-field rules of `PackageIn` (enforced by its validators), written into the schema so that
# integrators and generated clients see them. Rules across fields (at most 1000 kg whatever the unit, not
# 0/0, earliest before deadline, times with a zone) are in the descriptions and answered with a 422.
_LIMITS: dict[str, dict[str, Any]] = {
    "key": {"minLength": 1, "maxLength": MAX_KEY_LEN},
    "weight": {"exclusiveMinimum": 0, "maximum": MAX_WEIGHT_KG / KG_PER_LB},
    "dest_lat": {"minimum": -90, "maximum": 90},
    "dest_lon": {"minimum": -180, "maximum": 180},
    "priority": {"minimum": 0, "maximum": 9},
    "recipient": {"maxLength": MAX_RECIPIENT_LEN},
    "note": {"maxLength": MAX_NOTE_LEN},
    **{f"{d}_m": {"exclusiveMinimum": 0, "maximum": MAX_DIMENSION_M} for d in ("length", "width", "height")},
}


def _document_limits(schema: dict[str, Any]) -> None:
    for name, limits in _LIMITS.items():
        prop = schema["properties"][name]
        typed = [s for s in prop.get("anyOf", [prop]) if s.get("type") != "null"]
        for sub in typed:
            sub.update(limits)
