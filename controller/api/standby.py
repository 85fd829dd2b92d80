"""A standby answers reads, never writes: `StandbyGuard` refuses writes while this controller does not lead.

A hot standby (docs/operations.md) serves the same API as its leader from the same store, so consoles and
the van dispatcher can read from either; but only the leader writes. Every request that could write (any
method but GET, HEAD and OPTIONS) is answered here, in front of the whole app (the intake fast path too),
with `503 Service Unavailable`, `Retry-After: 1` and a body naming the leader, until this controller serves
as the leader. 503 rather than a 307 to the leader: both controllers read one station file, which cannot
name the leader's address (it is whichever host won the lease), and a client that retries after a second
reaches the new leader through whatever sends it to a healthy controller (a load balancer that follows
`/healthz`'s `role`, or a retry on the other address). A standby that took over accepts writes once its
service has started (vehicles linked, missions reloaded): `Leadership.leading`.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from controller.api.errors import error_body, problem
from controller.api.hardening import SECURITY_HEADERS

__all__ = ["READ_METHODS", "RETRY_AFTER_S", "Role", "StandbyGuard"]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_AFTER_S = 1  # a takeover takes a second or two: ask again soon


class Role(Protocol):
    """What the guard and `/healthz` need of `controller.service.leadership.Leadership`."""

    @property
    def leading(self) -> bool: ...

    def describe_leader(self) -> str: ...

    def health(self) -> dict[str, Any]: ...


class StandbyGuard:
    """ASGI middleware, outermost: writes get 503 while `role.leading` is False (see the module docstring)."""

    def __init__(self, app: ASGIApp, role: Role, station: str) -> None:
        self.app = app
        self.role = role
        self.station = station

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READ_METHODS or self.role.leading:
            await self.app(scope, receive, send)
            return
        reason = (
            f"this controller is not the leader of station {self.station!r} and does not write; "
            f"{self.role.describe_leader()}; send writes to the leader (try again in {RETRY_AFTER_S} s)"
        )
        body = orjson.dumps(error_body([problem(reason, field="(station)", code="standby")]))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_S).encode()),
            *SECURITY_HEADERS,
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
