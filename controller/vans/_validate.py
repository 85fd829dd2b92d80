"""Input checks for van planning, and stops/vans from JSON-like mappings with explicit units.

Every check raises `InputError` naming the field (and the package or van as `row`), before anything is
solved: a dispatcher sending 30 lb as 30 kg, or a window that closes before it opens, learns why at once
rather than getting a plan built on a misunderstanding.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from controller.errors import InputError
from controller.vans._model import Van, VanStop

KG_PER_UNIT = {"kg": 1.0, "g": 0.001, "lb": 0.45359237}
M3_PER_UNIT = {"m3": 1.0, "l": 0.001, "cm3": 1e-6, "ft3": 0.028316846592}
MPS_PER_UNIT = {"mps": 1.0, "m/s": 1.0, "kph": 1 / 3.6, "km/h": 1 / 3.6, "mph": 0.44704}


def check_depot(depot: tuple[float, float]) -> None:
    """The station as (lat, lon) in degrees."""
    if not isinstance(depot, Sequence) or len(depot) != 2:
        raise InputError("expected (lat, lon) in degrees", field="depot")
    _lat_lon(depot[0], depot[1], row=None, field_prefix="depot.")


def check_start(start: datetime, time_limit_s: float, circuity: float) -> None:
    """The planning start must be an absolute time; the solver needs a positive time budget; roads are
    never shorter than the straight line."""
    _aware(start, "start", None)
    if not _finite(time_limit_s) or time_limit_s <= 0:
        raise InputError("must be a positive number of seconds", field="time_limit_s")
    if not _finite(circuity) or circuity < 1:
        raise InputError("must be a number >= 1 (road over straight-line distance)", field="circuity")


def check_stops(stops: Sequence[VanStop]) -> None:
    """Unique ids, coordinates on Earth, non-negative weights and volumes, windows that open first."""
    seen: set[str] = set()
    for k, s in enumerate(stops):
        if not isinstance(s, VanStop):
            raise InputError(f"expected a VanStop, got {type(s).__name__}", field="stops", row=k)
        row: int | str = s.package_id if isinstance(s.package_id, str) and s.package_id else k
        if not isinstance(s.package_id, str) or not s.package_id.strip():
            raise InputError("must be a non-empty string", field="package_id", row=k)
        if s.package_id in seen:
            raise InputError("appears twice", field="package_id", row=row)
        seen.add(s.package_id)
        _lat_lon(s.lat, s.lon, row=row)
        _non_negative(s.weight_kg, "weight_kg", row)
        if s.volume_m3 is not None:
            _non_negative(s.volume_m3, "volume_m3", row)
        _non_negative(s.service_s, "service_s", row)
        if s.earliest is not None:
            _aware(s.earliest, "earliest", row)
        if s.deadline is not None:
            _aware(s.deadline, "deadline", row)
        if s.earliest is not None and s.deadline is not None and s.deadline < s.earliest:
            raise InputError(
                f"window ends ({s.deadline.isoformat()}) before it starts ({s.earliest.isoformat()})",
                field="deadline",
                row=row,
            )


def check_vans(vans: Sequence[Van]) -> None:
    """At least one van; unique ids; positive capacities and speed; shifts that end after they start."""
    if len(vans) == 0:
        raise InputError("at least one van is needed to plan van routes", field="vans")
    seen: set[str] = set()
    for k, v in enumerate(vans):
        if not isinstance(v, Van):
            raise InputError(f"expected a Van, got {type(v).__name__}", field="vans", row=k)
        if not isinstance(v.id, str) or not v.id.strip():
            raise InputError("must be a non-empty string", field="id", row=k)
        if v.id in seen:
            raise InputError("appears twice", field="id", row=v.id)
        seen.add(v.id)
        _positive(v.capacity_kg, "capacity_kg", v.id)
        if v.capacity_m3 is not None:
            _positive(v.capacity_m3, "capacity_m3", v.id)
        _positive(v.speed_mps, "speed_mps", v.id)
        if v.shift_start is not None:
            _aware(v.shift_start, "shift_start", v.id)
        if v.shift_end is not None:
            _aware(v.shift_end, "shift_end", v.id)
        if v.shift_start is not None and v.shift_end is not None and v.shift_end <= v.shift_start:
            raise InputError("shift ends before it starts", field="shift_end", row=v.id)


def check_distances(distances_m: Any, n_stops: int) -> np.ndarray:
    """A caller's road distances (a routing engine's matrix): (n+1) x (n+1) metres, depot first, finite and
    not negative. Returned as float64; the row named is the first bad one (0 = the depot)."""
    try:
        arr = np.asarray(distances_m, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"expected a matrix of metres: {exc}", field="distances_m") from None
    want = (n_stops + 1, n_stops + 1)
    if arr.shape != want:
        raise InputError(
            f"expected {want[0]} x {want[1]} (depot, then each stop), got shape {arr.shape}",
            field="distances_m",
        )
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1) | (arr < 0).any(axis=1))
    if bad.size:
        raise InputError("must be finite metres, not negative", field="distances_m", row=int(bad[0]))
    return arr


def stop_from_dict(data: Mapping[str, Any], row: int | str | None = None) -> VanStop:
    """A stop from JSON: `weight_kg` | `weight_lb` | `weight` + `weight_unit` (kg, g, lb); `volume_m3` |
    `volume` + `volume_unit` (m3, l, cm3, ft3); `earliest`/`deadline` as ISO 8601 with a time zone."""
    row = row if row is not None else data.get("package_id")
    pid = data.get("package_id")
    if not isinstance(pid, str) or not pid:
        raise InputError("required, a non-empty string", field="package_id", row=row)
    weight = _quantity(data, "weight", "kg", KG_PER_UNIT, row, required=True)
    assert weight is not None
    stop = VanStop(
        package_id=pid,
        lat=_number(data, "lat", row),
        lon=_number(data, "lon", row),
        weight_kg=weight,
        volume_m3=_quantity(data, "volume", "m3", M3_PER_UNIT, row, required=False),
        earliest=_when(data.get("earliest"), "earliest", row),
        deadline=_when(data.get("deadline"), "deadline", row),
        service_s=_number(data, "service_s", row) if "service_s" in data else 120.0,
    )
    check_stops([stop])
    return stop


def van_from_dict(data: Mapping[str, Any], row: int | str | None = None) -> Van:
    """A van from JSON: `capacity_kg` | `capacity_lb` | `capacity` + `capacity_unit`; `capacity_m3` |
    `capacity_volume` + `volume_unit`; `speed_mps` | `speed_kph` | `speed_mph`; shifts as ISO 8601."""
    row = row if row is not None else data.get("id")
    vid = data.get("id")
    if not isinstance(vid, str) or not vid:
        raise InputError("required, a non-empty string", field="id", row=row)
    capacity = _quantity(data, "capacity", "kg", KG_PER_UNIT, row, required=True)
    assert capacity is not None
    volume = None
    if "capacity_m3" in data:
        volume = _number(data, "capacity_m3", row)
    elif "capacity_volume" in data:
        unit = _unit(data.get("volume_unit", "m3"), M3_PER_UNIT, "volume_unit", row)
        volume = _number(data, "capacity_volume", row) * M3_PER_UNIT[unit]
    speed = 11.0
    for key, unit in (("speed_mps", "mps"), ("speed_kph", "kph"), ("speed_mph", "mph")):
        if key in data:
            speed = _number(data, key, row) * MPS_PER_UNIT[unit]
    van = Van(
        id=vid,
        capacity_kg=capacity,
        capacity_m3=volume,
        speed_mps=speed,
        shift_start=_when(data.get("shift_start"), "shift_start", row),
        shift_end=_when(data.get("shift_end"), "shift_end", row),
    )
    check_vans([van])
    return van


# --- helpers ------------------------------------------------------------------------------------------


def _finite(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _non_negative(x: object, name: str, row: int | str | None) -> None:
    if not _finite(x):
        raise InputError(f"must be a finite number, got {x!r}", field=name, row=row)
    if x < 0:  # type: ignore[operator]
        raise InputError(f"must not be negative, got {x}", field=name, row=row)


def _positive(x: object, name: str, row: int | str | None) -> None:
    if not _finite(x) or x <= 0:  # type: ignore[operator]
        raise InputError(f"must be a positive number, got {x!r}", field=name, row=row)


def _lat_lon(lat: object, lon: object, row: int | str | None, field_prefix: str = "") -> None:
    if not _finite(lat) or not -90 <= lat <= 90:  # type: ignore[operator]
        raise InputError(f"must be degrees in -90..90, got {lat!r}", field=f"{field_prefix}lat", row=row)
    if not _finite(lon) or not -180 <= lon <= 180:  # type: ignore[operator]
        raise InputError(f"must be degrees in -180..180, got {lon!r}", field=f"{field_prefix}lon", row=row)


def _aware(t: object, name: str, row: int | str | None) -> None:
    if not isinstance(t, datetime):
        raise InputError(f"expected a datetime, got {type(t).__name__}", field=name, row=row)
    if t.tzinfo is None or t.utcoffset() is None:
        raise InputError("needs a time zone (e.g. 2026-12-01T16:00:00Z)", field=name, row=row)


def _number(data: Mapping[str, Any], key: str, row: int | str | None) -> float:
    if key not in data:
        raise InputError("required", field=key, row=row)
    value = data[key]
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InputError(f"expected a number, got {value!r}", field=key, row=row) from None
    if not _finite(value):
        raise InputError(f"expected a finite number, got {value!r}", field=key, row=row)
    return float(value)


def _unit(unit: object, table: Mapping[str, float], name: str, row: int | str | None) -> str:
    key = str(unit).strip().lower().replace("³", "3")
    if key not in table:
        raise InputError(f"unknown unit {unit!r}; use one of {', '.join(table)}", field=name, row=row)
    return key


def _quantity(
    data: Mapping[str, Any],
    name: str,
    base: str,
    table: Mapping[str, float],
    row: int | str | None,
    *,
    required: bool,
) -> float | None:
    """`<name>_<unit>` for a unit in `table`, or `<name>` with `<name>_unit`; exactly one of them."""
    given = [u for u in table if f"{name}_{u}" in data]
    if name in data:
        given.append("")
    if len(given) > 1:
        raise InputError(f"give {name} once (got {len(given)} ways)", field=name, row=row)
    if not given:
        if required:
            raise InputError(f"required ({name}_{base}, or {name} with {name}_unit)", field=name, row=row)
        return None
    unit = given[0]
    if unit:
        return _number(data, f"{name}_{unit}", row) * table[unit]
    unit = _unit(data.get(f"{name}_unit", base), table, f"{name}_unit", row)
    return _number(data, name, row) * table[unit]


def _when(value: object, name: str, row: int | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"expected ISO 8601, got {value!r}", field=name, row=row) from None
    _aware(value, name, row)
    return value  # type: ignore[return-value]
