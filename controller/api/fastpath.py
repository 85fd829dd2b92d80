"""`POST /v1/packages` answered in front of FastAPI's routing: the one endpoint whose volume needs it.

A van dispatcher submits packages by the thousand per second. Measured on the 2-core benchmark machine,
FastAPI's route machinery (its middleware stack, router lookup through included routers, dependency
solving, response wrapping) cost about 0.5 ms per request, more than storing and planning the package.
This ASGI wrapper, which `serve` puts around the whole app, takes that one method and path and does what
the route does, with the same parts: the same permission check (`authorize`), the same handler
(`answer_submission`), the same error shape. The FastAPI route stays in the app, so OpenAPI documents it
and an app served without the wrapper answers the same (a test holds the two to that). Every other request
goes to FastAPI untouched. JSON goes through orjson here, the body's and the answer's. The body gets the
same guards as in the app (`controller.api.hardening`: size, JSON nesting), and the answer the same security
headers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from controller.api.auth import admit, bearer
from controller.api.errors import ApiError, error_body, problem, store_unavailable
from controller.api.hardening import MAX_BODY_BYTES, SECURITY_HEADERS, error_message, parse_json, read_body
from controller.api.routes_packages import answer_submission, router

if TYPE_CHECKING:
    from controller.service import StationService

__all__ = ["MAX_BODY_BYTES", "SubmitFastPath"]

log = logging.getLogger("lastmile.api")

PATH = f"{router.prefix}/packages"  # the route it answers for, so the two cannot drift apart


class SubmitFastPath:
    """ASGI middleware: `POST /v1/packages` straight to `answer_submission`; the rest to `app`."""

    def __init__(self, app: ASGIApp, service: StationService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = []
        try:
            status, body = await self._answer(scope, receive)
        except ApiError as exc:
            status, body, headers = error_message(exc)
        except Exception as exc:  # a store fault (503), else a bug: logged, answered like every other 500
            unavailable = store_unavailable(self.service, exc, f"POST {PATH}")
            if unavailable is not None:
                status, problems, extra = unavailable
                body = orjson.dumps(error_body(problems))
                headers = [(k.lower().encode(), v.encode()) for k, v in extra.items()]
            else:
                log.exception("unhandled error on POST %s", PATH)
                status = 500
                body = orjson.dumps(
                    error_body([problem("internal error; the controller logged it", code="internal")])
                )
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
            *SECURITY_HEADERS,
        ]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        # Permission first: an unknown caller's body is never read, let alone parsed.
        admit(self.service, bearer(authorization), "packages:write")  # the same limits as the routes
        raw = await read_body(receive, MAX_BODY_BYTES)
        parse_json(raw)  # refuses what no validator should see (too deep); parsed again by the handler
        return await answer_submission(self.service, raw)
