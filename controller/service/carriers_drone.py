"""Drones as carriers: a `Drone` handle of the MAVLink driver behind the service's `Carrier` interface."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from vehicles.mavlink.signing import Rejection, SigningState
from vehicles.spec import VehicleKind, VehicleSpec

if TYPE_CHECKING:
    from controller.station import StationConfig, VehicleConfig

log = logging.getLogger("lastmile.service.carriers")
SECURITY_REPORT_S = 5.0  # a flood of refused packets becomes one security event per drone and reason per 5 s


def drone_signing(config: StationConfig, vehicle: VehicleConfig) -> dict[str, Any]:
    """`DroneDriver.add` arguments for a drone's signing (none for a drone without a key).

    The key is read here, when linking, not kept in memory longer than the link needs it.
    """
    found = config.signing_for(vehicle)
    if found is None:
        log.warning(
            "drone %s at %s is linked without MAVLink signing: whoever reaches that link can command it "
            "(give it signing_key_file and set require_signing; docs/security.md)",
            vehicle.id,
            vehicle.url,
        )
        return {}
    key, state_path = found
    state = SigningState(Path(state_path)) if state_path is not None else None
    return {"signing_key": key, "signing_state": state}


class SecurityEvents:
    """Where drones' refused messages go as `security` events: the station's event bus, once it exists.

    The links come up before the service that owns the bus, so what happens in between is kept (the last
    few) and handed over on `attach`.
    """

    def __init__(self, keep: int = 50) -> None:
        self._sink: Callable[[dict[str, Any]], None] | None = None
        self._pending: list[dict[str, Any]] = []
        self._keep = keep

    def attach(self, sink: Callable[[dict[str, Any]], None]) -> None:
        """Send to `sink` from now on (e.g. `lambda e: service.bus.publish("security", **e)`)."""
        self._sink = sink
        pending, self._pending = self._pending, []
        for event in pending:
            sink(event)

    def report(self, event: dict[str, Any]) -> None:
        if self._sink is not None:
            self._sink(event)
        else:
            self._pending = [*self._pending[-(self._keep - 1) :], event]


class _RejectionReports:
    """One drone's refused messages as security events: the first of each reason at once, then at most
    one per SECURITY_REPORT_S carrying how many came since (a spoofer must not flood the event stream)."""

    def __init__(self, vehicle_id: str, drone: Drone, events: SecurityEvents) -> None:
        self.vehicle_id = vehicle_id
        self.drone = drone
        self.events = events
        self._last_report: dict[str, float] = {}
        self._unreported: dict[str, tuple[int, Rejection]] = {}
        self._flush: dict[str, asyncio.TimerHandle] = {}
        drone.on_rejection(self._on_rejection)

    def _on_rejection(self, rejection: Rejection) -> None:
        reason = rejection.reason
        count, _ = self._unreported.get(reason, (0, rejection))
        self._unreported[reason] = (count + 1, rejection)
        wait = self._last_report.get(reason, -SECURITY_REPORT_S) + SECURITY_REPORT_S - time.monotonic()
        if wait <= 0:
            self._report(reason)
        elif reason not in self._flush:
            self._flush[reason] = asyncio.get_running_loop().call_later(wait, self._report, reason)

    def _report(self, reason: str) -> None:
        self._flush.pop(reason, None)
        unreported = self._unreported.pop(reason, None)
        if unreported is None:
            return
        new, last = unreported
        self._last_report[reason] = time.monotonic()
        self.events.report(
            {
                "vehicle_id": self.vehicle_id,
                "kind": "mavlink_signing",
                "reason": reason,
                "refused": new,  # since the last event of this reason
                "refused_total": self.drone.rejected.get(reason, 0),
                "last_msg_type": last.msg_type,
                "claimed_source": f"{last.src_system}/{last.src_component}",
            }
        )

    def close(self) -> None:
        for handle in self._flush.values():
            handle.cancel()
        self._flush.clear()


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
        security: SecurityEvents | None = None,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.drone = drone
        # Messages the drone's link refused (unsigned, wrong key, replayed) become `security` events.
        self.security = _RejectionReports(vehicle_id, drone, security) if security is not None else None
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
            hold_alone_s=air.get("hold_alone_s"),  # booked before it existed (a restart): waits to be cleared
            **common,
        )

    def _control(self, job: Assignment, on_event: EventSink) -> FlightControl | None:
        if self.airspace is None or job.airspace is None:
            return None
        try:
            self.airspace.station.flight(job.mission_id)
        except InputError:  # booked before a restart: the book is gone; booked again from where it is
            booking, airspace = job.airspace, self.airspace

            def adopt(position: tuple[float, float, float]) -> None:
                airspace.adopt(job.mission_id, self.vehicle_id, booking, self.spec, position)

            return airspace.control(job.mission_id, on_event, adopt=adopt, landing_pad=booking["pad"])
        return self.airspace.control(job.mission_id, on_event)

    async def deliver(self, job: Assignment, on_event: EventSink) -> DeliveryResult:
        control = self._control(job, on_event)
        return await fly_delivery(self.drone, self.plan_for(job), on_event=on_event, airspace=control)

    async def resume(self, job: Assignment, on_event: EventSink) -> DeliveryResult:
        control = self._control(job, on_event)
        return await follow_delivery(self.drone, self.plan_for(job), on_event=on_event, airspace=control)

    async def abort(self) -> None:
        await abort_delivery(self.drone)

    async def station_open(self, is_open: bool) -> None:
        """Tell the drone whether its station takes it back: RALLY_INCL_HOME 1 (RTL to the nearer of home
        and the rally points) or 0 (a rally point only: AP_Rally::calc_best_rally_or_home_location). A
        drone with no rally points loaded keeps RTL home: there is nowhere else to go."""
        if self.rally:
            await self.drone.set_params({"RALLY_INCL_HOME": 1 if is_open else 0})
