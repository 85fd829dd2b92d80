"""The package model: what intake accepts, what it refuses and how it says so, and the legal moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from controller.errors import ControllerError
from controller.packages import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATES,
    InvalidTransition,
    PackageIn,
    PackageState,
    check_transition,
    describe_validation_error,
)

GOOD: dict[str, Any] = {"key": "order-1", "weight": 1.2, "dest_lat": 37.7749, "dest_lon": -122.4194}


def problems(**changes: Any) -> list[tuple[str, str]]:
    """The (field, reason) pairs for GOOD with `changes`; fails the test if it validates."""
    data = {**GOOD, **changes}
    data = {k: v for k, v in data.items() if v is not ...}
    with pytest.raises(ValidationError) as info:
        PackageIn(**data)
    return describe_validation_error(info.value)


def only_problem(**changes: Any) -> tuple[str, str]:
    found = problems(**changes)
    assert len(found) == 1, found
    return found[0]


# --- accepted input, normalised ---------------------------------------------------------------------------


def test_pounds_become_kilograms_exactly() -> None:
    pkg = PackageIn(**{**GOOD, "weight": 5, "weight_unit": "lb"})
    assert pkg.weight_kg == pytest.approx(2.26796185, abs=1e-12)
    assert PackageIn(**GOOD).weight_kg == 1.2


@pytest.mark.parametrize("spelling", ["LB", "lbs", " Pounds "])
def test_unit_spellings_people_use_are_understood(spelling: str) -> None:
    assert PackageIn(**{**GOOD, "weight_unit": spelling}).weight_unit == "lb"


def test_times_are_converted_to_utc() -> None:
    pkg = PackageIn(**GOOD, deadline="2026-11-22T15:00:00+01:00", earliest="2026-11-22T12:00:00Z")
    assert pkg.deadline == datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
    assert pkg.deadline.utcoffset() == timedelta(0)
    assert pkg.earliest == datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_a_time_that_does_not_exist_in_utc_is_refused_naming_the_field() -> None:
    field, reason = only_problem(deadline="0001-01-01T00:00:00+01:00")  # an OverflowError before
    assert field == "deadline" and "out of range" in reason, (field, reason)


def test_numeric_key_from_a_spreadsheet_is_kept_as_text() -> None:
    assert PackageIn(**{**GOOD, "key": 123}).key == "123"


def test_content_hash_is_equal_for_a_faithful_retry_in_other_units() -> None:
    in_lb = PackageIn(**{**GOOD, "weight": 2, "weight_unit": "lb"})
    in_kg = PackageIn(**{**GOOD, "weight": 2 * 0.45359237})
    assert in_lb.content_hash() == in_kg.content_hash()
    cet = timezone(timedelta(hours=1))
    a = PackageIn(**GOOD, deadline=datetime(2026, 11, 22, 15, tzinfo=cet))
    b = PackageIn(**GOOD, deadline=datetime(2026, 11, 22, 14, tzinfo=UTC))
    assert a.content_hash() == b.content_hash()


@pytest.mark.parametrize(
    "change",
    [{"weight": 1.3}, {"dest_lat": 37.775}, {"priority": 1}, {"note": "ring twice"}, {"height_m": 0.2}],
)
def test_content_hash_changes_with_any_content(change: dict[str, Any]) -> None:
    assert PackageIn(**GOOD).content_hash() != PackageIn(**{**GOOD, **change}).content_hash()


_PACKAGES = st.builds(
    dict,
    key=st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S"]), min_size=1, max_size=40),
    weight=st.floats(0.001, 40, allow_nan=False),
    weight_unit=st.sampled_from(["kg", "lb"]),
    dest_lat=st.floats(-89.9, 89.9).filter(bool),
    dest_lon=st.floats(-179.9, 179.9).filter(bool),
    length_m=st.none() | st.floats(0.01, 2),
    height_m=st.none() | st.floats(1e-7, 2),
    deadline=st.none() | st.datetimes(timezones=st.just(UTC), min_value=datetime(2027, 1, 1)),
    priority=st.integers(0, 9),
    recipient=st.none() | st.text(st.characters(codec="utf-8", categories=["L", "N", "Zs"]), max_size=30),
    note=st.none() | st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "S"]), max_size=30),
)


@given(_PACKAGES)
def test_content_hash_is_the_hash_of_the_stored_json_form(data: dict[str, Any]) -> None:
    """Hashes stored by earlier releases were made with json.dumps; a retry of such a package must match."""
    import hashlib
    import json

    pkg = PackageIn(**data)
    text = json.dumps(pkg.normalised(), sort_keys=True, separators=(",", ":"))
    assert pkg.content_hash() == hashlib.sha256(text.encode()).hexdigest()


# --- refused input: the message names the field and the reason ----------------------------------------------


@pytest.mark.parametrize(
    ("weight", "words"),
    [
        (float("nan"), "finite"),
        ("nan", "finite"),
        (float("inf"), "finite"),
        ("-inf", "finite"),
        (-1.0, "greater than zero"),
        (0, "greater than zero"),
        (1500, "more than 1000 kg"),
        (1e-320, "less than a milligram"),
        (5e-7, "less than a milligram"),
        ("heavy", "must be a number"),
        (True, "must be a number"),
    ],
)
def test_bad_weights_are_refused_naming_weight(weight: Any, words: str) -> None:
    field, reason = only_problem(weight=weight)
    assert field == "weight"
    assert words in reason
    assert "weight" in reason


def test_absurd_weight_accounts_for_the_unit() -> None:
    # 2000 lb is 907 kg: heavy but possible; 2300 lb (1043 kg) is not a parcel.
    assert PackageIn(**{**GOOD, "weight": 2000, "weight_unit": "lb"}).weight_kg < 1000
    field, reason = only_problem(weight=2300, weight_unit="lb")
    assert field == "weight"
    assert "2300 lb" in reason and "1000 kg" in reason


def test_unknown_unit_is_refused_naming_the_unit() -> None:
    field, reason = only_problem(weight_unit="stone")
    assert field == "weight_unit"
    assert "unknown weight unit 'stone'" in reason and "'kg' or 'lb'" in reason


def test_swapped_coordinates_get_a_hint() -> None:
    field, reason = only_problem(dest_lat=-122.4194, dest_lon=37.7749)
    assert field == "dest_lat"
    assert "outside -90..90" in reason and "swapped" in reason


def test_latitude_out_of_range_without_swap_gets_no_swap_hint() -> None:
    field, reason = only_problem(dest_lat=95.0, dest_lon=-122.4)
    assert field == "dest_lat"
    assert "outside -90..90" in reason and "swapped" not in reason


def test_longitude_out_of_range() -> None:
    field, reason = only_problem(dest_lon=181.0)
    assert field == "dest_lon" and "outside -180..180" in reason


def test_null_island_is_refused() -> None:
    field, reason = only_problem(dest_lat=0, dest_lon=0.0)
    assert field == "dest_lat"
    assert "null island" in reason and "dest_lon" in reason


@pytest.mark.parametrize("field", ["dest_lat", "dest_lon"])
def test_non_finite_coordinates(field: str) -> None:
    got_field, reason = only_problem(**{field: float("nan")})
    assert got_field == field and "finite" in reason


@pytest.mark.parametrize("field", ["deadline", "earliest"])
def test_naive_times_are_refused_naming_the_field(field: str) -> None:
    got_field, reason = only_problem(**{field: "2026-11-22T14:00:00"})
    assert got_field == field
    assert "no time zone" in reason


@pytest.mark.parametrize("earliest", ["2026-11-22T14:00:00Z", "2026-11-22T15:00:00Z"])
def test_empty_time_window_is_refused(earliest: str) -> None:
    field, reason = only_problem(earliest=earliest, deadline="2026-11-22T14:00:00Z")
    assert field == "earliest"
    assert "must be before deadline" in reason


@pytest.mark.parametrize(("priority", "field_words"), [(10, "0 (normal) to 9"), (-1, "0 (normal) to 9")])
def test_priority_range(priority: int, field_words: str) -> None:
    field, reason = only_problem(priority=priority)
    assert field == "priority" and field_words in reason


@pytest.mark.parametrize(
    ("key", "words"), [("", "1 to 128"), ("   ", "1 to 128"), ("x" * 129, "1 to 128"), ("a\nb", "printable")]
)
def test_bad_keys(key: str, words: str) -> None:
    field, reason = only_problem(key=key)
    assert field == "key" and words in reason


@pytest.mark.parametrize("dim", ["length_m", "width_m", "height_m"])
@pytest.mark.parametrize(
    ("value", "words"), [(0, "greater than zero"), (-0.1, "greater than zero"), (45, "centimetres")]
)
def test_bad_dimensions(dim: str, value: float, words: str) -> None:
    field, reason = only_problem(**{dim: value})
    assert field == dim and words in reason


def test_missing_and_unknown_fields_are_named() -> None:
    found = dict(problems(weight=..., wieght=1.0))
    assert found == {"weight": "weight is required", "wieght": "wieght is not a known field"}


def test_every_problem_is_reported_at_once() -> None:
    fields = {f for f, _ in problems(weight=-1, dest_lon=500, priority=42)}
    assert fields == {"weight", "dest_lon", "priority"}


def test_fields_are_located_inside_a_batch() -> None:
    class Batch(BaseModel):
        packages: list[PackageIn]

    with pytest.raises(ValidationError) as info:
        Batch(packages=[GOOD, {**GOOD, "key": "b", "weight": 5000}])
    [(field, reason)] = describe_validation_error(info.value)
    assert field == "packages.1.weight" and "more than 1000 kg" in reason


def test_braces_in_user_text_do_not_break_messages() -> None:
    field, reason = only_problem(weight_unit="{kg}")
    assert field == "weight_unit" and "'{kg}'" in reason


@given(
    weight=st.floats(allow_nan=True, allow_infinity=True),
    unit=st.sampled_from(["kg", "lb"]),
    lat=st.floats(allow_nan=True, allow_infinity=True),
    lon=st.floats(allow_nan=True, allow_infinity=True),
    priority=st.integers(-5, 15),
)
def test_any_numbers_are_either_sane_or_refused_by_name(
    weight: float, unit: str, lat: float, lon: float, priority: int
) -> None:
    data = {
        "key": "h",
        "weight": weight,
        "weight_unit": unit,
        "dest_lat": lat,
        "dest_lon": lon,
        "priority": priority,
    }
    try:
        p = PackageIn(**data)
    except ValidationError as exc:
        found = describe_validation_error(exc)
        assert found
        for field, reason in found:
            assert field in {"weight", "dest_lat", "dest_lon", "priority"}
            assert field in reason
        return
    assert 0 < p.weight_kg <= 1000
    assert -90 <= p.dest_lat <= 90 and -180 <= p.dest_lon <= 180 and (p.dest_lat, p.dest_lon) != (0, 0)
    assert 0 <= p.priority <= 9
    assert p.content_hash() == PackageIn(**data).content_hash()


# --- the life of a package ----------------------------------------------------------------------------------


def test_terminal_states_are_exactly_those_without_exits() -> None:
    assert {PackageState.DELIVERED, PackageState.VAN, PackageState.CANCELLED} == TERMINAL_STATES
    assert set(ALLOWED_TRANSITIONS) == set(PackageState)


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ("received", "assigned"),
        ("assigned", "received"),
        ("assigned", "launching"),
        ("launching", "en_route"),
        ("launching", "received"),
        ("en_route", "delivered"),
        ("en_route", "failed"),
        ("failed", "received"),
        ("failed", "van"),
        ("received", "cancelled"),
    ],
)
def test_allowed_moves(src: str, dst: str) -> None:
    check_transition("p1", PackageState(src), PackageState(dst))


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ("received", "en_route"),
        ("received", "delivered"),
        ("en_route", "received"),  # a flying package cannot be silently put back on the shelf
        ("en_route", "cancelled"),
        ("delivered", "assigned"),
        ("van", "received"),
        ("cancelled", "received"),
        ("assigned", "assigned"),
    ],
)
def test_refused_moves_say_what_is_allowed(src: str, dst: str) -> None:
    with pytest.raises(InvalidTransition) as info:
        check_transition("p1", PackageState(src), PackageState(dst))
    assert isinstance(info.value, ControllerError)
    assert (info.value.from_state, info.value.to_state) == (src, dst)
    assert f"cannot go from {src} to {dst}" in str(info.value)
