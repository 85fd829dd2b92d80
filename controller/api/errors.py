"""Every error the API answers is JSON of one shape: `{"error": {field, reason, code, row}, "errors": [...]}`.

The handlers here translate our own exceptions (bad input, unknown ids, idempotency conflicts, illegal state
changes) and the framework's (bad query parameters, unknown routes) into that shape, so an integrator
writes one error path. Anything else is a bug: it is logged with its traceback and answered with a plain
500 that leaks nothing.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller.errors import InputError
from controller.packages import InvalidTransition, shown
from controller.store import IdempotencyConflict, UnknownMission, UnknownPackage
from controller.store.faults import RETRY_AFTER_S, StoreUnavailable, classify
from controller.store.lease import LeaseLost, NotLeader

log = logging.getLogger("lastmile.api")
STANDBY_RETRY_S = 1  # a write refused because another controller leads now: the leader answers at once

__all__ = ["ApiError", "error_body", "error_response", "install_error_handlers", "problem"]

_LOC_ROOTS = {"body", "query", "path", "header"}
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "bad_method",
    408: "timeout",
    413: "too_large",
    422: "invalid",
}


class ApiError(Exception):
    """An error answer raised from a route: HTTP status, reason in words, the field it is about."""

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        field: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        row: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.field = field
        self.code = code or _CODES.get(status, "error")
        self.headers = headers
        self.row = row


def problem(reason: str, *, field: str | None = None, code: str = "invalid", row: int | None = None) -> dict:
    """One entry of `errors`."""
    return {"field": field, "reason": reason, "code": code, "row": row}


def error_body(problems: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The JSON body of an error answer for one or more problems."""
    items = list(problems)
    return {"error": items[0], "errors": items}


def error_response(
    status: int, problems: Sequence[dict[str, Any]], headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON error answer for one or more problems."""
    return JSONResponse(error_body(problems), status_code=status, headers=headers)


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOC_ROOTS:
        parts = parts[1:]
    return ".".join(parts) or "(body)"


def install_error_handlers(app: FastAPI) -> None:
    """Register the translations described in the module docstring."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        problems = [problem(exc.reason, field=exc.field, code=exc.code, row=exc.row)]
        return error_response(exc.status, problems, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            field = _field(e.get("loc", ()))
            msg = str(e.get("msg", "is not valid"))
            given = e.get("input")
            reason = f"{field}: {msg}" + (
                f", got {shown(given)}" if given is not None and e["type"] != "missing" else ""
            )
            problems.append(problem(reason, field=field))
        return error_response(422, problems or [problem("the request is not valid")])

    @app.exception_handler(IdempotencyConflict)
    async def _conflict(_: Request, exc: IdempotencyConflict) -> JSONResponse:
        field = "key" if exc.row is None else f"packages.{exc.row}.key"
        row = exc.row if isinstance(exc.row, int) else None
        return error_response(409, [problem(exc.reason, field=field, code="idempotency_conflict", row=row)])

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        row = exc.row if isinstance(exc.row, int) else None
        field = exc.field if row is None or exc.field is None else f"packages.{row}.{exc.field}"
        return error_response(422, [problem(exc.reason, field=field, row=row)])

    @app.exception_handler(UnknownPackage)
    async def _no_package(_: Request, exc: UnknownPackage) -> JSONResponse:
        return error_response(404, [problem(str(exc), field="package_id", code="not_found")])

    @app.exception_handler(UnknownMission)
    async def _no_mission(_: Request, exc: UnknownMission) -> JSONResponse:
        return error_response(404, [problem(str(exc), field="mission_id", code="not_found")])

    @app.exception_handler(InvalidTransition)
    async def _transition(_: Request, exc: InvalidTransition) -> JSONResponse:
        return error_response(409, [problem(str(exc), field="state", code="invalid_state")])

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's "error parsing the body": bad input like any other, 422
            reason = f"the body is not valid JSON ({exc.detail})"
            return error_response(422, [problem(reason, field="(body)")])
        code = _CODES.get(exc.status_code, "error")
        return error_response(
            exc.status_code, [problem(str(exc.detail), code=code)], dict(exc.headers or {}) or None
        )

    # Store errors get handlers of their own: Starlette re-raises whatever reaches the catch-all handler
    # below (so the server logs it), which for a database that is down would be a traceback per request.
    @app.exception_handler(StoreUnavailable)
    @app.exception_handler(NotLeader)
    @app.exception_handler(LeaseLost)
    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(sqlite3.Error)
    async def _store(request: Request, exc: Exception) -> JSONResponse:
        service = getattr(request.app.state, "service", None)
        unavailable = store_unavailable(service, exc, f"{request.method} {request.url.path}")
        if unavailable is None:  # a store error that is ours (a constraint, bad SQL): a bug
            log.exception("unhandled store error on %s %s", request.method, request.url.path)
            return error_response(500, [problem("internal error; the controller logged it", code="internal")])
        status, problems, headers = unavailable
        return error_response(status, problems, headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, [problem("internal error; the controller logged it", code="internal")])


def store_unavailable(
    service: Any, exc: BaseException, where: str
) -> tuple[int, list[dict[str, Any]], dict[str, str]] | None:
    """A store fault (down, cut, full, read-only) is the service's state, not a bug: 503 with the reason and
    `Retry-After`, logged once a minute (`StoreFaults`), never a traceback per request. None for a bug. A
    write the lease refused (this controller is a standby, or was just fenced) is 503 `standby` too."""
    if isinstance(exc, NotLeader | LeaseLost):  # a write in the instant this controller stopped leading
        text = f"{exc}; nothing was changed, send it to the leader"
        return 503, [problem(text, field="(station)", code="standby")], {"Retry-After": str(STANDBY_RETRY_S)}
    reason = classify(exc)
    if reason is None:
        return None
    if not isinstance(exc, StoreUnavailable):  # already noted by `StationService.io`
        faults = getattr(service, "store_faults", None)
        if faults is not None:
            faults.record(reason, where)
    text = f"the store is unavailable: {reason}; nothing was changed, try again"
    return 503, [problem(text, code="store_unavailable")], {"Retry-After": str(RETRY_AFTER_S)}
