"""Packages: submit (one or a batch, idempotent on the client's key), read, list, and hand to vans.

Input is validated here, before the service sees it, with the same `PackageIn` as the CSV and the CLI, so
a batch with one bad item is refused whole (422 naming `packages.<i>.<field>`) and nothing is stored. A
deadline already past (by the service's clock) is such a bad item unless the batch says `allow_late: true`.
The body is parsed by hand rather than by FastAPI so that one object and `{"packages": [...]}` share one
endpoint with errors that name the field a person would fix, not pydantic's union branches.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from controller.api.auth import require
from controller.api.deps import blocking, service_of, station_of, tracking_base
from controller.api.errors import ApiError, error_body, problem
from controller.api.schemas import (
    ErrorBody,
    PackageDetail,
    PackagePage,
    PhotoIn,
    ProofOut,
    SubmitBatchResult,
    SubmitResult,
    decision_out,
    history_out,
    package_out,
    proof_out,
    submit_answer,
    submit_result,
)
from controller.errors import InputError
from controller.packages import PackageIn, PackageState, describe_validation_error, late_reason
from controller.service.notify import tracking_url
from controller.store import IdempotencyConflict
from controller.store.proofs import check_photo_url

if TYPE_CHECKING:
    from controller.service import StationService

router = APIRouter(prefix="/v1", tags=["packages"])

MAX_BATCH = 10_000
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or unknown token"},
    403: {"model": ErrorBody, "description": "the token's role may not do this"},
    422: {"model": ErrorBody, "description": "bad input; names the field and the reason"},
}
_SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/PackageIn"},
                        {"$ref": "#/components/schemas/PackageBatch"},
                    ]
                }
            }
        },
    }
}


class VanRequest(BaseModel):
    """Why an operator hands a package to the vans (kept in its history)."""

    reason: str = Field(default="handed to vans by an operator", min_length=1, max_length=200)


def _parse(body: Any) -> tuple[list[PackageIn], bool, bool]:
    """(packages, is_batch, allow_late), or a 422 `ApiError`-like response raised as `_Invalid`."""
    if isinstance(body, dict) and "packages" in body:
        extra = sorted(set(body) - {"packages", "allow_late"})
        if extra:
            raise _Invalid([problem(f"{extra[0]} is not a known field of a batch", field=extra[0])])
        allow_late = body.get("allow_late", False)
        if not isinstance(allow_late, bool):
            kind = type(allow_late).__name__ if allow_late is not None else "null"
            raise _Invalid([problem(f"allow_late must be true or false, got {kind}", field="allow_late")])
        items = body["packages"]
        if not isinstance(items, list) or not items:
            raise _Invalid([problem("packages must be a non-empty list of packages", field="packages")])
        if len(items) > MAX_BATCH:
            raise _Invalid(
                [problem(f"a batch holds at most {MAX_BATCH} packages, got {len(items)}", field="packages")]
            )
        return _validate(items, batch=True), True, allow_late
    if isinstance(body, dict):
        return _validate([body], batch=False), False, False
    kind = type(body).__name__ if body is not None else "null"
    raise _Invalid(
        [problem(f"the body must be a package or {{'packages': [...]}}, got {kind}", field="(body)")]
    )


def _validate(items: list[Any], *, batch: bool) -> list[PackageIn]:
    try:  # the whole list in one call of the validator (3.5 -> 2.9 µs a package, against one call each)
        return _PACKAGES.validate_python(items)
    except ValidationError:
        pass  # then item by item, which words each problem under the package and field a person would fix
    out: list[PackageIn] = []
    problems: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        prefix = f"packages.{i}." if batch else ""
        row = i if batch else None
        if not isinstance(item, dict):
            problems.append(
                problem("each package must be a JSON object", field=prefix.rstrip(".") or None, row=row)
            )
            continue
        try:
            out.append(PackageIn.model_validate(item))
        except ValidationError as exc:
            for field, reason in describe_validation_error(exc):
                problems.append(problem(reason, field=prefix + field, row=row))
    if problems:
        raise _Invalid(problems)
    return out


_PACKAGES = TypeAdapter(list[PackageIn])


def _late(items: list[PackageIn], now: datetime, *, batch: bool) -> list[dict[str, Any]]:
    """A problem for each package whose deadline is already past: a van would only carry it late."""
    if batch:
        hint = "; send the batch with allow_late: true to accept it"
    else:
        hint = "; to accept it, send it as a batch of one with allow_late: true"
    problems = []
    for i, item in enumerate(items):
        reason = late_reason(item, now)
        if reason is not None:
            field = f"packages.{i}.deadline" if batch else "deadline"
            problems.append(problem(reason + hint, field=field, row=i if batch else None))
    return problems


class _Invalid(Exception):
    def __init__(self, problems: list[dict[str, Any]]) -> None:
        self.problems = problems


@router.post(
    "/packages",
    summary="Submit one package or a batch",
    response_model=SubmitResult | SubmitBatchResult,
    status_code=201,
    responses={
        200: {"description": "every package was already known (idempotent repeat)"},
        409: {"model": ErrorBody, "description": "a key already names a package with different content"},
        **_ERRORS,
    },
    openapi_extra=_SUBMIT_BODY,
    dependencies=[Depends(require("packages:write"))],
)
async def submit(request: Request) -> Response:
    """Store packages (all or none) and say at once what becomes of each.

    Send one package object, or `{"packages": [...]}`. Each needs a `key` chosen by you: sending the same key
    with the same content again returns the same package (200); with different content it is refused (409).
    201 when at least one package is new.
    """
    status, body = await answer_submission(service_of(request), await request.body())
    return Response(body, status_code=status, media_type="application/json")


async def answer_submission(service: StationService, raw: bytes) -> tuple[int, bytes]:
    """(HTTP status, JSON body) for a `POST /v1/packages` body: what the route and its fast path answer."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return 422, _json(error_body([problem(f"the body is not valid JSON: {exc}", field="(body)")]))
    try:
        items, batch, allow_late = _parse(body)
    except _Invalid as exc:
        return 422, _json(error_body(exc.problems))
    if not allow_late:
        late = _late(items, service.clock(), batch=batch)
        if late:
            return 422, _json(error_body(late))
    try:
        stored = await service.submit(items)
    except IdempotencyConflict as exc:
        row = exc.row if batch and isinstance(exc.row, int) else None
        field = "key" if row is None else f"packages.{row}.key"
        conflict = problem(exc.reason, field=field, code="idempotency_conflict", row=row)
        return 409, _json(error_body([conflict]))
    base = tracking_base(service)
    results = [
        submit_result(p.id, p.key, created, p.state, d, tracking_url(base, p.tracking_token))
        for p, created, d in stored
    ]
    status = 201 if any(created for _, created, _ in stored) else 200
    return status, submit_answer(results, batch=batch)


def _json(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)


@router.get(
    "/packages",
    summary="List packages, oldest first, a page at a time",
    response_model=PackagePage,
    responses=_ERRORS,
    dependencies=[Depends(require("packages:read"))],
)
async def list_packages(
    request: Request,
    state: Annotated[PackageState | None, Query(description="only packages in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(description="the `next` of the previous page")] = None,
) -> PackagePage:
    """Keyset pagination: pages stay correct while packages keep arriving."""
    service = service_of(request)
    page = await blocking(service.store.list, state=state, limit=limit, after=after)
    station = station_of(service)
    items = [package_out(p, station, base=tracking_base(service)) for p in page]
    return PackagePage.model_validate({"items": items, "next": page[-1].id if len(page) == limit else None})


@router.get(
    "/packages/{package_id}",
    summary="One package with its full history",
    response_model=PackageDetail,
    responses={404: {"model": ErrorBody}, **_ERRORS},
    dependencies=[Depends(require("packages:read"))],
)
async def get_package(request: Request, package_id: str) -> PackageDetail:
    """The package, the controller's current decision, and every transition with its time and reason."""
    service = service_of(request)
    package = await blocking(service.store.get, package_id)
    history = await blocking(service.store.history, package_id)
    proof = await blocking(service.store.proof_of, package_id)
    return PackageDetail.model_validate(
        {
            **package_out(package, station_of(service), base=tracking_base(service)),
            "decision": decision_out(service.decision_of(package)),
            "history": history_out(history),
            "proof": proof_out(proof, package),
        }
    )


@router.post(
    "/packages/{package_id}/proof/photo",
    summary="Attach a photo URL to a delivery's proof (operator or vehicle integration)",
    response_model=ProofOut,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}, **_ERRORS},
    dependencies=[Depends(require("proof:write"))],
)
async def attach_photo(request: Request, package_id: str, body: PhotoIn) -> ProofOut:
    """Store the URL of a photo taken at the drop (the photo itself stays with the integration).

    The URL must be http or https with a host and no credentials (422 naming `photo_url` otherwise); a
    package not delivered by a drone or robot has no proof to attach it to (409). A second photo replaces
    the first.
    """
    service = service_of(request)
    package = await blocking(service.store.get, package_id)
    try:
        check_photo_url(body.photo_url)
    except InputError as exc:
        raise ApiError(422, exc.reason, field="photo_url") from exc
    if await blocking(service.store.proof_of, package_id) is None:
        raise ApiError(
            409,
            f"package {package_id} is {package.state} and has no proof of delivery to attach a photo to",
            field="state",
            code="invalid_state",
        )
    proof = await blocking(service.store.attach_photo, package_id, body.photo_url)
    out = proof_out(proof, package)
    assert out is not None
    return out


@router.post(
    "/packages/{package_id}/van",
    summary="Hand a package to the vans (operator)",
    response_model=PackageDetail,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}, **_ERRORS},
    dependencies=[Depends(require("fleet:write"))],
)
async def hand_to_van(
    request: Request, package_id: str, body: Annotated[VanRequest | None, Body()] = None
) -> PackageDetail:
    """Take a waiting package off the drone and robot queue; it then appears in the van feed.

    409 when the package is already flying, delivered or with the vans.
    """
    service = service_of(request)
    package = await blocking(service.store.get, package_id)
    if package.state not in (PackageState.RECEIVED, PackageState.FAILED):
        raise ApiError(
            409,
            f"package {package_id} is {package.state}; only a package waiting at the station "
            "(received) can be handed to the vans",
            field="state",
            code="invalid_state",
        )
    reason = (body or VanRequest()).reason
    await service.hand_to_van(package_id, reason)
    return await get_package(request, package_id)
