"""Energy and time of a delivery trip, vectorized over many packages at once.

The assignment engine asks "can this vehicle carry this package there and back, above its reserve, and
how long until the drop?" for every (package, vehicle) pair each tick, so every function here takes numpy
arrays (or scalars) and broadcasts: shapes such as (packages, vehicles) come back unchanged. One call
takes one `VehicleSpec`; group vehicles by spec (a station usually has one drone spec) and vary charge,
distance or bearing in the arrays.

Drone model (see docs/energy.md for the derivation and the sources):
- cruise (D'Andrea 2014): ``P = m g v / (eta L/D) + P_avionics`` at airspeed ``v``;
- hover (momentum theory): ``P = T^1.5 / sqrt(2 rho A) / eta + P_avionics`` with ``T = m g``;
- climb (momentum theory): ``P = T (w/2 + sqrt(w^2/4 + v_h^2)) / eta + P_avionics``, ``v_h^2 = T/(2 rho A)``,
  which is hover power plus the work of lifting the vehicle; descents are flown at hover power;
- wind: each leg flies a straight track; the drone crabs to cancel the crosswind, so its ground speed is
  ``sqrt(v^2 - crosswind^2) - headwind`` (``v - headwind`` for wind along the track). A leg whose ground
  speed is not positive cannot be flown: its time and energy are infinite and `feasible` is False.

Robot model: a constant Wh/km from the spec plus a small rolling-resistance term for the payload.
Vans are not energy-modelled; passing a van spec is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vehicles.spec import VehicleInputError, VehicleKind, VehicleSpec

__all__ = [
    "AIR_DENSITY",
    "ROBOT_PAYLOAD_WH_PER_KM_PER_KG",
    "G",
    "TripEnergy",
    "crosswind_mps",
    "drone_climb_power_w",
    "drone_cruise_power_w",
    "drone_hover_power_w",
    "drone_trip_energy",
    "energy_per_km_wh",
    "ground_speed_mps",
    "headwind_mps",
    "robot_trip_energy",
    "usable_energy_wh",
]

G = 9.80665
"""Standard gravity, m/s^2."""
AIR_DENSITY = 1.225
"""ISA sea-level air density, kg/m^3."""

# Payload cost of a sidewalk robot: rolling resistance C_rr * m * g per metre through a drivetrain of
# efficiency 0.5 (small wheels on pavement: C_rr ~ 0.02). 0.02 * 9.80665 * 1000 / 0.5 / 3600 Wh per km per kg.
_ROBOT_ROLLING_COEFF = 0.02
_ROBOT_DRIVE_EFFICIENCY = 0.5
ROBOT_PAYLOAD_WH_PER_KM_PER_KG = _ROBOT_ROLLING_COEFF * G * 1000.0 / _ROBOT_DRIVE_EFFICIENCY / 3600.0
"""Extra Wh per km per kg of payload for a robot (~0.109)."""

_J_PER_WH = 3600.0

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class TripEnergy:
    """Energy and timing of one trip per element of the broadcast input shape."""

    energy_wh: FloatArray
    """Whole trip, takeoff to landing (drone) or station to station (robot); inf where infeasible."""
    duration_s: FloatArray
    """Whole trip; inf where infeasible."""
    time_to_delivery_s: FloatArray
    """From departure to the package release (end of the hover at the drop)."""
    feasible: NDArray[np.bool_]
    """False where a leg cannot be flown (ground speed <= 0: headwind or crosswind >= airspeed)."""
    out_ground_speed_mps: FloatArray
    """Ground speed the prediction assumes on the way out. ArduPilot holds a *ground* speed (WPNAV_SPEED,
    DO_CHANGE_SPEED), so a mission should command this per leg for the flight to match the prediction."""
    back_ground_speed_mps: FloatArray
    """Ground speed the prediction assumes on the way back."""


# --- input checks ------------------------------------------------------------------------------------------


def _nonnegative(name: str, value: ArrayLike) -> FloatArray:
    """`value` as a float array, refusing negatives, NaN and infinity with the argument's name."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.size and not (arr.min() >= 0.0 and np.isfinite(arr.max())):
        raise VehicleInputError(name, "must be finite and >= 0")
    return arr


def _finite(name: str, value: ArrayLike) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size and not np.isfinite(arr).all():
        raise VehicleInputError(name, "must be finite")
    return arr


def _expect(spec: VehicleSpec, kind: VehicleKind, what: str) -> None:
    if not isinstance(spec, VehicleSpec):
        raise VehicleInputError("spec", f"expected a VehicleSpec, got {type(spec).__name__}")
    if spec.kind is not kind:
        raise VehicleInputError("spec", f"{what} needs a {kind.value} spec, got a {spec.kind.value} spec")


def _f(value: float | None) -> float:
    """A drone field the spec validator guarantees is present."""
    assert value is not None
    return value


# --- wind -------------------------------------------------------------------------------------------------


def headwind_mps(
    track_bearing_deg: ArrayLike, wind_speed_mps: ArrayLike, wind_from_deg: ArrayLike
) -> FloatArray:
    """Wind component against the direction of travel (positive = headwind, negative = tailwind).

    `wind_from_deg` is meteorological: the direction the wind blows *from*, so flying toward it
    (track == wind_from) meets the full wind speed head on.
    """
    track = _finite("track_bearing_deg", track_bearing_deg)
    speed = _nonnegative("wind_speed_mps", wind_speed_mps)
    wfrom = _finite("wind_from_deg", wind_from_deg)
    return speed * np.cos(np.radians(track - wfrom))


def crosswind_mps(
    track_bearing_deg: ArrayLike, wind_speed_mps: ArrayLike, wind_from_deg: ArrayLike
) -> FloatArray:
    """Wind component across the track (positive = wind from the right of the direction of travel)."""
    track = _finite("track_bearing_deg", track_bearing_deg)
    speed = _nonnegative("wind_speed_mps", wind_speed_mps)
    wfrom = _finite("wind_from_deg", wind_from_deg)
    return speed * np.sin(np.radians(wfrom - track))


def ground_speed_mps(
    airspeed_mps: ArrayLike, track_bearing_deg: ArrayLike, wind_speed_mps: ArrayLike, wind_from_deg: ArrayLike
) -> FloatArray:
    """Speed along a straight track when flying at `airspeed_mps` through a steady wind.

    The aircraft crabs into the crosswind to hold the track, so part of its airspeed goes into cancelling
    the crosswind: ``sqrt(v^2 - x^2) - h``. Where the crosswind reaches the airspeed the track cannot be held
    and the result is 0 (not flyable).
    """
    v = _nonnegative("airspeed_mps", airspeed_mps)
    rad = np.radians(
        _finite("track_bearing_deg", track_bearing_deg) - _finite("wind_from_deg", wind_from_deg)
    )
    w = _nonnegative("wind_speed_mps", wind_speed_mps)
    head = w * np.cos(rad)
    cross = w * np.sin(rad)
    along_sq = v * v - cross * cross
    return np.where(along_sq > 0.0, np.sqrt(np.maximum(along_sq, 0.0)) - head, 0.0)


# --- drone power ------------------------------------------------------------------------------------------


def drone_cruise_power_w(spec: VehicleSpec, total_mass_kg: ArrayLike, airspeed_mps: ArrayLike) -> FloatArray:
    """Electrical power in level cruise: ``m g v / (eta L/D) + P_avionics`` (D'Andrea 2014).

    Drag is taken as weight / (L/D) and the power to overcome it as drag x airspeed, so power grows
    linearly with both mass and airspeed; energy per km (power / speed) depends on mass only.
    """
    _expect(spec, VehicleKind.DRONE, "drone_cruise_power_w")
    m = _nonnegative("total_mass_kg", total_mass_kg)
    v = _nonnegative("airspeed_mps", airspeed_mps)
    eta_ld = _f(spec.propulsion_efficiency) * _f(spec.lift_to_drag)
    return m * (G / eta_ld) * v + _f(spec.avionics_power_w)


def drone_hover_power_w(
    spec: VehicleSpec, total_mass_kg: ArrayLike, air_density: ArrayLike = AIR_DENSITY
) -> FloatArray:
    """Electrical power to hover: momentum-theory power ``T^1.5 / sqrt(2 rho A)`` over eta, plus avionics.

    Thinner air (hot day, high station) costs more: pass `air_density` in kg/m^3.
    """
    _expect(spec, VehicleKind.DRONE, "drone_hover_power_w")
    thrust = _nonnegative("total_mass_kg", total_mass_kg) * G
    rho = _positive("air_density", air_density)
    ideal = thrust * np.sqrt(thrust / (2.0 * rho * _f(spec.rotor_disk_area_m2)))
    return ideal / _f(spec.propulsion_efficiency) + _f(spec.avionics_power_w)


def drone_climb_power_w(
    spec: VehicleSpec,
    total_mass_kg: ArrayLike,
    climb_rate_mps: ArrayLike | None = None,
    air_density: ArrayLike = AIR_DENSITY,
) -> FloatArray:
    """Electrical power in a vertical climb at `climb_rate_mps` (default: the spec's) by momentum theory.

    ``P_ideal = T (w/2 + sqrt(w^2/4 + v_h^2))`` with the hover induced velocity ``v_h = sqrt(T / (2 rho A))``;
    equals hover power at w = 0 and approaches hover + ``T w`` (the work of lifting) for fast climbs.
    """
    _expect(spec, VehicleKind.DRONE, "drone_climb_power_w")
    thrust = _nonnegative("total_mass_kg", total_mass_kg) * G
    w = _nonnegative("climb_rate_mps", _f(spec.climb_rate_mps) if climb_rate_mps is None else climb_rate_mps)
    rho = _positive("air_density", air_density)
    vh_sq = thrust / (2.0 * rho * _f(spec.rotor_disk_area_m2))
    half_w = 0.5 * w
    ideal = thrust * (half_w + np.sqrt(half_w * half_w + vh_sq))
    return ideal / _f(spec.propulsion_efficiency) + _f(spec.avionics_power_w)


def _positive(name: str, value: ArrayLike) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size and not (arr.min() > 0.0 and np.isfinite(arr.max())):
        raise VehicleInputError(name, "must be finite and > 0")
    return arr


# --- trips ------------------------------------------------------------------------------------------------


def _leg_time_s(distance_m: FloatArray, ground_speed: FloatArray) -> FloatArray:
    """distance / ground speed; inf where the leg has length but no positive ground speed."""
    flyable = ground_speed > 0.0
    t = distance_m / np.where(flyable, ground_speed, 1.0)
    return np.where(flyable | (distance_m == 0.0), t, np.inf)


def _full(arr: NDArray, shape: tuple[int, ...]) -> NDArray:
    """`arr` expanded to the trip's broadcast shape as an ordinary writable array (callers mask in place)."""
    arr = np.asarray(arr)
    return arr if arr.shape == shape else np.broadcast_to(arr, shape).copy()


def drone_trip_energy(
    spec: VehicleSpec,
    payload_kg: ArrayLike,
    out_distance_m: ArrayLike,
    back_distance_m: ArrayLike,
    *,
    out_bearing_deg: ArrayLike = 0.0,
    back_bearing_deg: ArrayLike = 180.0,
    wind_speed_mps: ArrayLike = 0.0,
    wind_from_deg: ArrayLike = 0.0,
    air_density: ArrayLike = AIR_DENSITY,
) -> TripEnergy:
    """Energy and time of a whole delivery flight, station -> drop -> station.

    Phases: climb to cruise altitude, cruise out at the spec's airspeed carrying the payload, descend to
    the delivery altitude, hover for the drop (the package is released at the end of the hover), climb back
    to cruise altitude empty, cruise back empty, wait `spec.holding_s` at the holding point (if any),
    descend and land. Out and back are straight legs along
    the given bearings (degrees true); distances are path lengths, so a detour simply makes them longer.
    Wind limits (`spec.max_wind_mps`) and payload limits are the caller's rules, not checked here.
    """
    _expect(spec, VehicleKind.DRONE, "drone_trip_energy")
    payload = _nonnegative("payload_kg", payload_kg)
    d_out = _nonnegative("out_distance_m", out_distance_m)
    d_back = _nonnegative("back_distance_m", back_distance_m)
    v = spec.cruise_speed_mps

    m_loaded = spec.empty_mass_kg + payload
    m_empty = spec.empty_mass_kg
    h_cruise = _f(spec.cruise_altitude_m)
    h_drop = h_cruise - _f(spec.delivery_altitude_m)
    climb, descent = _f(spec.climb_rate_mps), _f(spec.descent_rate_mps)

    gs_out = ground_speed_mps(v, out_bearing_deg, wind_speed_mps, wind_from_deg)
    gs_back = ground_speed_mps(v, back_bearing_deg, wind_speed_mps, wind_from_deg)
    t_out = _leg_time_s(d_out, gs_out)
    t_back = _leg_time_s(d_back, gs_back)

    # Loaded part: climb, cruise out, descend to the drop, hover.
    t_climb = h_cruise / climb
    t_drop_descent = h_drop / descent
    t_hover = _f(spec.delivery_hover_s)
    p_hover_loaded = drone_hover_power_w(spec, m_loaded, air_density)
    e_loaded = (
        drone_climb_power_w(spec, m_loaded, climb, air_density) * t_climb
        + drone_cruise_power_w(spec, m_loaded, v) * t_out
        + p_hover_loaded * (t_drop_descent + t_hover)
    )
    # Empty part: climb back from the drop, cruise back, wait at the holding point, descend and land.
    t_reclimb = h_drop / climb
    t_land = h_cruise / descent
    t_hold = _f(spec.holding_s) if spec.holding_s is not None else 0.0
    e_empty = (
        drone_climb_power_w(spec, m_empty, climb, air_density) * t_reclimb
        + drone_cruise_power_w(spec, m_empty, v) * t_back
        + drone_hover_power_w(spec, m_empty, air_density) * (t_hold + t_land)
    )

    time_to_delivery = t_climb + t_out + t_drop_descent + t_hover
    duration = time_to_delivery + t_reclimb + t_back + t_hold + t_land
    energy = (e_loaded + e_empty) / _J_PER_WH
    shape = np.broadcast_shapes(energy.shape, duration.shape)
    return TripEnergy(
        energy_wh=_full(energy, shape),
        duration_s=_full(duration, shape),
        time_to_delivery_s=_full(time_to_delivery, shape),
        feasible=_full(np.isfinite(duration), shape),
        out_ground_speed_mps=_full(gs_out, shape),
        back_ground_speed_mps=_full(gs_back, shape),
    )


def robot_trip_energy(
    spec: VehicleSpec, payload_kg: ArrayLike, out_distance_m: ArrayLike, back_distance_m: ArrayLike
) -> TripEnergy:
    """Energy and time of a robot's trip, station -> door -> station, at the spec's walking speed.

    Energy is ``wh_per_km`` over the whole path plus `ROBOT_PAYLOAD_WH_PER_KM_PER_KG` x payload on the way
    out (the payload leaves at the door). Distances are path lengths along the sidewalk network.
    """
    _expect(spec, VehicleKind.ROBOT, "robot_trip_energy")
    payload = _nonnegative("payload_kg", payload_kg)
    d_out = _nonnegative("out_distance_m", out_distance_m)
    d_back = _nonnegative("back_distance_m", back_distance_m)
    km_out, km_back = d_out / 1000.0, d_back / 1000.0
    energy = _f(spec.wh_per_km) * (km_out + km_back) + ROBOT_PAYLOAD_WH_PER_KM_PER_KG * payload * km_out
    t_out = d_out / spec.cruise_speed_mps
    duration = t_out + d_back / spec.cruise_speed_mps
    shape = np.broadcast_shapes(energy.shape, duration.shape)
    return TripEnergy(
        energy_wh=_full(energy, shape),
        duration_s=_full(duration, shape),
        time_to_delivery_s=_full(t_out, shape),
        feasible=np.ones(shape, dtype=bool),
        out_ground_speed_mps=np.full(shape, spec.cruise_speed_mps),
        back_ground_speed_mps=np.full(shape, spec.cruise_speed_mps),
    )


# --- budgets and reports ----------------------------------------------------------------------------------


def usable_energy_wh(spec: VehicleSpec, charge_fraction: ArrayLike) -> FloatArray:
    """Energy a vehicle may spend before touching its reserve: ``battery_wh * (charge - reserve)``.

    Negative where the pack is already below the reserve. A trip is energy-feasible when
    ``trip.energy_wh <= usable_energy_wh(spec, charge)``.
    """
    if not isinstance(spec, VehicleSpec):
        raise VehicleInputError("spec", f"expected a VehicleSpec, got {type(spec).__name__}")
    if spec.kind is VehicleKind.VAN:
        raise VehicleInputError("spec", "vans are not energy-checked (battery_wh is not modelled)")
    charge = np.asarray(charge_fraction, dtype=np.float64)
    if charge.size and not (charge.min() >= 0.0 and charge.max() <= 1.0):
        raise VehicleInputError("charge_fraction", "must be within [0, 1] (a fraction, not a percentage)")
    return spec.battery_wh * (charge - spec.reserve_fraction)


def energy_per_km_wh(
    spec: VehicleSpec, payload_kg: ArrayLike, airspeed_mps: ArrayLike | None = None
) -> FloatArray:
    """Cruise energy per km in still air (drone: at `airspeed_mps`, default cruise speed; robot: driving)."""
    if isinstance(spec, VehicleSpec) and spec.kind is VehicleKind.ROBOT:
        payload = _nonnegative("payload_kg", payload_kg)
        return _f(spec.wh_per_km) + ROBOT_PAYLOAD_WH_PER_KM_PER_KG * payload
    _expect(spec, VehicleKind.DRONE, "energy_per_km_wh")
    payload = _nonnegative("payload_kg", payload_kg)
    v = _positive("airspeed_mps", spec.cruise_speed_mps if airspeed_mps is None else airspeed_mps)
    power = drone_cruise_power_w(spec, spec.empty_mass_kg + payload, v)
    return power * (1000.0 / v) / _J_PER_WH
