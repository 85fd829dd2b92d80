"""What the API answers, as pydantic models: these are the OpenAPI schemas integrators code against.

Requests reuse `controller.packages.PackageIn` as it is (one validation for CSV, CLI and API), so these
models are only the responses. Weights are shown in kg and lb and distances in m and mi, because the
dispatchers who read them think in either; everything is computed from the SI values the store keeps.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, Field

from controller.packages import KG_PER_LB, Package, PackageEvent, PackageIn, PackageState
from controller.reasons import M_PER_MI
from geofences.frame import geodesic_distance_m

__all__ = [
    "DecisionOut",
    "ErrorBody",
    "ErrorDetail",
    "HistoryEntry",
    "PackageBatch",
    "PackageDetail",
    "PackageOut",
    "PackagePage",
    "SubmitBatchResult",
    "SubmitResult",
    "decision_out",
    "package_out",
    "submit_answer",
    "submit_result",
]


class ErrorDetail(BaseModel):
    """One problem: which field (dotted, e.g. `packages.3.weight`) and why, in words."""

    field: str | None = None
    reason: str
    code: str = Field(description="machine-readable kind: invalid, unauthorized, forbidden, not_found, ...")
    row: int | None = Field(default=None, description="index of the package in a batch")


class ErrorBody(BaseModel):
    """Every error answer: `error` is the first problem, `errors` all of them (validation may find many)."""

    error: ErrorDetail
    errors: list[ErrorDetail] = Field(default_factory=list)


class PackageBatch(BaseModel):
    """A batch: stored all together or, if any item is bad, not at all."""

    packages: list[PackageIn] = Field(min_length=1, max_length=10_000)
    allow_late: bool = Field(
        default=False,
        description="accept packages whose deadline is already past (refused with 422 otherwise); "
        "send a single late package as a batch of one",
    )


class DecisionOut(BaseModel):
    """What the controller means to do with a package.

    `decision` is `drone` or `robot` (with `vehicle_id` and `eta`), `queued` (waiting for a vehicle, with the
    planned `mode` and `eta` when known, or a `reason` such as "fleet grounded: ..." or `airspace_busy`, the
    drone's flight finding no launch slot in the station's airspace yet, with `airspace_free_at`), `van`
    (with reason codes and, per vehicle kind, hints of what would have made it eligible), or the package's
    final state.
    """

    decision: str
    mode: str | None = None
    vehicle_id: str | None = None
    eta: datetime | None = None
    reason: str | None = None
    airspace_free_at: datetime | None = None
    reasons: list[str] = Field(default_factory=list)
    hints: dict[str, dict[str, str]] = Field(default_factory=dict)


class SubmitResult(BaseModel):
    """The answer for one submitted package: `created` is false for an idempotent repeat."""

    id: str
    key: str
    created: bool
    state: PackageState
    decision: DecisionOut
    tracking_url: str | None = Field(default=None, description="the package's public tracking page")


class SubmitBatchResult(BaseModel):
    """The answer for a batch, in the order submitted."""

    packages: list[SubmitResult]


class PackageOut(BaseModel):
    """A package as the store knows it, with its weight in kg and lb and its distance in m and mi."""

    id: str
    key: str
    state: PackageState
    created_at: datetime
    updated_at: datetime
    weight_kg: float
    weight_lb: float
    dest_lat: float
    dest_lon: float
    distance_m: float = Field(description="geodesic distance from the station")
    distance_mi: float
    length_m: float | None = None
    width_m: float | None = None
    height_m: float | None = None
    deadline: datetime | None = None
    earliest: datetime | None = None
    priority: int
    recipient: str | None = None
    note: str | None = None
    mode: str | None = None
    vehicle_id: str | None = None
    eta: datetime | None = None
    energy_margin_wh: float | None = None
    reasons: list[str] = Field(default_factory=list)
    hints: dict[str, dict[str, str]] = Field(default_factory=dict)
    tracking_url: str | None = Field(
        default=None,
        description="the package's public tracking page, for its customer (absolute with [notifications] "
        "public_url, else a path on this API's address)",
    )


class HistoryEntry(BaseModel):
    """One stored transition of a package."""

    id: int
    at: datetime
    from_state: PackageState | None
    to_state: PackageState
    reason: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ProofOut(BaseModel):
    """Proof of delivery: where and when the package left its vehicle, and how that is known."""

    vehicle_id: str
    kind: str = Field(description="drone or robot")
    at: datetime = Field(description="when the vehicle released the package (UTC)")
    lat: float | None = None
    lon: float | None = None
    alt_amsl_m: float | None = Field(default=None, description="drone: altitude above mean sea level")
    alt_agl_m: float | None = Field(default=None, description="drone: altitude above the station's ground")
    confirmed_by: str = Field(
        description="vehicle: the vehicle's own release report; inferred: read from its mission progress "
        "after the report went unheard (a link gap or a controller restart)"
    )
    event: str = Field(description="the vehicle's words, e.g. 'Gripper load releasing', 'drop FINISHED'")
    method: str = Field(description="gripper, winch, payload_place (drone) or the robot's drop action")
    photo_url: str | None = None
    photo_at: datetime | None = None
    distance_to_destination_m: float | None = Field(
        default=None, description="from the release position to the package's destination"
    )


class PhotoIn(BaseModel):
    """A photo of the delivered package, stored by a vehicle integration (only its URL is kept)."""

    photo_url: str = Field(description="http(s) URL, at most 2048 characters")


class PackageDetail(PackageOut):
    """A package with its full history, oldest first, and the controller's current decision."""

    decision: DecisionOut
    history: list[HistoryEntry]
    proof: ProofOut | None = Field(default=None, description="proof of delivery, once delivered")


def proof_out(proof: dict[str, Any] | None, package: Package) -> ProofOut | None:
    """A stored proof in the API's shape, with its distance to the package's destination."""
    if proof is None:
        return None
    distance = None
    if proof.get("lat") is not None and proof.get("lon") is not None:
        metres = geodesic_distance_m(proof["lon"], proof["lat"], package.dest_lon, package.dest_lat)
        distance = round(float(metres), 1)
    return ProofOut(**proof, distance_to_destination_m=distance)


class PackagePage(BaseModel):
    """One page of packages; pass `next` as `after` for the following page (null: this was the last)."""

    items: list[PackageOut]
    next: str | None


def decision_out(raw: dict[str, Any]) -> DecisionOut:
    """The service's decision dict (`StationService.decision_of`) in the API's shape."""
    return DecisionOut(**decision_fields(raw))


def decision_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """`DecisionOut`'s fields for a decision dict, for a caller that validates many answers at once."""
    return {
        "decision": str(raw.get("decision")),
        "mode": raw.get("mode"),
        "vehicle_id": raw.get("vehicle_id"),
        "eta": raw.get("eta"),
        "reason": raw.get("reason"),
        "airspace_free_at": raw.get("airspace_free_at"),
        "reasons": list(raw.get("reasons") or []),
        "hints": _hints(raw.get("detail") or {}),
    }


def _hints(detail: dict[str, Any]) -> dict[str, dict[str, str]]:
    hints = detail.get("hints")
    if not isinstance(hints, dict):
        return {}
    if _text_hints(hints):  # what the planner writes: handed on as it is, not copied
        return hints
    return {str(k): {str(r): str(t) for r, t in v.items()} for k, v in hints.items() if isinstance(v, dict)}


def _text_hints(hints: dict[Any, Any]) -> bool:
    """True when `hints` already has the shape `DecisionOut.hints` takes: text to (text to text)."""
    for kind, by_reason in hints.items():
        if type(kind) is not str or type(by_reason) is not dict:
            return False
        for reason, text in by_reason.items():
            if type(reason) is not str or type(text) is not str:
                return False
    return True


def submit_result(
    package_id: str,
    key: str,
    created: bool,
    state: PackageState,
    decision: dict[str, Any],
    tracking_url: str | None = None,
) -> dict[str, Any]:
    """`SubmitResult`'s fields, in its order, for one package and its `decision_of` dict."""
    return {
        "id": package_id,
        "key": key,
        "created": created,
        "state": state,
        "decision": decision_fields(decision),
        "tracking_url": tracking_url,
    }


def submit_answer(results: list[dict[str, Any]], *, batch: bool) -> bytes:
    """The JSON of `SubmitBatchResult` (or, for one package, `SubmitResult`) from `submit_result`s.

    Written by orjson from the dicts: validating them into the models and dumping those was 6 % of all
    the instructions a package's intake took (callgrind), for values that come from stored, validated
    packages. orjson with `OPT_UTC_Z` writes what the models write, byte for byte, fields in the models'
    order (a test holds the two to that), so the OpenAPI schema describes this answer exactly.
    """
    if batch:
        return orjson.dumps({"packages": results}, option=orjson.OPT_UTC_Z)
    (result,) = results
    return orjson.dumps(result, option=orjson.OPT_UTC_Z)


def package_out(package: Package, station: tuple[float, float], *, base: str = "") -> dict[str, Any]:
    """The fields of `PackageOut` for a package, `station` being (lat, lon), `base` the tracking links'."""
    distance = float(geodesic_distance_m(station[1], station[0], package.dest_lon, package.dest_lat))
    return {
        "id": package.id,
        "key": package.key,
        "state": package.state,
        "created_at": package.created_at,
        "updated_at": package.updated_at,
        "weight_kg": round(package.weight_kg, 6),
        "weight_lb": round(package.weight_kg / KG_PER_LB, 6),
        "dest_lat": package.dest_lat,
        "dest_lon": package.dest_lon,
        "distance_m": round(distance, 1),
        "distance_mi": round(distance / M_PER_MI, 3),
        "length_m": package.length_m,
        "width_m": package.width_m,
        "height_m": package.height_m,
        "deadline": package.deadline,
        "earliest": package.earliest,
        "priority": package.priority,
        "recipient": package.recipient,
        "note": package.note,
        "mode": package.mode,
        "vehicle_id": package.vehicle_id,
        "eta": package.eta,
        "energy_margin_wh": package.energy_margin_wh,
        "reasons": list(package.reasons),
        "hints": _hints(package.detail),
        "tracking_url": None if package.tracking_token is None else f"{base}/track/{package.tracking_token}",
    }


def history_out(events: list[PackageEvent]) -> list[HistoryEntry]:
    """A package's stored transitions as the API shows them."""
    return [HistoryEntry.model_validate(e.model_dump()) for e in events]
