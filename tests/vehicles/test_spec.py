"""VehicleSpec: defaults match the published envelope, and bad specs fail loudly, naming the field."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from geofences.errors import LastmileError
from vehicles.energy import drone_hover_power_w
from vehicles.spec import (
    DRONE_DEFAULT,
    DRONE_REQUIRED_FIELDS,
    ROBOT_DEFAULT,
    VAN_DEFAULT,
    VehicleInputError,
    VehicleKind,
    VehicleSpec,
    default_spec,
)

LB = 0.45359237
MILE = 1609.344


def test_defaults_carry_the_published_envelope() -> None:
    assert DRONE_DEFAULT.kind is VehicleKind.DRONE
    assert DRONE_DEFAULT.max_payload_kg == pytest.approx(5 * LB, abs=1e-3)  # 5 lb
    assert DRONE_DEFAULT.max_range_m == pytest.approx(10 * MILE, abs=1.0)  # 10 mi
    assert DRONE_DEFAULT.reserve_fraction == 0.25
    assert ROBOT_DEFAULT.cruise_speed_mps * 3.6 == pytest.approx(6.0, abs=0.5)  # walking pace
    assert ROBOT_DEFAULT.max_range_m == pytest.approx(3000.0, rel=0.2)
    assert VAN_DEFAULT.battery_wh == 0.0
    assert VAN_DEFAULT.capacity_kg and VAN_DEFAULT.capacity_kg >= VAN_DEFAULT.max_payload_kg


def test_default_drone_is_in_the_simulator_neighbourhood() -> None:
    """The MAVLink simulator flies ~6 kg, ~700-900 W hover at 8 kg, ~600 Wh: predictions stay comparable."""
    assert DRONE_DEFAULT.empty_mass_kg == pytest.approx(6.0, rel=0.2)
    assert 700.0 <= float(drone_hover_power_w(DRONE_DEFAULT, 8.0)) <= 900.0
    assert DRONE_DEFAULT.battery_wh == pytest.approx(600.0, rel=0.2)
    assert DRONE_DEFAULT.reserve_wh == pytest.approx(DRONE_DEFAULT.battery_wh * 0.25)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("drone", DRONE_DEFAULT),
        ("Robot", ROBOT_DEFAULT),
        (VehicleKind.VAN, VAN_DEFAULT),
        ("VAN", VAN_DEFAULT),
    ],
)
def test_default_spec_by_kind(kind: VehicleKind | str, expected: VehicleSpec) -> None:
    assert default_spec(kind) is expected


def test_default_spec_unknown_kind_names_the_field() -> None:
    with pytest.raises(VehicleInputError, match=r"kind: unknown vehicle kind 'boat'") as info:
        default_spec("boat")
    assert info.value.field == "kind"
    assert isinstance(info.value, LastmileError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("field", DRONE_REQUIRED_FIELDS)
def test_drone_without_an_aerodynamic_field_is_rejected(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        DRONE_DEFAULT.replace(**{field: None})


def test_robot_without_wh_per_km_is_rejected() -> None:
    with pytest.raises(ValidationError, match="wh_per_km"):
        ROBOT_DEFAULT.replace(wh_per_km=None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_payload_kg", 0.0),
        ("max_payload_kg", -2.0),
        ("max_range_m", -1.0),
        ("cruise_speed_mps", 0.0),
        ("battery_wh", -5.0),
        ("battery_wh", math.inf),
        ("empty_mass_kg", math.nan),
        ("reserve_fraction", 1.0),
        ("reserve_fraction", -0.1),
        ("max_wind_mps", 0.0),
        ("propulsion_efficiency", 1.2),
        ("propulsion_efficiency", 0.0),
        ("lift_to_drag", -3.0),
        ("rotor_disk_area_m2", 0.0),
        ("delivery_hover_s", -1.0),
        ("model", ""),
    ],
)
def test_bad_numbers_are_rejected_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        DRONE_DEFAULT.replace(**{field: value})
    assert field in str(info.value)
    assert [err["loc"] for err in info.value.errors()] == [(field,)]


def test_unknown_field_is_rejected_by_name() -> None:
    """A typo in a config file must not silently fall back to a default."""
    data = DRONE_DEFAULT.model_dump() | {"max_payload": 3.0}
    with pytest.raises(ValidationError, match="max_payload"):
        VehicleSpec.model_validate(data)


def test_delivery_altitude_above_cruise_is_rejected() -> None:
    with pytest.raises(ValidationError, match="delivery_altitude_m"):
        DRONE_DEFAULT.replace(delivery_altitude_m=80.0, cruise_altitude_m=60.0)


def test_zero_battery_only_for_vans() -> None:
    with pytest.raises(ValidationError, match="battery_wh"):
        DRONE_DEFAULT.replace(battery_wh=0.0)
    with pytest.raises(ValidationError, match="battery_wh"):
        ROBOT_DEFAULT.replace(battery_wh=0.0)
    assert VAN_DEFAULT.replace(battery_wh=0.0).battery_wh == 0.0


def test_specs_are_frozen_and_replace_revalidates() -> None:
    with pytest.raises(ValidationError):
        DRONE_DEFAULT.max_payload_kg = 10.0  # type: ignore[misc]
    heavier = DRONE_DEFAULT.replace(max_payload_kg=3.0)
    assert heavier.max_payload_kg == 3.0 and DRONE_DEFAULT.max_payload_kg == 5 * 0.45359237
    with pytest.raises(ValidationError, match="max_payload_kg"):
        DRONE_DEFAULT.replace(max_payload_kg=-3.0)


def test_spec_round_trips_through_json() -> None:
    """Stations keep specs in config files and the store; JSON must give back an equal spec."""
    for spec in (DRONE_DEFAULT, ROBOT_DEFAULT, VAN_DEFAULT):
        assert VehicleSpec.model_validate_json(spec.model_dump_json()) == spec


def test_kind_given_as_string_is_coerced() -> None:
    data = ROBOT_DEFAULT.model_dump() | {"kind": "robot"}
    assert VehicleSpec.model_validate(data).kind is VehicleKind.ROBOT
    with pytest.raises(ValidationError, match="kind"):
        VehicleSpec.model_validate(data | {"kind": "hovercraft"})
