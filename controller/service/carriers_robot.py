"""Robots as carriers: a VDA 5050 `RobotHandle` behind the service's `Carrier` interface."""

from __future__ import annotations

import time

from controller.missions.results import DeliveryResult
from controller.missions.robot import DropAction, RobotDeliveryPlan, drive_delivery
from controller.service.carriers import Assignment, EventSink, VehicleSnapshot
from geofences import LocalFrame
from vehicles.spec import VehicleKind
from vehicles.vda5050 import Availability, RobotHandle

# after a broker outage: the robot's will from the outage, or no state from it since
_NOT_BACK_YET = frozenset({Availability.CONNECTION_BROKEN, Availability.STALE, Availability.UNKNOWN})


class RobotCarrier:
    """One sidewalk robot: its last state for the planner and console, orders for the missions."""

    kind = VehicleKind.ROBOT

    def __init__(
        self,
        vehicle_id: str,
        robot: RobotHandle,
        frame: LocalFrame,
        drop_action: DropAction | None = None,
        cancel_timeout_s: float = 10.0,
        broker_grace_s: float = 30.0,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.robot = robot
        self.frame = frame  # the robots' map frame is the station's local frame
        self.drop_action = drop_action or DropAction()  # the robot's own handover action (station file)
        self.cancel_timeout_s = cancel_timeout_s
        # once the broker is back after an outage, how long this robot may take to reconnect before its
        # trip is given up (`drive_delivery`); the outage itself ends no trip (the robot's state decides)
        self.broker_grace_s = broker_grace_s
        self._broker_lost_at: float | None = None  # monotonic time this carrier first saw the broker gone
        self._broker_back_at: float | None = None  # ... and first saw it back, the robot not yet

    def snapshot(self) -> VehicleSnapshot:
        view = self.robot.view
        lat = lon = heading = None
        if view is not None and view.position is not None:
            x, y, theta = view.position
            lons, lats = self.frame.to_wgs84(x, y)
            lon, lat = float(lons), float(lats)
            heading = (
                90.0 - theta * 180.0 / 3.141592653589793
            ) % 360.0  # map theta (CCW from east) -> compass
        silent = self.robot.silent_for()
        return VehicleSnapshot(
            vehicle_id=self.vehicle_id,
            kind=self.kind,
            online=self.robot.available,
            charge=view.battery_percent / 100.0 if view is not None else None,
            lat=lat,
            lon=lon,
            heading_deg=heading,
            speed_mps=view.speed_mps if view is not None else None,
            mode="driving"
            if view is not None and view.driving
            else ("paused" if view and view.paused else "idle"),
            link_age_s=round(silent, 2) if silent is not None else None,
            errors=[f"{e.level}: {e.error_type}" for e in view.errors] if view is not None else [],
        )

    def broker_lost_for(self) -> float | None:
        """Seconds since the controller lost the MQTT broker (as seen by the calls: the planner makes one
        every pass), while this robot is unreachable because of it; None otherwise.

        Such a robot is unreachable, not gone: it drives on without us and is back when the broker is. The
        planner keeps it in the plan as busy meanwhile (see `StationService._fleet`). That lasts past the
        broker's return by `broker_grace_s` for a robot not back yet (the will the broker sent as it went
        down stands until the robot reconnects): the grace its trip gives it too. Not a robot never heard
        (a broker down since start, or refusing our login): nothing says it is there, so it is offline.
        """
        robot, now = self.robot, time.monotonic()
        if robot.availability is Availability.BROKER_DOWN and robot.view is not None:
            self._broker_lost_at = self._broker_lost_at or now
            self._broker_back_at = None
            return now - self._broker_lost_at
        if self._broker_lost_at is not None and robot.availability in _NOT_BACK_YET:
            self._broker_back_at = self._broker_back_at or now
            if now - self._broker_back_at < self.broker_grace_s:
                return now - self._broker_lost_at
        self._broker_lost_at = self._broker_back_at = None
        return None

    def plan_for(self, job: Assignment) -> RobotDeliveryPlan:
        path = [tuple(p) for p in job.route]
        return RobotDeliveryPlan(
            package_id=job.package_id,
            vehicle_id=self.vehicle_id,
            station=tuple(job.station),  # type: ignore[arg-type]
            path_out=path,  # type: ignore[arg-type]
            path_back=path[::-1],  # type: ignore[arg-type]
            payload_kg=job.payload_kg,
        )

    async def deliver(self, job: Assignment, on_event: EventSink) -> DeliveryResult:
        return await drive_delivery(
            self.robot,
            self.plan_for(job),
            on_event=on_event,
            drop_action=self.drop_action,
            broker_grace_s=self.broker_grace_s,
        )

    async def resume(self, job: Assignment, on_event: EventSink) -> DeliveryResult:
        # The robot still holds its order (VDA 5050 state names it); sending the same order id again is
        # reconciled by the driver, so resuming is delivering with the same plan.
        return await drive_delivery(
            self.robot,
            self.plan_for(job),
            on_event=on_event,
            drop_action=self.drop_action,
            broker_grace_s=self.broker_grace_s,
        )

    async def abort(self) -> None:
        """cancelOrder, answered only once the robot confirms it; `CancelRefused` says why it did not.

        The running delivery ends (`aborted`) on the robot's confirmation, not on our request: a robot that
        refused the cancel is still carrying the package, so its mission and package stay as they are.
        """
        await self.robot.cancel_confirmed(self.cancel_timeout_s)
