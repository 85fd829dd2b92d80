"""Reason codes: why a vehicle cannot carry a package, in words for programs and for people.

Every "no" of the feasibility check carries one of these codes, so the van dispatcher can act on them
(`GET /v1/van-fallback`) and an operator can read them. Codes are stable API; texts may improve.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from vehicles.spec import KG_PER_LB

M_PER_MI = 1609.344


class Reason(StrEnum):
    """Why a package cannot go (or cannot go now) with a vehicle or a vehicle kind."""

    OVERWEIGHT = "overweight"
    OUT_OF_RANGE = "out_of_range"
    EXCLUSION_ZONE = "exclusion_zone"
    OUTSIDE_OPERATING_AREA = "outside_operating_area"
    INSUFFICIENT_BATTERY = "insufficient_battery"
    WIND = "wind"
    DEADLINE = "deadline"
    NO_VEHICLE_AVAILABLE = "no_vehicle_available"
    NO_VEHICLE_OF_KIND = "no_vehicle_of_kind"
    FLIGHT_FAILED = "flight_failed"
    AIRSPACE_BUSY = "airspace_busy"  # waits: no launch slot in the station's airspace soon enough
    STATION_CLOSED = "station_closed"  # waits: an operator closed the station to drones


# The order in which reasons are reported: the most fundamental first, so that "overweight" is the first
# thing a dispatcher reads about a 30 kg parcel, not "wind".
REASON_ORDER: tuple[Reason, ...] = (
    Reason.OVERWEIGHT,
    Reason.OUT_OF_RANGE,
    Reason.EXCLUSION_ZONE,
    Reason.OUTSIDE_OPERATING_AREA,
    Reason.INSUFFICIENT_BATTERY,
    Reason.WIND,
    Reason.DEADLINE,
    Reason.NO_VEHICLE_AVAILABLE,
    Reason.NO_VEHICLE_OF_KIND,
    Reason.FLIGHT_FAILED,
    Reason.AIRSPACE_BUSY,
    Reason.STATION_CLOSED,
)


_RANK = {reason: rank for rank, reason in enumerate(REASON_ORDER)}


def sort_reasons(reasons: set[Reason] | list[Reason]) -> list[Reason]:
    """Reasons in reporting order, each once."""
    return sorted(set(reasons), key=_RANK.__getitem__)


def overweight_hint(kind: str, weight_kg: float, limit_kg: float, *, inclusive: bool = True) -> str:
    """'0.8 lb over the drone limit (5.0 lb)'; '0.0001 lb over the drone limit (under 5.0 lb)'; at a limit
    that is itself refused, '5.0 lb: drone packages must weigh under 5.0 lb'. Never "0.0 lb over"."""
    limit = f"{limit_kg / KG_PER_LB:.1f} lb"
    over = (weight_kg - limit_kg) / KG_PER_LB
    if over <= 0:
        return f"{_lb(weight_kg / KG_PER_LB)} lb: {kind} packages must weigh under {limit}"
    return f"{_lb(over)} lb over the {kind} limit ({'' if inclusive else 'under '}{limit})"


def _lb(pounds: float) -> str:
    """One decimal, or as many as it takes for the first digit that is not 0 to show (0.0001, 0.04)."""
    if pounds <= 0 or pounds >= 0.05:
        return f"{pounds:.1f}"
    return format(Decimal(f"{pounds:.1g}"), "f")  # one significant digit, never in exponent form


def range_hint(kind: str, distance_m: float, radius_m: float) -> str:
    """'4.2 mi beyond the drone radius (10.0 mi)'."""
    beyond = (distance_m - radius_m) / M_PER_MI
    return f"{beyond:.1f} mi beyond the {kind} radius ({radius_m / M_PER_MI:.1f} mi)"


def zone_hint(kind: str, zone_id: str | None, inside: bool) -> str:
    """Which zone blocks the package, and how."""
    if zone_id is None:
        return f"no clear {kind} path around the exclusion zones"
    if inside:
        return f"destination inside {kind} exclusion zone '{zone_id}'"
    return f"every {kind} path is blocked (first by zone '{zone_id}')"


def operating_area_hint(kind: str) -> str:
    """The destination lies outside every operating area that applies to this kind."""
    return f"destination outside the {kind} operating area"


def battery_hint(kind: str, vehicle_id: str, missing_fraction: float, full_too: bool) -> str:
    """'needs 14 % more charge than drone d3 has' or, when even a full battery falls short, says so."""
    if full_too:
        return f"needs {missing_fraction * 100:.0f} % more than a full {kind} battery above the reserve"
    return f"needs {missing_fraction * 100:.0f} % more charge than {kind} {vehicle_id} has"


def wind_hint(kind: str, wind_mps: float, limit_mps: float) -> str:
    """'wind 14.0 m/s above the drone limit of 12.0 m/s'."""
    return f"wind {wind_mps:.1f} m/s above the {kind} limit of {limit_mps:.1f} m/s"


def deadline_hint(kind: str, late_s: float) -> str:
    """'the earliest drone arrives 12 min after the deadline'."""
    return f"the earliest {kind} arrives {late_s / 60:.0f} min after the deadline"
