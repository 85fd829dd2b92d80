"""Checks on what callers hand the store, so a bad call is refused with a clear reason before any write."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from controller.errors import InputError
from controller.packages import PackageIn, PackageState, describe_validation_error

__all__ = ["TRANSITION_FIELDS", "as_package_in", "check_fields", "json_dict", "state", "states", "text"]

# What `Store.transition(..., **fields)` may set besides the state (and `detail`, a named argument).
TRANSITION_FIELDS = frozenset({"vehicle_id", "mode", "eta", "energy_margin_wh", "reasons"})
MODES = frozenset({"drone", "robot", "van"})


def as_package_in(item: Any, row: int | None) -> PackageIn:
    """A `PackageIn`, validating a mapping on the way; the first problem becomes an `InputError`."""
    if isinstance(item, PackageIn):
        return item
    if isinstance(item, Mapping):
        try:
            return PackageIn.model_validate(dict(item))
        except ValidationError as exc:
            field, reason = describe_validation_error(exc)[0]
            raise InputError(reason, field=field, row=row) from exc
    raise InputError(f"expected a package, got {type(item).__name__}", row=row)


def text(field: str, value: Any, *, limit: int, allow_none: bool = False) -> str | None:
    """A non-empty string of at most `limit` characters."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError("must be a non-empty string", field=field)
    if len(value) > limit:
        raise InputError(f"must be at most {limit} characters, got {len(value)}", field=field)
    return value


def json_dict(field: str, value: Any) -> dict[str, Any]:
    """A dict that survives a JSON round trip unchanged in meaning (what the JSON columns can hold)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"must be a mapping, got {type(value).__name__}", field=field)
    if not _plain_json(value, 0):
        problem = _not_json(value, field, depth=0)
        if problem is not None:
            raise InputError(f"must be JSON-serialisable ({problem})", field=field)
    return dict(value)


_MAX_JSON_DEPTH = 64


_PLAIN_SCALARS = frozenset({str, int, bool, type(None)})


def _plain_json(value: Any, depth: int) -> bool:
    """True for the common case, nothing but dicts with str keys, lists and plain scalars, found by exact
    type; False does not mean the value is bad, only that `_not_json` must look (and say where)."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return True
    if kind is float:
        return math.isfinite(value)
    if depth >= _MAX_JSON_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not _plain_json(item, depth + 1):
                return False
        return True
    if kind is list:
        return all(_plain_json(item, depth + 1) for item in value)
    return False


def _not_json(value: Any, path: str, depth: int) -> str | None:
    """What in `value` plain JSON cannot hold (what `json.dumps(allow_nan=False)` refuses, and keys that
    are not strings, which JSON would hand back as strings), or None.

    A walk over the value instead of encoding it and throwing the text away: every package decision
    passes here with its hints, and the encode was the largest part of checking a move.
    """
    if value is None or isinstance(value, str | int):  # bool is an int
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value}, not a finite number"
    if depth >= _MAX_JSON_DEPTH:
        return f"it is nested more than {_MAX_JSON_DEPTH} deep (a circular reference?)"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):  # JSON would turn it into a string: not the same detail back
                return f"{path} has a key of type {type(key).__name__} ({key!r}); keys must be strings"
            problem = _not_json(item, f"{path}.{key}", depth + 1)
            if problem is not None:
                return problem
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            problem = _not_json(item, f"{path}[{i}]", depth + 1)
            if problem is not None:
                return problem
        return None
    return f"{path} is a {type(value).__name__}"


def state(field: str, value: Any) -> PackageState:
    """A `PackageState` from itself or its string value."""
    if type(value) is PackageState:  # what the controller passes: no lookup through the enum's call
        return value
    try:
        return PackageState(value)
    except ValueError:
        known = ", ".join(s.value for s in PackageState)
        raise InputError(f"unknown state {value!r}; known states: {known}", field=field) from None


def states(value: PackageState | str | Sequence[PackageState | str] | None) -> list[PackageState] | None:
    """The `state=` filter of `Store.list`: one state, several, or None for all."""
    if value is None:
        return None
    if isinstance(value, str):
        return [state("state", value)]
    return [state("state", v) for v in value]


def check_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The extra fields of a transition, each checked for type and range."""
    if not fields.keys() <= TRANSITION_FIELDS:
        unknown = sorted(set(fields) - TRANSITION_FIELDS)
        allowed = ", ".join(sorted(TRANSITION_FIELDS | {"detail"}))
        raise InputError(f"a transition cannot set this field; it may set {allowed}", field=unknown[0])
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            if name == "reasons":
                raise InputError("must be a list of reason codes (use [] for none)", field=name)
            out[name] = None
        elif name == "vehicle_id":
            out[name] = text(name, value, limit=64)
        elif name == "mode":
            if value not in MODES:
                raise InputError(f"must be one of drone, robot, van; got {value!r}", field=name)
            out[name] = value
        elif name == "eta":
            if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
                raise InputError("must be a timezone-aware datetime", field=name)
            out[name] = value
        elif name == "energy_margin_wh":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InputError(f"must be a finite number of watt-hours, got {value!r}", field=name)
            out[name] = float(value)
        elif name == "reasons":
            if isinstance(value, str) or not all(isinstance(r, str) and r for r in value):
                raise InputError("must be a list of non-empty reason codes", field=name)
            out[name] = list(value)
    return out
