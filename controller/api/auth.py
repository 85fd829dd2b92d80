"""Token auth with four roles, checked per route.

Each token in the station file (`[api.tokens]`) has exactly one role:

| permission      | dispatcher | operator | viewer | vehicle |
|-----------------|:----------:|:--------:|:------:|:-------:|
| packages:write  | yes        | yes      |        |         |
| packages:read   | yes        | yes      | yes    |         |
| vans:read       | yes        | yes      | yes    |         |
| fleet:read      |            | yes      | yes    |         |
| fleet:write     |            | yes      |        |         |
| proof:write     |            | yes      |        | yes     |

`vehicle` is for a vehicle integration (a drone's or robot's companion service): it may attach a photo to a
delivery's proof and nothing else, so its token, which lives on or near a vehicle, opens no package data.

A missing or unknown token is 401 (with `WWW-Authenticate: Bearer`); a known token without the permission
is 403. The station file holds only salted hashes of the tokens (`controller.tokens`): a token is hashed
with its entry's salt and the digests compared with `hmac.compare_digest`, so neither the file nor response
times give a token away. WebSockets may pass the token as `?token=` because browsers cannot set headers on
them.

Writes (every `...:write` permission) are limited per token by a token bucket (`WriteLimiter`): `[api]
write_burst` at once, then `write_rate_per_s` on average; past that a write is answered 429 with
`Retry-After` (whole seconds) and does nothing. One client's loop, a leaked token or a dispatcher's bug then
costs the station a bounded share of its writes, and the other tokens keep theirs.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controller.api.errors import ApiError
from controller.tokens import TokenEntry, identify

if TYPE_CHECKING:
    from controller.service import StationService

__all__ = [
    "PERMISSIONS",
    "Permission",
    "Role",
    "WriteLimiter",
    "authorize",
    "caller",
    "limiter_for",
    "require",
    "role_of",
]

Role = Literal["dispatcher", "operator", "viewer", "vehicle"]
Permission = Literal[
    "packages:write", "packages:read", "vans:read", "fleet:read", "fleet:write", "proof:write"
]

PERMISSIONS: dict[Role, frozenset[str]] = {
    "dispatcher": frozenset({"packages:write", "packages:read", "vans:read"}),
    "operator": frozenset(
        {"packages:write", "packages:read", "vans:read", "fleet:read", "fleet:write", "proof:write"}
    ),
    "viewer": frozenset({"packages:read", "vans:read", "fleet:read"}),
    "vehicle": frozenset({"proof:write"}),
}
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# Declares the scheme in OpenAPI (for generated clients and the /docs page); the checks are ours, below.
_scheme = HTTPBearer(auto_error=False, description="a token made by `lastmile token create`")


def role_of(token: str | None, tokens: Mapping[str, TokenEntry]) -> Role | None:
    """The role of a token, or None (hashes compared in constant time; see `controller.tokens.identify`)."""
    found = identify(token, tokens)
    return found[1].role if found is not None else None


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authorize(token: str | None, tokens: Mapping[str, TokenEntry], permission: Permission) -> Role:
    """The caller's role if it has `permission`; raises the 401 or 403 `ApiError` otherwise."""
    return caller(token, tokens, permission)[1]


def caller(token: str | None, tokens: Mapping[str, TokenEntry], permission: Permission) -> tuple[str, Role]:
    """(token name, role) of a caller with `permission`; raises the 401 or 403 `ApiError` otherwise."""
    if token is None:
        raise ApiError(
            401,
            "missing token: send 'Authorization: Bearer <token>'",
            field="Authorization",
            headers=_CHALLENGE,
        )
    found = identify(token, tokens)
    if found is None:
        raise ApiError(401, "unknown token", field="Authorization", headers=_CHALLENGE)
    name, entry = found
    if permission not in PERMISSIONS[entry.role]:
        raise ApiError(
            403, f"the {entry.role} role may not do this (needs {permission})", field="Authorization"
        )
    return name, entry.role


class WriteLimiter:
    """Token buckets, one per API token: `burst` writes at once, refilled at `rate_per_s` (0: unlimited)."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self.refused = 0  # writes answered 429, for operators and tests
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens left, when last refilled)

    def take(self, name: str) -> None:
        """Count one write by `name`, or raise the 429 `ApiError` (with `Retry-After`) when over its limit."""
        if self.rate_per_s <= 0:
            return
        now = self.clock()
        left, since = self._buckets.get(name, (float(self.burst), now))
        left = min(float(self.burst), left + (now - since) * self.rate_per_s)
        if left >= 1.0:
            self._buckets[name] = (left - 1.0, now)
            return
        self._buckets[name] = (left, now)
        self.refused += 1
        wait = max(1, math.ceil((1.0 - left) / self.rate_per_s))
        raise ApiError(
            429,
            f"too many writes with this token: at most {self.rate_per_s:g} per second on average "
            f"({self.burst} at once); retry in {wait} s",
            field="Authorization",
            code="rate_limited",
            headers={"Retry-After": str(wait)},
        )


_limiters: weakref.WeakKeyDictionary[StationService, WriteLimiter] = weakref.WeakKeyDictionary()


def limiter_for(service: StationService) -> WriteLimiter:
    """The station's write limiter, shared by the app's routes and the intake fast path."""
    limiter = _limiters.get(service)
    if limiter is None:
        api = service.config.api
        limiter = _limiters[service] = WriteLimiter(api.write_rate_per_s, api.write_burst)
    return limiter


def admit(service: StationService, token: str | None, permission: Permission) -> Role:
    """`authorize`, then count a write against the token's limit (`WriteLimiter`)."""
    name, role = caller(token, service.config.api.tokens, permission)
    if permission.endswith(":write"):
        limiter_for(service).take(name)
    return role


def require(permission: Permission) -> Callable[..., Role]:
    """A FastAPI dependency: the route needs `permission`."""

    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hand-off per request
    # that costs more than the check itself.
    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_scheme)]
    ) -> Role:
        return admit(request.app.state.service, bearer(request.headers.get("authorization")), permission)

    dependency.__name__ = f"require_{permission.replace(':', '_')}"
    return dependency
