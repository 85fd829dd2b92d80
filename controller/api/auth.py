"""Token auth with three roles, checked per route.

Each token in the station file (`[api.tokens]`) has exactly one role:

| permission      | dispatcher | operator | viewer |
|-----------------|:----------:|:--------:|:------:|
| packages:write  | yes        | yes      |        |
| packages:read   | yes        | yes      | yes    |
| vans:read       | yes        | yes      | yes    |
| fleet:read      |            | yes      | yes    |
| fleet:write     |            | yes      |        |

A missing or unknown token is 401 (with `WWW-Authenticate: Bearer`); a known token without the permission
is 403. Tokens are compared in constant time so their content cannot be guessed from response times.
WebSockets may pass the token as `?token=` because browsers cannot set headers on them.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controller.api.errors import ApiError

__all__ = ["PERMISSIONS", "Permission", "Role", "authorize", "require", "role_of"]

Role = Literal["dispatcher", "operator", "viewer"]
Permission = Literal["packages:write", "packages:read", "vans:read", "fleet:read", "fleet:write"]

PERMISSIONS: dict[Role, frozenset[str]] = {
    "dispatcher": frozenset({"packages:write", "packages:read", "vans:read"}),
    "operator": frozenset({"packages:write", "packages:read", "vans:read", "fleet:read", "fleet:write"}),
    "viewer": frozenset({"packages:read", "vans:read", "fleet:read"}),
}
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# Declares the scheme in OpenAPI (for generated clients and the /docs page); the checks are ours, below.
_scheme = HTTPBearer(auto_error=False, description="a token from the station file's [api.tokens]")


def role_of(token: str | None, tokens: Mapping[str, Role]) -> Role | None:
    """The role of a token, or None; every known token is compared, so timing says nothing."""
    if not token:
        return None
    found: Role | None = None
    given = token.encode()
    for known, role in tokens.items():
        if hmac.compare_digest(given, known.encode()):
            found = role
    return found


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authorize(token: str | None, tokens: Mapping[str, Role], permission: Permission) -> Role:
    """The caller's role if it has `permission`; raises the 401 or 403 `ApiError` otherwise."""
    if token is None:
        raise ApiError(
            401,
            "missing token: send 'Authorization: Bearer <token>'",
            field="Authorization",
            headers=_CHALLENGE,
        )
    role = role_of(token, tokens)
    if role is None:
        raise ApiError(401, "unknown token", field="Authorization", headers=_CHALLENGE)
    if permission not in PERMISSIONS[role]:
        raise ApiError(403, f"the {role} role may not do this (needs {permission})", field="Authorization")
    return role


def require(permission: Permission) -> Callable[..., Role]:
    """A FastAPI dependency: the route needs `permission`."""

    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hand-off per request
    # that costs more than the check itself.
    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_scheme)]
    ) -> Role:
        tokens = request.app.state.service.config.api.tokens
        return authorize(bearer(request.headers.get("authorization")), tokens, permission)

    dependency.__name__ = f"require_{permission.replace(':', '_')}"
    return dependency
