"""What the API does against hostile input and pages: body limits, JSON shape limits, security headers.

- Bodies: `POST /v1/packages` takes up to `MAX_BODY_BYTES`, every other route `MAX_SMALL_BODY_BYTES`; more is
  a 413 before anything is parsed.
- JSON: every body is JSON, and none of this API's inputs nests deeper than a few levels (a batch is an
  object holding a list of objects of plain values), so a body nested deeper than `MAX_JSON_DEPTH` arrays or
  objects is a 422 naming the field where it happens, before any validator sees it. (Deeply nested values
  used to reach pydantic, whose error message recursed until Python gave up: a 500.)
- Headers: every answer carries `SECURITY_HEADERS`: a Content-Security-Policy that lets pages load only the
  station's own scripts, styles and connections (the console has no inline script or style and no CDN),
  no framing (`frame-ancestors 'none'`, `X-Frame-Options: DENY`), no MIME sniffing, no referrer.

`BodyGuard` and `SecurityHeaders` are pure ASGI middleware that `create_app` installs; the intake fast path
(`controller.api.fastpath`) applies the same checks itself, as it answers in front of the app.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.api.errors import ApiError, error_body, problem

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_SMALL_BODY_BYTES",
    "SECURITY_HEADERS",
    "BodyGuard",
    "SecurityHeaders",
    "check_nesting",
    "content_security_policy",
    "parse_json",
]

MAX_BODY_BYTES = 32 * 1024 * 1024  # a batch of 10,000 packages with long notes stays far below this
MAX_SMALL_BODY_BYTES = 1024 * 1024  # every other body is a reason or a few fields
MAX_JSON_DEPTH = 16  # a batch needs 3 (object > list > package); nothing needs more than 4


def content_security_policy(img_sources: tuple[str, ...] = ()) -> str:
    """The policy, with `img_sources` (origins) added to img-src only: a configured basemap's tile server
    (`[console] basemap_url`), whose tiles are images and nothing more (no script, style or connection)."""
    images = " ".join(("'self'", "data:", *img_sources))
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self'; img-src {images}; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


CONTENT_SECURITY_POLICY = content_security_policy()
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_SECURITY_NAMES = {name for name, _ in SECURITY_HEADERS}


def too_large(limit: int) -> ApiError:
    """The 413 for a body over `limit` bytes."""
    size = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
    return ApiError(
        413, f"the body is larger than {size}; send smaller batches", field="(body)", code="too_large"
    )


def body_limit(scope: Scope) -> int:
    """How many bytes of body the request may carry: package intake takes batches, the rest small bodies."""
    if scope.get("method") == "POST" and scope.get("path") == "/v1/packages":
        return MAX_BODY_BYTES
    return MAX_SMALL_BODY_BYTES


def check_nesting(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise a 422 `ApiError` naming the field when parsed JSON nests more than `limit` arrays or objects.

    Iterative (no recursion, whatever the depth) and visiting containers only, so a batch of 500 packages
    costs about half a millisecond (about 1 % of storing and planning it).
    """
    if type(value) is not dict and type(value) is not list:
        return
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(value, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if depth > limit:
            raise _too_deep(path, limit)
        for key, item in node.items() if type(node) is dict else enumerate(node):
            if type(item) is dict or type(item) is list:
                stack.append((item, depth + 1, (*path, key)))


def _too_deep(path: tuple[Any, ...], limit: int) -> ApiError:
    # The field is the last object member on the way down (`note`, `packages.3.note`), not the list
    # indexes under it: that is what a person would look for in what they sent.
    named = max((i for i, part in enumerate(path) if isinstance(part, str)), default=-1)
    field = ".".join(str(p) for p in path[: named + 1]) or "(body)"
    where = "the body" if field == "(body)" else field
    row = path[1] if len(path) >= 2 and path[0] == "packages" and isinstance(path[1], int) else None
    return ApiError(
        422,
        f"{where} nests arrays or objects more than {limit} levels deep; no field of this API takes values "
        "nested like that",
        field=field,
        code="invalid",
        row=row,
    )


def parse_json(raw: bytes) -> Any:
    """The parsed body, or a 422 `ApiError`: not JSON, or nested deeper than `MAX_JSON_DEPTH`."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc).lower():  # orjson's own limit (1024 levels)
            reason = f"the body nests arrays or objects more than {MAX_JSON_DEPTH} levels deep"
        else:
            reason = f"the body is not valid JSON: {exc}"
        raise ApiError(422, reason, field="(body)", code="invalid") from None
    check_nesting(value)
    return value


def error_message(exc: ApiError) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """(status, JSON body, extra raw headers) of an `ApiError`, for answers written at the ASGI level."""
    body = orjson.dumps(error_body([problem(exc.reason, field=exc.field, code=exc.code, row=exc.row)]))
    headers = [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
    return exc.status, body, headers


async def send_error(send: Send, exc: ApiError) -> None:
    """Answer an `ApiError` in the API's JSON error shape, from ASGI middleware."""
    status, body, headers = error_message(exc)
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    *headers],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, or an `ApiError`: 413 past `limit` bytes, 400 when the client went away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "the client went away before sending the whole body", field="(body)")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class BodyGuard:
    """ASGI middleware: read each request's body (bounded), refuse bad JSON, then hand the body on.

    A request without a body passes untouched. The app reads the same bytes again, from memory.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _may_have_body(scope):
            await self.app(scope, receive, send)
            return
        try:
            raw = await read_body(receive, body_limit(scope))
            if raw.strip():
                parse_json(raw)
        except ApiError as exc:
            await send_error(send, exc)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()  # after the body: only a disconnect can come

        await self.app(scope, replay, send)


def _may_have_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


class SecurityHeaders:
    """ASGI middleware: every HTTP answer carries `SECURITY_HEADERS` (unless the route set its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers} & _SECURITY_NAMES
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
