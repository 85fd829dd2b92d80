"""The operator's side: the fleet and its missions, launch and abort, and grounding the whole fleet."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field

from controller.airspace import AirspaceBusy
from controller.api.auth import require
from controller.api.deps import blocking, service_of
from controller.api.errors import ApiError
from controller.api.schemas import ErrorBody
from controller.store import Mission
from vehicles.errors import VehicleError
from vehicles.vda5050.errors import CancelRefused

router = APIRouter(prefix="/v1", tags=["fleet"])
_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}


class FleetStatus(BaseModel):
    """Every vehicle's latest telemetry, whether the fleet is grounded, and the package queue by state."""

    station: str
    grounded: bool
    grounded_reason: str | None
    station_closed: bool = Field(default=False, description="closed to drones: none launches or lands")
    station_closed_reason: str | None = None
    vehicles: list[dict[str, Any]]
    queue: dict[str, int] = Field(description="packages per state")
    last_event: int = Field(description="sequence number of the newest live event")
    clock: Literal["wall", "sim"] = Field(
        default="wall",
        description="the clock the station's ETAs and plans are on: wall, or sim (a simulated day, as in "
        "`lastmile demo`, running `clock_speedup` times faster than the wall clock); event times are wall",
    )
    clock_speedup: float = Field(default=1.0, description="simulated seconds per wall-clock second")


class GroundRequest(BaseModel):
    """Why the fleet stops launching (kept in the event stream)."""

    reason: str = Field(default="weather hold", min_length=1, max_length=200)


class CloseRequest(BaseModel):
    """Why the station closes to drones (kept in the event stream)."""

    reason: str = Field(default="closed by an operator", min_length=1, max_length=200)


class MissionOut(BaseModel):
    """A mission: one vehicle's job for one package."""

    id: str
    package_id: str
    vehicle_id: str
    kind: str
    state: str
    created_at: datetime
    updated_at: datetime
    plan: dict[str, Any] = Field(default_factory=dict)


class MissionAction(BaseModel):
    """What an operator action did."""

    mission_id: str
    action: str
    ok: bool = True


async def _status(request: Request) -> FleetStatus:
    service = service_of(request)
    counts = await blocking(service.store.count_by_state)
    return FleetStatus(
        station=service.config.name,
        grounded=service.grounded is not None,
        grounded_reason=service.grounded,
        station_closed=service.station_closed is not None,
        station_closed_reason=service.station_closed,
        vehicles=service.fleet_status(),
        queue={str(state): n for state, n in counts.items()},
        last_event=service.bus.last_seq,
        **_clock(service.clock),
    )


def _clock(clock: object) -> dict[str, Any]:
    """Which clock the service plans on: a simulated one (`controller.demo.ScaledClock`) says its speed-up."""
    speedup = float(getattr(clock, "speedup", 1.0))
    return {"clock": "wall" if speedup == 1.0 else "sim", "clock_speedup": speedup}


@router.get(
    "/fleet",
    summary="Fleet status and package queue",
    response_model=FleetStatus,
    responses=_ERRORS,
    dependencies=[Depends(require("fleet:read"))],
)
async def fleet(request: Request) -> FleetStatus:
    """Vehicles (online, charge, position, mode, mission) and how many packages are in each state."""
    return await _status(request)


@router.get(
    "/missions",
    summary="Missions (unfinished by default)",
    response_model=list[MissionOut],
    responses=_ERRORS,
    dependencies=[Depends(require("fleet:read"))],
)
async def missions(
    request: Request, all: Annotated[bool, Query(description="include finished missions")] = False
) -> list[MissionOut]:
    """Held missions wait for an operator's launch when the station's `launch = "operator"`."""
    found: list[Mission] = await service_of(request).missions(unfinished_only=not all)
    return [MissionOut.model_validate(m.model_dump()) for m in found]


@router.post(
    "/missions/{mission_id}/launch",
    summary="Launch a held mission",
    response_model=MissionAction,
    responses={**_ERRORS, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
    dependencies=[Depends(require("fleet:write"))],
)
async def launch(request: Request, mission_id: str) -> MissionAction:
    """404 when no mission with this id is held; 409 while the fleet is grounded (code `grounded`) or when
    the station's airspace has no launch slot for the drone soon enough (code `airspace_busy`, with the
    time it frees)."""
    try:
        await service_of(request).launch(mission_id)
    except KeyError:
        raise ApiError(
            404, f"no mission {mission_id!r} is waiting for a launch", field="mission_id"
        ) from None
    except PermissionError as exc:
        raise ApiError(409, str(exc), field="mission_id", code="grounded") from None
    except AirspaceBusy as exc:
        free = service_of(request).airspace.free_at(exc).isoformat(timespec="seconds")
        raise ApiError(
            409, f"no launch slot in the station's airspace now; it frees at {free}", field="mission_id",
            code="airspace_busy",
        ) from None  # fmt: skip
    return MissionAction(mission_id=mission_id, action="launch")


@router.post(
    "/missions/{mission_id}/abort",
    summary="Abort a mission",
    response_model=MissionAction,
    responses={**_ERRORS, 404: {"model": ErrorBody}},
    dependencies=[Depends(require("fleet:write"))],
)
async def abort(request: Request, mission_id: str) -> MissionAction:
    """A held mission is released (its package goes back to the queue); a flying one returns home.

    409 `cancel_refused` when the robot refused (or never confirmed) the cancel: its order still runs and
    the mission stays as it was; 503 `vehicle_unreachable` when the vehicle could not be told at all.
    """
    try:
        await service_of(request).abort(mission_id)
    except KeyError:
        raise ApiError(404, f"no mission {mission_id!r} is held or under way", field="mission_id") from None
    except CancelRefused as exc:
        raise ApiError(
            409, f"the robot did not cancel: {exc.reason}; the mission goes on", field="mission_id",
            code="cancel_refused",
        ) from None  # fmt: skip
    except VehicleError as exc:
        raise ApiError(
            503, f"the vehicle could not be told to abort: {exc}; try again", field="mission_id",
            code="vehicle_unreachable",
        ) from None  # fmt: skip
    return MissionAction(mission_id=mission_id, action="abort")


@router.post(
    "/fleet/ground",
    summary="Ground the fleet (stop launching)",
    response_model=FleetStatus,
    responses={**_ERRORS, 422: {"model": ErrorBody}},
    dependencies=[Depends(require("fleet:write"))],
)
async def ground(request: Request, body: Annotated[GroundRequest | None, Body()] = None) -> FleetStatus:
    """New packages stay queued (decision `queued`, reason "fleet grounded: ...") until released."""
    await service_of(request).ground((body or GroundRequest()).reason)
    return await _status(request)


@router.post(
    "/fleet/unground",
    summary="Release the fleet",
    response_model=FleetStatus,
    responses=_ERRORS,
    dependencies=[Depends(require("fleet:write"))],
)
async def unground(request: Request) -> FleetStatus:
    """Planning resumes at once for every queued package."""
    await service_of(request).unground()
    return await _status(request)


@router.post(
    "/station/close",
    summary="Close the station to drones (divert them to rally points)",
    response_model=FleetStatus,
    responses={**_ERRORS, 422: {"model": ErrorBody}},
    dependencies=[Depends(require("fleet:write"))],
)
async def close_station(request: Request, body: Annotated[CloseRequest | None, Body()] = None) -> FleetStatus:
    """No drone launches or lands here: a package planned for a drone waits (reason `station_closed`), a
    drone on its way home flies to the nearest rally point and lands there, and every drone's own RTL
    goes to a rally point (RALLY_INCL_HOME 0). Robots carry on. docs/airspace.md, "Contingencies"."""
    await service_of(request).close_station((body or CloseRequest()).reason)
    return await _status(request)


@router.post(
    "/station/open",
    summary="Open the station to drones again",
    response_model=FleetStatus,
    responses=_ERRORS,
    dependencies=[Depends(require("fleet:write"))],
)
async def open_station(request: Request) -> FleetStatus:
    """Drones launch and land here again (RALLY_INCL_HOME 1); planning resumes at once."""
    await service_of(request).open_station()
    return await _status(request)
