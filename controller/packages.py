"""The package model and its life: what a client submits, what the store returns, and which moves are legal.

A package's life is a small state machine (received -> assigned -> launching -> en_route -> delivered |
failed -> received again | van). The table of legal moves lives here, next to the model, so that the store,
the assignment and the mission layer all refuse the same illegal moves for the same reason.

Input is validated once, at the edge (`PackageIn`): after validation every quantity is in SI units and
every time is timezone-aware UTC, so nothing downstream ever converts or guesses. Error messages name the
field and say why in plain words, because they end up in front of a dispatcher reading a CSV report.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from controller.errors import ControllerError
from vehicles.spec import KG_PER_LB

__all__ = [
    "ALLOWED_TRANSITIONS",
    "KG_PER_LB",
    "MAX_DIMENSION_M",
    "MAX_WEIGHT_KG",
    "MIN_WEIGHT_KG",
    "TERMINAL_STATES",
    "InvalidTransition",
    "Package",
    "PackageEvent",
    "PackageIn",
    "PackageState",
    "StateMismatch",
    "check_transition",
    "describe_validation_error",
    "late_reason",
]

MAX_WEIGHT_KG = 1000.0  # above this a "weight" is a typo or a wrong unit, not a parcel
# Below this a weight is not a parcel either, and it is what the stored content rounds to (6 decimals of a
# kg): a weight of 1e-320 lb passed "greater than zero" and became 0 kg on conversion (hypothesis found it).
MIN_WEIGHT_KG = 1e-6
MAX_DIMENSION_M = 10.0  # the same for a length, width or height
MAX_KEY_LEN = 128
MAX_RECIPIENT_LEN = 200
MAX_NOTE_LEN = 2000

_UNIT_ALIASES = {
    "kg": "kg",
    "kgs": "kg",
    "kilogram": "kg",
    "kilograms": "kg",
    "lb": "lb",
    "lbs": "lb",
    "pound": "lb",
    "pounds": "lb",
}


class PackageState(StrEnum):
    """Where a package is in its life; the values are what the store, API and events carry."""

    RECEIVED = "received"
    ASSIGNED = "assigned"
    LAUNCHING = "launching"
    EN_ROUTE = "en_route"
    DELIVERED = "delivered"
    FAILED = "failed"
    VAN = "van"
    CANCELLED = "cancelled"


_S = PackageState
ALLOWED_TRANSITIONS: dict[PackageState, frozenset[PackageState]] = {
    _S.RECEIVED: frozenset({_S.ASSIGNED, _S.VAN, _S.CANCELLED}),
    # back to RECEIVED: unassigned by a re-plan before launch
    _S.ASSIGNED: frozenset({_S.LAUNCHING, _S.RECEIVED, _S.VAN, _S.CANCELLED}),
    # back to RECEIVED: the launch was aborted on the ground, the package is still at the station
    _S.LAUNCHING: frozenset({_S.EN_ROUTE, _S.FAILED, _S.RECEIVED}),
    _S.EN_ROUTE: frozenset({_S.DELIVERED, _S.FAILED}),
    _S.FAILED: frozenset({_S.RECEIVED, _S.VAN}),
    _S.DELIVERED: frozenset(),
    _S.VAN: frozenset(),
    _S.CANCELLED: frozenset(),
}
TERMINAL_STATES: frozenset[PackageState] = frozenset(s for s, nxt in ALLOWED_TRANSITIONS.items() if not nxt)


class InvalidTransition(ControllerError):
    """A state change that the package's life does not allow (e.g. delivered -> assigned)."""

    def __init__(self, package_id: str, from_state: PackageState, to_state: PackageState) -> None:
        self.package_id = package_id
        self.from_state = from_state
        self.to_state = to_state
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[from_state])) or "nothing (terminal state)"
        super().__init__(
            f"package {package_id}: cannot go from {from_state} to {to_state}; "
            f"{from_state} may go to {allowed}"
        )


class StateMismatch(InvalidTransition):
    """An optimistic check failed: the package is no longer in the state the caller planned from."""

    def __init__(self, package_id: str, expected: PackageState, actual: PackageState, to_state: PackageState):
        self.expected = expected
        self.actual = actual
        self.package_id = package_id
        self.from_state = actual
        self.to_state = to_state
        ControllerError.__init__(
            self,
            f"package {package_id}: expected state {expected} but it is {actual}; not moved to {to_state}",
        )


def check_transition(package_id: str, from_state: PackageState, to_state: PackageState) -> None:
    """Raise `InvalidTransition` unless `from_state -> to_state` is a legal move."""
    if to_state not in ALLOWED_TRANSITIONS[from_state]:
        raise InvalidTransition(package_id, from_state, to_state)


def _err(kind: str, message: str) -> PydanticCustomError:
    # The message is final text, passed without a context so that braces in user input stay as they are.
    return PydanticCustomError(kind, message)


def _finite(field: str, value: float) -> float:
    if math.isnan(value) or math.isinf(value):
        raise _err("not_finite", f"{field} must be a finite number, got {value}")
    return value


class PackageIn(BaseModel):
    """What a client submits (API, CSV, CLI). After validation: kilograms, metres, UTC.

    `key` is the client's idempotency key: submitting the same key with the same content twice gives the
    same package; with different content it is a conflict (see `content_hash`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    key: str = Field(description="Client-chosen idempotency key, 1..128 printable characters.")
    weight: float = Field(description="Weight in `weight_unit`; at least 1 mg and at most 1000 kg.")
    weight_unit: Literal["kg", "lb"] = Field(default="kg", description="'kg' or 'lb' (1 lb = 0.45359237 kg).")
    dest_lat: float = Field(description="Destination latitude, WGS84 decimal degrees.")
    dest_lon: float = Field(description="Destination longitude, WGS84 decimal degrees.")
    length_m: float | None = Field(default=None, description="Parcel length in metres.")
    width_m: float | None = Field(default=None, description="Parcel width in metres.")
    height_m: float | None = Field(default=None, description="Parcel height in metres.")
    deadline: datetime | None = Field(default=None, description="Latest delivery time, with a time zone.")
    earliest: datetime | None = Field(default=None, description="Earliest delivery time; before `deadline`.")
    priority: int = Field(default=0, description="0 normal .. 9 most urgent.")
    recipient: str | None = Field(default=None, description="Who receives it (at most 200 characters).")
    note: str | None = Field(default=None, description="Free text for the courier (at most 2000 characters).")

    # --- single fields -----------------------------------------------------------------------------------

    @field_validator("key", mode="before")
    @classmethod
    def _key_is_text(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)  # CSV tools like to turn "000123" into 123; a number is still a usable key
        return v

    @field_validator("key")
    @classmethod
    def _key_shape(cls, v: str) -> str:
        if not 1 <= len(v) <= MAX_KEY_LEN:
            raise _err("key_length", f"key must be 1 to {MAX_KEY_LEN} characters, got {len(v)}")
        if not v.isprintable():
            raise _err("key_printable", "key must contain only printable characters (no tabs or line breaks)")
        return v

    @field_validator("weight", mode="before")
    @classmethod
    def _weight_not_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise _err("weight_type", f"weight must be a number, got {v}")
        return v

    @field_validator("weight")
    @classmethod
    def _weight_positive(cls, v: float) -> float:
        _finite("weight", v)
        if v <= 0:
            raise _err("weight_not_positive", f"weight must be greater than zero, got {v:g}")
        return v

    @field_validator("weight_unit", mode="before")
    @classmethod
    def _unit_known(cls, v: Any) -> Any:
        if isinstance(v, str):
            unit = _UNIT_ALIASES.get(v.strip().lower())
            if unit is None:
                raise _err("weight_unit", f"unknown weight unit {v.strip()!r}: use 'kg' or 'lb'")
            return unit
        return v

    @field_validator("dest_lat")
    @classmethod
    def _lat_range(cls, v: float) -> float:
        _finite("dest_lat", v)
        if not -90.0 <= v <= 90.0:
            raise _err("lat_range", f"dest_lat {v:g} is outside -90..90 degrees")
        return v

    @field_validator("dest_lon")
    @classmethod
    def _lon_range(cls, v: float) -> float:
        _finite("dest_lon", v)
        if not -180.0 <= v <= 180.0:
            raise _err("lon_range", f"dest_lon {v:g} is outside -180..180 degrees")
        return v

    @field_validator("length_m", "width_m", "height_m")
    @classmethod
    def _dimension(cls, v: float | None, info: Any) -> float | None:
        if v is None:
            return v
        _finite(info.field_name, v)
        if v <= 0:
            raise _err("dimension_not_positive", f"{info.field_name} must be greater than zero, got {v:g}")
        if v > MAX_DIMENSION_M:
            raise _err(
                "dimension_absurd",
                f"{info.field_name} {v:g} m is more than {MAX_DIMENSION_M:g} m; is it in centimetres?",
            )
        return v

    @field_validator("deadline", "earliest")
    @classmethod
    def _aware_utc(cls, v: datetime | None, info: Any) -> datetime | None:
        if v is None:
            return v
        if v.tzinfo is None or v.utcoffset() is None:
            raise _err(
                "naive_datetime",
                f"{info.field_name} {v.isoformat()} has no time zone; add one, e.g. "
                f"{v.replace(microsecond=0).isoformat()}Z or +01:00",
            )
        try:
            return v.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00+01:00: no such time in UTC
            raise _err(
                "datetime_range", f"{info.field_name} {v.isoformat()} is out of range once in UTC"
            ) from None

    @field_validator("priority", mode="before")
    @classmethod
    def _priority_not_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):
            raise _err("priority_type", f"priority must be a whole number 0..9, got {v}")
        return v

    @field_validator("priority")
    @classmethod
    def _priority_range(cls, v: int) -> int:
        if not 0 <= v <= 9:
            raise _err("priority_range", f"priority must be 0 (normal) to 9 (most urgent), got {v}")
        return v

    @field_validator("recipient", "note")
    @classmethod
    def _text(cls, v: str | None, info: Any) -> str | None:
        if v is None or v == "":
            return None
        limit = MAX_RECIPIENT_LEN if info.field_name == "recipient" else MAX_NOTE_LEN
        if len(v) > limit:
            raise _err("text_length", f"{info.field_name} is {len(v)} characters long; the limit is {limit}")
        return v

    # --- across fields -----------------------------------------------------------------------------------

    @model_validator(mode="wrap")
    @classmethod
    def _across_fields(cls, data: Any, handler: Any) -> PackageIn:
        """Checks that need two fields, reported under the field a person would fix.

        A wrap validator (not an "after" one) so that each error keeps its field in `loc`, and so that a
        latitude out of range can say it looks swapped with the longitude, which needs the raw input.
        """
        try:
            model = handler(data)
        except ValidationError as exc:
            raise _with_swap_hint(exc, data) from None
        errors: list[InitErrorDetails] = []
        weight_kg = model.weight_kg
        if weight_kg > MAX_WEIGHT_KG:
            errors.append(
                _detail(
                    "weight",
                    model.weight,
                    "weight_absurd",
                    f"weight {model.weight:g} {model.weight_unit} is more than {MAX_WEIGHT_KG:g} kg; "
                    "check the number and the unit",
                )
            )
        elif weight_kg < MIN_WEIGHT_KG:
            errors.append(
                _detail(
                    "weight",
                    model.weight,
                    "weight_too_small",
                    f"weight {model.weight:g} {model.weight_unit} is less than a milligram; "
                    "check the number and the unit",
                )
            )
        if model.dest_lat == 0.0 and model.dest_lon == 0.0:
            errors.append(
                _detail(
                    "dest_lat",
                    0.0,
                    "null_island",
                    "dest_lat and dest_lon are both 0 (null island): the destination is missing",
                )
            )
        if model.earliest is not None and model.deadline is not None and model.earliest >= model.deadline:
            errors.append(
                _detail(
                    "earliest",
                    model.earliest,
                    "window_empty",
                    f"earliest {model.earliest.isoformat()} must be before deadline "
                    f"{model.deadline.isoformat()}",
                )
            )
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return model

    # --- derived -----------------------------------------------------------------------------------------

    @property
    def weight_kg(self) -> float:
        """The weight in kilograms, whatever unit the client used."""
        return self.weight * KG_PER_LB if self.weight_unit == "lb" else self.weight

    def normalised(self) -> dict[str, Any]:
        """The content in SI units and UTC, rounded below any physical meaning, as JSON-ready values.

        Rounding makes "2 lb" and "0.90718474 kg" the same content, so a client that converts before
        re-sending is not told its retry conflicts.
        """
        return {
            "key": self.key,
            "weight_kg": round(self.weight_kg, 6),
            "dest_lat": round(self.dest_lat, 9),
            "dest_lon": round(self.dest_lon, 9),
            "length_m": _metres(self.length_m),
            "width_m": _metres(self.width_m),
            "height_m": _metres(self.height_m),
            "deadline": _utc_text(self.deadline),
            "earliest": _utc_text(self.earliest),
            "priority": self.priority,
            "recipient": self.recipient,
            "note": self.note,
        }

    def content_hash(self) -> str:
        """A stable SHA-256 of the normalised content: equal for a faithful retry, different otherwise.

        The hashed text is `json.dumps(self.normalised(), sort_keys=True, separators=(",", ":"))`, the form
        every stored hash was made from, written here field by field with the encoder's own rules (keys in
        sorted order, `encode_basestring_ascii` for strings, `float.__repr__` for numbers): it is computed
        for every package of every submission, and building the dict for the generic encoder took three
        quarters of intake's hashing time. A test holds the two forms equal.
        """
        # Validation made every number finite and `priority` a plain int, so `repr` is what json writes.
        text = (
            f'{{"deadline":{_json_value(_utc_text(self.deadline))},"dest_lat":{round(self.dest_lat, 9)!r},'
            f'"dest_lon":{round(self.dest_lon, 9)!r},"earliest":{_json_value(_utc_text(self.earliest))},'
            f'"height_m":{_metres_text(self.height_m)},"key":{_json_string(self.key)},'
            f'"length_m":{_metres_text(self.length_m)},"note":{_json_value(self.note)},'
            f'"priority":{int(self.priority)!r},"recipient":{_json_value(self.recipient)},'
            f'"weight_kg":{round(self.weight_kg, 6)!r},"width_m":{_metres_text(self.width_m)}}}'
        )
        return hashlib.sha256(text.encode()).hexdigest()


def late_reason(package: PackageIn, now: datetime) -> str | None:
    """Why `package` cannot be on time whatever carries it (its deadline is before `now`), else None.

    Not a check of `PackageIn` itself: validation knows no clock, and an operator may mean to record a late
    package on purpose (`--allow-late`, or `allow_late` in the API). Without this the planner sent such a
    package to a van "arriving 3638403 min after the deadline".
    """
    if package.deadline is None or package.deadline >= now:
        return None
    return (
        f"deadline {package.deadline.isoformat(timespec='seconds')} is already past "
        f"(now {now.astimezone(UTC).isoformat(timespec='seconds')})"
    )


def _utc_text(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat()


def _metres(v: float | None) -> float | None:
    return None if v is None else round(v, 6)


def _metres_text(v: float | None) -> str:
    return "null" if v is None else repr(round(v, 6))


def _json_value(value: Any) -> str:
    """`value` as `json.dumps` writes it (default settings), for the plain values of `normalised`."""
    if value is None:
        return "null"
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    if kind is int:
        return int.__repr__(value)
    return json.dumps(value)  # booleans, infinities, anything else: the encoder itself


_json_string = json.encoder.encode_basestring_ascii  # what json.dumps uses for strings, in C


def _detail(field: str, value: Any, kind: str, message: str) -> InitErrorDetails:
    return InitErrorDetails(type=_err(kind, message), loc=(field,), input=value)


def _with_swap_hint(exc: ValidationError, data: Any) -> ValidationError:
    """Add "looks swapped" to an out-of-range latitude when the longitude would be a fine latitude."""
    lon = data.get("dest_lon") if isinstance(data, dict) else None
    try:
        lon_f = float(lon) if lon is not None else None
    except (TypeError, ValueError):
        lon_f = None
    errors = exc.errors()
    if lon_f is None or not any(e["type"] == "lat_range" for e in errors) or not abs(lon_f) <= 90.0:
        return exc
    details: list[InitErrorDetails] = []
    for e in errors:
        if e["type"] == "lat_range":
            msg = (
                f"{e['msg']}; it looks like latitude and longitude are swapped "
                f"(dest_lon {lon_f:g} would be a valid latitude)"
            )
            details.append(InitErrorDetails(type=_err("lat_range", msg), loc=e["loc"], input=e["input"]))
        else:
            # Re-raise the others unchanged: their message text is kept by a custom error of the same type.
            details.append(
                InitErrorDetails(type=_err(e["type"], e["msg"]), loc=e["loc"], input=e.get("input"))
            )
    return ValidationError.from_exception_data(exc.title, details)


_PLAIN = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "string_type": "must be text",
    "datetime_parsing": "must be a date and time like 2026-11-22T14:00:00Z",
    "datetime_from_date_parsing": "must be a date and time like 2026-11-22T14:00:00Z",
    "datetime_type": "must be a date and time like 2026-11-22T14:00:00Z",
    "literal_error": "must be one of the listed values",
}


SHOWN_CHARS = 60  # of a bad value echoed in an error: enough to recognise it, never a whole bad body


def shown(value: object) -> str:
    """`value`'s repr, cut to `SHOWN_CHARS` (a 5 MB string or a deep object sent back whole would make the
    error as big as the attack, and put customers' data into logs)."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[: SHOWN_CHARS - 1]}… ({len(text):,} characters)"


def describe_validation_error(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, reason) pairs in plain words, for the CLI's and the API's error reports.

    The field is the dotted `loc` (e.g. "weight", or "packages.3.weight" inside a batch); the reason is our
    own message for the checks above, or a plain rewording of pydantic's for type errors.
    """
    out: list[tuple[str, str]] = []
    for e in exc.errors(include_url=False):
        field = ".".join(str(p) for p in e["loc"]) or "(input)"
        plain = _PLAIN.get(e["type"])
        if plain is None:
            reason = e["msg"]
        elif e["type"] in ("missing", "extra_forbidden"):
            reason = f"{field} {plain}"
        else:
            reason = f"{field} {plain}, got {shown(e.get('input'))}"
            if e["type"] == "literal_error":
                reason = f"{field} {e['msg'][0].lower()}{e['msg'][1:]}, got {shown(e.get('input'))}"
        out.append((field, reason))
    return out


class Package(BaseModel):
    """A package as the store knows it: the submitted content in SI units plus its state and last decision."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    key: str
    weight_kg: float
    dest_lat: float
    dest_lon: float
    length_m: float | None = None
    width_m: float | None = None
    height_m: float | None = None
    deadline: datetime | None = None
    earliest: datetime | None = None
    priority: int = 0
    recipient: str | None = None
    note: str | None = None
    state: PackageState
    created_at: datetime
    updated_at: datetime
    vehicle_id: str | None = None
    mode: Literal["drone", "robot", "van"] | None = None
    eta: datetime | None = None
    energy_margin_wh: float | None = None
    reasons: list[str] = Field(default_factory=list)  # reason codes of the last decision, e.g. ["overweight"]
    detail: dict[str, Any] = Field(default_factory=dict)  # the last decision's machine-readable detail
    tracking_token: str | None = None  # opens the package's public tracking page (`/track/{token}`)

    @property
    def terminal(self) -> bool:
        """True when nothing will happen to this package any more."""
        return self.state in TERMINAL_STATES


class PackageEvent(BaseModel):
    """One stored transition: when, from where to where, and why. Ids increase in commit order."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    package_id: str
    at: datetime
    from_state: PackageState | None
    to_state: PackageState
    reason: str
    detail: dict[str, Any] = Field(default_factory=dict)
    eta: datetime | None = None  # the package's ETA as of this event
