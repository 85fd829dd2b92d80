"""Drones as carriers: a `Drone` handle of the MAVLink driver behind the service's `Carrier` interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controller.errors import InputError
from controller.missions.drone import (
    DeliveryPlan,
    abort_delivery,
    fence_from_zones,
    fly_delivery,
    follow_delivery,
)
from controller.missions.results import DeliveryResult
from controller.service.airspace import FlightControl, ServiceAirspace
from controller.service.carriers import Assignment, EventSink, VehicleSnapshot
from geofences import Zone
from vehicles.mavlink import Drone
from vehicles.spec import VehicleKind, VehicleSpec


class DroneCarrier:
    """One drone: telemetry for the planner and the console, flights for the missions."""

    kind = VehicleKind.DRONE

    def __init__(
        self,
        vehicle_id: str,
        drone: Drone,
        spec: VehicleSpec,
        zones: Sequence[Zone],
        *,
        ceiling_m: float | None = None,
        gcs_timeout_s: float = 5.0,
        rally: Sequence[tuple[float, float, float]] = (),
        continue_without_gcs: bool = False,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.drone = drone
        self.spec = spec
        self.gcs_timeout_s = gcs_timeout_s  # FS_GCS_TIMEOUT, in the drone's own (possibly simulated) seconds
        # The station's zones become the drone's own fence, so it stops itself even if we are wrong.
        self.fence = fence_from_zones(zones, ceiling_m) if zones or ceiling_m else None
        self.rally = list(rally)  # the station's alternate landing sites (lat, lon, alt above home)
        # FS_OPTIONS bit 1: a flight in AUTO goes on through a controller restart or takeover
        self.continue_without_gcs = continue_without_gcs
        self.airspace: ServiceAirspace | None = None  # set by the service

    def snapshot(self) -> VehicleSnapshot:
        s = self.drone.state
        age = s.heartbeat_age()
        return VehicleSnapshot(
            vehicle_id=self.vehicle_id,
            kind=self.kind,
            online=bool(self.drone.conn.link_up),
            charge=s.battery_remaining,
            lat=s.lat,
            lon=s.lon,
            alt_m=s.alt_m,
            heading_deg=s.heading,
            speed_mps=s.groundspeed,
            mode=s.mode,
            link_age_s=round(age, 2) if age is not None else None,
            errors=["fence breached"] if s.fence_breached else [],
        )

    def plan_for(self, job: Assignment) -> DeliveryPlan:
        """The flight for a job: as the airspace booked it (pad, layers, holding point), or, for a job
        without a booking, out along the route's inner vertices and back along them reversed."""
        inner = [tuple(p) for p in job.route[1:-1]]
        common: dict[str, Any] = dict(
            package_id=job.package_id,
            vehicle_id=self.vehicle_id,
            station=tuple(job.station),
            destination=tuple(job.destination),
            payload_kg=job.payload_kg,
            delivery_alt_m=self.spec.delivery_altitude_m or 5.0,
            reserve_fraction=self.spec.reserve_fraction,
            predicted_energy_wh=job.predicted_energy_wh,
            fence=self.fence,
            gcs_timeout_s=self.gcs_timeout_s,
            continue_without_gcs=self.continue_without_gcs,
            rally=self.rally,
        )
        air = job.airspace
        if air is None:
            return DeliveryPlan(
                waypoints_out=inner,  # type: ignore[arg-type]
                waypoints_back=inner[::-1],  # type: ignore[arg-type]
                cruise_alt_m=self.spec.cruise_altitude_m or 60.0,
                **common,
            )
        return DeliveryPlan(
            waypoints_out=[tuple(p) for p in air["route_out"][:-1]],  # type: ignore[misc]
            waypoints_back=[tuple(p) for p in air["route_back"]],  # type: ignore[misc]
            cruise_alt_m=air["cruise_alt_out_m"],
            cruise_alt_back_m=air["cruise_alt_back_m"],
            hold_point=(air["hold_lat"], air["hold_lon"]),
            landing_pads=[tuple(p) for p in air["landing_pads"]],  # type: ignore[misc]
            **common,
        )

    def _control(self, job: Assignment, on_event: EventSink) -> FlightControl | None:
        if self.airspace is None or job.airspace is None:
            return None
        try:
            self.airspace.station.flight(job.mission_id)
        except InputError:  # booked before a restart: the book is gone, the drone lands on its own pad
            return None
        return self.airspace.control(job.mission_id, on_event)

    async def deliver(self, job: Assignment, on_event: EventSink) -> DeliveryResult:
        control = self._control(job, on_event)
        return await fly_delivery(self.drone, self.plan_for(job), on_event=on_event, airspace=control)

    async def resume(self, job: Assignment, on_event: EventSink) -> DeliveryResult:
        control = self._control(job, on_event)
        return await follow_delivery(self.drone, self.plan_for(job), on_event=on_event, airspace=control)

    async def abort(self) -> None:
        await abort_delivery(self.drone)
