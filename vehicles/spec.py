"""Vehicle specifications: what each class of vehicle can carry, how far, how fast, on how much energy.

A `VehicleSpec` is data, not behaviour: the energy model (`vehicles.energy`) and the assignment engine read
it. Specs are frozen and validated once, so everything downstream can trust the numbers (positive, finite,
fractions in range, a drone carries every aerodynamic figure the energy model needs). Units are SI.

The defaults are drawn from published figures (sources next to each number and in `docs/energy.md`); they
describe a *class* of vehicle, not a certified airframe, and a station overrides them from its config.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from geofences.errors import LastmileError

KG_PER_LB = 0.45359237  # exact, by the international yard and pound agreement (1959)

__all__ = [
    "DRONE_DEFAULT",
    "DRONE_REQUIRED_FIELDS",
    "ROBOT_DEFAULT",
    "ROBOT_REQUIRED_FIELDS",
    "VAN_DEFAULT",
    "VehicleInputError",
    "VehicleKind",
    "VehicleSpec",
    "default_spec",
]


class VehicleInputError(LastmileError, ValueError):
    """A caller passed a value the vehicle models cannot use; names the field and the reason.

    Also a `ValueError`, so generic callers that only know the standard library still catch it.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class VehicleKind(StrEnum):
    """The three ways a package can travel."""

    DRONE = "drone"
    ROBOT = "robot"
    VAN = "van"


Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
OptPositive = Annotated[float | None, Field(gt=0)]
OptNonNegative = Annotated[float | None, Field(ge=0)]

# What the energy model needs for each kind; a spec without one of these cannot be energy-checked.
DRONE_REQUIRED_FIELDS: tuple[str, ...] = (
    "lift_to_drag",
    "propulsion_efficiency",
    "avionics_power_w",
    "rotor_disk_area_m2",
    "climb_rate_mps",
    "descent_rate_mps",
    "cruise_altitude_m",
    "delivery_altitude_m",
    "delivery_hover_s",
)
ROBOT_REQUIRED_FIELDS: tuple[str, ...] = ("wh_per_km",)


class VehicleSpec(BaseModel):
    """Performance envelope of one class of vehicle (SI units: m, kg, s, W, Wh).

    Frozen and validated: bad numbers fail at load time with a pydantic `ValidationError` naming the
    field, never later inside a vectorized energy computation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: VehicleKind
    model: Annotated[str, Field(min_length=1)]
    max_payload_kg: Positive
    """The payload limit: packages up to it are accepted, or only those under it (`max_payload_inclusive`)."""
    max_payload_inclusive: bool = True
    """False: the limit itself is refused (`payload < max_payload_kg`), as "under 5 lb" for drones."""
    max_range_m: Positive
    """One-way radius from the station (straight-line or path length, the caller decides)."""
    cruise_speed_mps: Positive
    """Airspeed for drones; ground speed for robots and vans."""
    battery_wh: NonNegative
    """Usable pack energy at 100 % charge. Vans: 0, they are not energy-checked."""
    reserve_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.25
    """Fraction of `battery_wh` that must still be in the pack at landing / return."""
    max_wind_mps: Positive
    """Steady wind above which the vehicle does not operate."""
    empty_mass_kg: Positive
    """Mass without payload (airframe and battery)."""

    # drone aerodynamics (None for robots and vans)
    lift_to_drag: OptPositive = None
    """Effective L/D in cruise (D'Andrea 2014 uses 3 for small multicopters)."""
    propulsion_efficiency: Annotated[float | None, Field(gt=0, le=1)] = None
    """Battery-to-air power efficiency, eta (motors, ESCs, propellers)."""
    avionics_power_w: OptNonNegative = None
    """Constant electrical load besides propulsion (autopilot, radios, sensors, payload release)."""
    rotor_disk_area_m2: OptPositive = None
    """Total rotor disk area, for momentum-theory hover and climb power."""
    climb_rate_mps: OptPositive = None
    descent_rate_mps: OptPositive = None
    cruise_altitude_m: OptPositive = None
    """Cruise height above the station (AGL)."""
    delivery_altitude_m: OptNonNegative = None
    """Height the package is released from; the drone descends to it and hovers there."""
    delivery_hover_s: OptNonNegative = None
    """Time spent hovering at the drop (approach settle, release, confirmation)."""
    holding_s: OptNonNegative = None
    """Wait at the station's holding point before landing that the trip must have energy for (the
    station's airspace reserves it: `[airspace] max_hold_s`); counted in energy and return time."""

    # robot
    wh_per_km: OptPositive = None
    """Energy per km driven, empty, on level pavement at cruise speed."""

    # van
    capacity_kg: OptPositive = None
    capacity_m3: OptPositive = None

    @model_validator(mode="after")
    def _kind_has_its_fields(self) -> Self:
        """Check the cross-field rules; each message names the field so a config error is easy to fix."""
        if self.kind is VehicleKind.DRONE:
            _require(self, DRONE_REQUIRED_FIELDS)
            assert self.delivery_altitude_m is not None and self.cruise_altitude_m is not None
            if self.delivery_altitude_m > self.cruise_altitude_m:
                raise ValueError(
                    f"delivery_altitude_m ({self.delivery_altitude_m} m) must not exceed "
                    f"cruise_altitude_m ({self.cruise_altitude_m} m)"
                )
        elif self.kind is VehicleKind.ROBOT:
            _require(self, ROBOT_REQUIRED_FIELDS)
        if self.kind is not VehicleKind.VAN and self.battery_wh <= 0:
            raise ValueError(f"battery_wh must be > 0 for a {self.kind.value} (only vans may have 0)")
        return self

    @property
    def reserve_wh(self) -> float:
        """Energy that must remain in the pack at the end of a trip."""
        return self.battery_wh * self.reserve_fraction

    def overweight(self, weight_kg: Any) -> Any:
        """Whether a payload (a number or an array of them) is over this vehicle's limit."""
        if self.max_payload_inclusive:
            return weight_kg > self.max_payload_kg
        return weight_kg >= self.max_payload_kg

    def replace(self, **changes: Any) -> VehicleSpec:
        """A copy with `changes` applied and validated again (pydantic's `model_copy` skips validation)."""
        return type(self).model_validate({**self.model_dump(), **changes})


def _require(spec: VehicleSpec, fields: tuple[str, ...]) -> None:
    missing = [name for name in fields if getattr(spec, name) is None]
    if missing:
        raise ValueError(
            f"a {spec.kind.value} spec needs {', '.join(missing)} (missing: energy model cannot run)"
        )


# --- Defaults -------------------------------------------------------------------------------------------
# Drone: an Amazon Prime Air class delivery multicopter. Payload 5 lb and ~10 mi radius are Amazon's public
# MK27/MK30 figures; 22 m/s (~50 mph) is the MK27's published top cruise. Mass, battery and rotor area are
# chosen to match the project's MAVLink simulator (6 kg empty, ~800 W hover at 8 kg, ~600 Wh) and so that a
# full-radius trip (16.09 km out with 2.268 kg, back empty, calm air) needs ~349 Wh of the 450 Wh above the
# 25 % reserve (see docs/energy.md). Against the simulator's own power model these figures predict 10-27 %
# more energy than it drains, across payloads 0-2.268 kg and radii 2-16 km: conservative, not blind.
DRONE_DEFAULT = VehicleSpec(
    kind=VehicleKind.DRONE,
    model="generic-delivery-hexacopter",
    max_payload_kg=5 * KG_PER_LB,  # under 5 lb (Prime Air MK27/MK30): 5.0 lb itself goes by van
    max_payload_inclusive=False,
    max_range_m=16093.4,  # 10 mi (Prime Air public radius)
    cruise_speed_mps=22.0,  # ~50 mph (Prime Air MK27)
    battery_wh=600.0,  # usable; matches sitl copter
    reserve_fraction=0.25,
    max_wind_mps=12.0,  # typical small-multirotor limit (~23 kn)
    empty_mass_kg=6.0,  # matches sitl copter
    lift_to_drag=3.0,  # D'Andrea 2014, "Can drones deliver?"
    propulsion_efficiency=0.7,  # D'Andrea uses 0.5 (conservative); 0.6-0.75 for current small UAS
    avionics_power_w=50.0,  # autopilot, companion computer, LTE/radio, release servo, rotor profile losses
    rotor_disk_area_m2=0.60,  # 4 x 17.2 in (0.437 m) rotors -> ~870 W hover at 8 kg
    climb_rate_mps=2.5,  # ArduPilot WPNAV_SPEED_UP default 250 cm/s
    descent_rate_mps=1.5,  # ArduPilot WPNAV_SPEED_DN default 150 cm/s
    cruise_altitude_m=60.0,  # below the 400 ft (122 m) Part 107 ceiling, above trees and roofs
    delivery_altitude_m=4.0,  # MK27-2 releases from ~12-13 ft above the delivery spot
    delivery_hover_s=15.0,
)

# Robot: a sidewalk delivery robot (Amazon Scout / Starship class). Walking pace 6 km/h; ~3 km radius;
# ~25 kg empty, payload up to ~9 kg (Starship: 20 lb). Wh/km is an engineering estimate: ~60 W of
# computers and sensors at 1.7 m/s (~10 Wh/km) plus rolling and climbing losses (~5 Wh/km) -> 15 Wh/km.
ROBOT_DEFAULT = VehicleSpec(
    kind=VehicleKind.ROBOT,
    model="generic-sidewalk-robot",
    max_payload_kg=9.0,
    max_range_m=3000.0,
    cruise_speed_mps=1.7,  # 6 km/h walking pace (Amazon Scout; Vepsalainen 2022)
    battery_wh=500.0,
    reserve_fraction=0.25,
    max_wind_mps=25.0,  # wheeled, low profile: not wind limited in practice
    empty_mass_kg=25.0,
    wh_per_km=15.0,
)

# Van: an urban electric delivery van (Sprinter / E-Transit class), the fallback for everything else.
# Not energy-checked (battery_wh 0): the van dispatcher plans its own routes and charging.
VAN_DEFAULT = VehicleSpec(
    kind=VehicleKind.VAN,
    model="generic-delivery-van",
    max_payload_kg=1000.0,
    max_range_m=150_000.0,
    cruise_speed_mps=11.0,  # ~40 km/h: urban driving speed between stops, used for ETAs
    battery_wh=0.0,
    reserve_fraction=0.0,
    max_wind_mps=40.0,
    empty_mass_kg=2500.0,
    capacity_kg=1000.0,  # typical panel-van payload
    capacity_m3=10.0,  # typical high-roof panel-van load volume
)

_DEFAULTS: dict[VehicleKind, VehicleSpec] = {
    VehicleKind.DRONE: DRONE_DEFAULT,
    VehicleKind.ROBOT: ROBOT_DEFAULT,
    VehicleKind.VAN: VAN_DEFAULT,
}


def default_spec(kind: VehicleKind | str) -> VehicleSpec:
    """The default spec for `kind` ("drone", "robot" or "van"; case-insensitive)."""
    try:
        return _DEFAULTS[VehicleKind(kind.lower() if isinstance(kind, str) else kind)]
    except (ValueError, AttributeError):
        allowed = ", ".join(k.value for k in VehicleKind)
        raise VehicleInputError("kind", f"unknown vehicle kind {kind!r}; expected one of {allowed}") from None
