"""`GET /v1/airspace/intents`: the station's reserved airspace, as a USS or a neighbouring station reads it.

Every drone flight is booked before it is released (pads, cruise layers, holding point; see
`controller.service.airspace`); its booking is a set of 4D volumes, each a horizontal polygon with an
altitude band and a time window, in the spirit of ASTM F3548 operational intents. This route publishes
them as a GeoJSON (RFC 7946) FeatureCollection: WGS84 lon/lat polygons with counter-clockwise exterior
rings, altitudes in metres above the station's ground (`alt_ref = "station_ground"`; `station.alt_m` gives
that ground above mean sea level), and wall-clock ISO 8601 times. Volumes appear when a flight is
released and go when it ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from controller.api.auth import require
from controller.api.deps import service_of
from controller.api.errors import ApiError
from controller.api.schemas import ErrorBody

__all__ = ["IntentFeature", "IntentProperties", "OperationalIntents", "router"]

router = APIRouter(prefix="/v1/airspace", tags=["airspace"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody, "description": "no vehicle with that id in the station's fleet"},
    422: {"model": ErrorBody},
}

Ring = list[list[float]]  # [[lon, lat], ...], closed (first point repeated last)


class IntentProperties(BaseModel):
    """What one reserved volume is for, and its altitude band and time window (both closed)."""

    model_config = ConfigDict(extra="allow")

    flight_id: str = Field(description="the flight (the station's mission id) the volume is reserved for")
    vehicle_id: str
    kind: str = Field(description="pad, climb, cruise, descent, drop or hold")
    phase: str = Field(description='a label for people, e.g. "climb-out", "cruise out 1/2", "approach"')
    pad: str | None = Field(default=None, description="the pad of a pad volume")
    alt_lo_m: float = Field(description="lower bound, metres above `alt_ref`")
    alt_hi_m: float = Field(description="upper bound, metres above `alt_ref`")
    alt_ref: str = Field(description='"station_ground": the station\'s ground (`station.alt_m` above MSL)')
    t0: datetime = Field(description="start of the window (ISO 8601, wall clock)")
    t1: datetime = Field(description="end of the window (ISO 8601, wall clock)")


class PolygonGeometry(BaseModel):
    """A GeoJSON Polygon: exterior ring counter-clockwise, then any holes; positions are [lon, lat]."""

    type: Literal["Polygon"]
    coordinates: list[Ring]


class MultiPolygonGeometry(BaseModel):
    """A GeoJSON MultiPolygon (a volume whose footprint falls apart into pieces; rare)."""

    type: Literal["MultiPolygon"]
    coordinates: list[list[Ring]]


class IntentFeature(BaseModel):
    """One reserved volume."""

    type: Literal["Feature"] = "Feature"
    geometry: PolygonGeometry | MultiPolygonGeometry = Field(discriminator="type")
    properties: IntentProperties


class StationRef(BaseModel):
    """The station that publishes the volumes, and the datum of their altitudes."""

    name: str
    lat: float
    lon: float
    alt_m: float = Field(description="ground altitude above mean sea level: where `station_ground` is")


class OperationalIntents(BaseModel):
    """The reserved volumes: a GeoJSON FeatureCollection with the station and the time it was read."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    station: StationRef
    generated_at: datetime = Field(description="when the station read its book (ISO 8601, wall clock)")
    features: list[IntentFeature]


@router.get(
    "/intents",
    summary="Reserved airspace (operational intents) as GeoJSON",
    response_model=OperationalIntents,
    responses=_ERRORS,
    dependencies=[Depends(require("fleet:read"))],
)
async def intents(
    request: Request,
    vehicle_id: Annotated[
        str | None, Query(max_length=128, description="only this vehicle's volumes (a fleet id)")
    ] = None,
) -> OperationalIntents:
    """One Polygon feature per reserved volume: WGS84 lon/lat, altitude band (`alt_lo_m`..`alt_hi_m` above
    the station's ground) and time window (`t0`..`t1`). Volumes are booked when a drone flight is released
    and freed when it ends; a vehicle with no flight booked has none. 404 for an id not in the fleet.
    """
    service = service_of(request)
    config = service.config
    if vehicle_id is not None and all(v.id != vehicle_id for v in config.fleet):
        raise ApiError(404, f"no vehicle {vehicle_id!r} in this station's fleet", field="vehicle_id")
    # On the loop, not in a thread: the book is changed by the missions running on this loop.
    geo = service.airspace.intents(vehicle_id)
    return OperationalIntents(
        station=StationRef(name=config.name, lat=config.lat, lon=config.lon, alt_m=config.alt_m),
        generated_at=service.clock(),
        features=[IntentFeature.model_validate(f) for f in geo["features"]],
    )
