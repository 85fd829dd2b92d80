"""Deliver one package with a VDA 5050 sidewalk robot: order out, follow the state, drop-off, return.

The whole trip is one orderId. The first message releases the way out (the base ends at the destination,
where the drop-off action sits) and shows the way back as horizon; once the robot reports the drop-off
FINISHED, an order update stitched at the destination releases the way back. So a robot never drives home
with the package still on board, and the controller sees exactly where the package was released.

Outcomes (`DeliveryResult.reason_code`) let the orchestration decide what to do with the package:
`connection_broken` (last will, stale state, or the controller lost the broker), `vehicle_error`
(a stopping error, a rejected order, a failed drop-off, or no completion within the time limit) and
`aborted` (an operator's cancelOrder that the robot confirmed FINISHED; the robot is then sent home from
where it stopped, along the trip's own path, and the result says whether it got there).

What counts against the order is what names it: an error fails the delivery only when its errorReferences
name this orderId or the header of an order message we sent. A robot that refuses an instant action (a cancel
in another version's shape, say) reports it in the same `errors` array, and that is no rejection of the
order: the robot is still driving it. Likewise a cancel ends the delivery only once the robot confirms it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.missions.results import DeliveryProof, DeliveryResult
from geofences.frame import LocalFrame
from vehicles.vda5050 import Action, Availability, OrderPlan, PlannedNode, RobotEvent, RobotHandle
from vehicles.vda5050.capabilities import action_problem

__all__ = ["DEFAULT_DROP_PARAMETERS", "DropAction", "RobotDeliveryPlan", "drive_delivery"]

log = logging.getLogger("lastmile.controller.missions.robot")

LatLon = tuple[float, float]
# errors a robot reports when it refuses an order (VDA 5050 2.1 §6.10.6 / 3.0 error types)
ORDER_REJECTIONS = frozenset({"orderError", "orderUpdateError", "noRouteError", "validationError"})
# the robot itself is gone; a controller-side broker outage (BROKER_DOWN) gets a grace period instead
LINK_LOST = frozenset({Availability.CONNECTION_BROKEN, Availability.OFFLINE, Availability.STALE})
WALKING_SPEED = 1.7  # m/s
HOME_SNAP_M = 0.5  # a robot this close to a node of its way home starts there (the order's allowed deviation)
ORDER_SEPARATOR = "~"  # orderId = <package_id>~<random>: a robot's state tells which package it carries
# Placeholders a drop parameter's value may be: replaced per package when the order is built.
PACKAGE_ID, PAYLOAD_KG = "{package_id}", "{payload_kg}"
DEFAULT_DROP_PARAMETERS: dict[str, Any] = {"loadId": PACKAGE_ID, "loadType": "parcel", "weight": PAYLOAD_KG}


@dataclass(frozen=True)
class DropAction:
    """The robot's own load-handover action: its actionType and actionParameters (from the station file).

    Robots define these themselves (their factsheet lists them); a value "{package_id}" becomes the
    package's id and "{payload_kg}" its mass in kg (a number), any other value is sent as it is.
    """

    action_type: str = "drop"
    parameters: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_DROP_PARAMETERS))
    blocking_type: str = "HARD"

    def __post_init__(self) -> None:
        if not self.action_type:
            raise ValueError("drop action_type: must be a non-empty string")
        if self.blocking_type not in ("NONE", "SOFT", "HARD"):
            raise ValueError(f"drop blocking_type={self.blocking_type!r}: expected NONE, SOFT or HARD")

    def parameters_for(self, package_id: str, payload_kg: float) -> dict[str, Any]:
        """The actionParameters for one package, placeholders filled in."""
        out: dict[str, Any] = {}
        for key, value in self.parameters.items():
            out[key] = package_id if value == PACKAGE_ID else payload_kg if value == PAYLOAD_KG else value
        return out


@dataclass
class RobotDeliveryPlan:
    """What the controller decided: which robot carries which package along which sidewalk path."""

    package_id: str
    vehicle_id: str
    station: LatLon  # (lat, lon)
    path_out: list[LatLon]  # station -> destination, both ends included
    path_back: list[LatLon]  # destination -> station, both ends included
    payload_kg: float

    def __post_init__(self) -> None:
        if not self.package_id:
            raise ValueError("package_id: must be a non-empty string")
        if not math.isfinite(self.payload_kg) or self.payload_kg < 0:
            raise ValueError(f"payload_kg={self.payload_kg!r}: must be a finite mass >= 0 kg")
        for name in ("path_out", "path_back"):
            path = getattr(self, name)
            if len(path) < 2:
                raise ValueError(f"{name}: needs at least 2 points (start and end), got {len(path)}")
            for i, (lat, lon) in enumerate(path):
                if not (
                    math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lon) and -180 <= lon <= 180
                ):
                    raise ValueError(f"{name}[{i}]=({lat!r}, {lon!r}): not a WGS84 (lat, lon) in degrees")

    @property
    def destination(self) -> LatLon:
        return self.path_out[-1]


def _order_plan(
    robot: RobotHandle,
    plan: RobotDeliveryPlan,
    frame: LocalFrame,
    order_id: str | None = None,
    drop_action: DropAction | None = None,
) -> tuple[OrderPlan, int, str]:
    """Nodes in the station's map frame; returns (order, index of the destination node, drop actionId).

    Node and action ids derive from the package and the orderId, so the same plan rebuilt later (to adopt
    an order after a controller restart) names the same nodes and the same drop action.
    """
    points = list(plan.path_out) + list(plan.path_back[1:])  # the destination is shared by both legs
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    xs, ys = frame.to_local(lons, lats)
    dest = len(plan.path_out) - 1
    order_id = order_id or f"{plan.package_id}{ORDER_SEPARATOR}{uuid.uuid4().hex[:8]}"
    drop_id = f"drop-{order_id}"
    spec = drop_action or DropAction()
    drop = Action(
        spec.action_type,
        drop_id,
        spec.blocking_type,
        spec.parameters_for(plan.package_id, plan.payload_kg),
        description=f"hand over package {plan.package_id}",
    )
    nodes = []
    for i, (x, y) in enumerate(zip(xs.tolist(), ys.tolist(), strict=True)):
        leg = "out" if i <= dest else "back"
        nodes.append(
            PlannedNode(f"{plan.package_id}-{leg}{i}", round(x, 3), round(y, 3), (drop,) if i == dest else ())
        )
    return OrderPlan(order_id, nodes, map_id=robot.map_id), dest, drop_id


def _trip_length(order: OrderPlan) -> float:
    return sum(math.hypot(b.x - a.x, b.y - a.y) for a, b in zip(order.nodes, order.nodes[1:], strict=False))


class _Delivery:
    """The running state of one drive_delivery call."""

    def __init__(
        self,
        robot: RobotHandle,
        plan: RobotDeliveryPlan,
        on_event: Callable[[dict[str, Any]], Any] | None,
        order_id: str | None = None,
        drop_action: DropAction | None = None,
    ) -> None:
        self.robot = robot
        self.plan = plan
        self.on_event = on_event
        self.frame = LocalFrame(*plan.station)
        self.drop_action = drop_action or DropAction()
        self.order, self.dest, self.drop_id = _order_plan(robot, plan, self.frame, order_id, self.drop_action)
        self.earlier_instants = set(robot.instant_sent)  # cancels sent before this trip are not about it
        self.drop_failed: str | None = None  # a drop FAILED while our cancel was out: it stands if that fails
        self.home: OrderPlan | None = None  # the way home after a confirmed cancel
        self.abort_reason: str | None = None
        self.events: list[dict[str, Any]] = []
        self.start_charge = robot.view.battery_percent if robot.view else None
        self.release_position: LatLon | None = None
        self.proof: DeliveryProof | None = None  # the drop's result and position (set with release_position)
        self.phase = "outbound"
        self.broker_lost_at: float | None = None  # loop time the controller lost the broker
        self.hold: tuple[float, str] | None = None  # (deadline, reason): give up unless the robot is back
        self.broker_grace_s = 30.0
        self.settle_s = 1.0

    def our_cancels(self) -> list[str]:
        """actionIds of the cancelOrders sent to the robot during this trip."""
        return [
            a for a in self.robot.instant_sent if a not in self.earlier_instants and self.robot.is_cancel(a)
        ]

    async def note(self, kind: str, **data: Any) -> None:
        entry = {"kind": kind, "vehicle": self.robot.serial_number, "package": self.plan.package_id, **data}
        self.events.append(entry)
        if self.on_event is not None:
            outcome = self.on_event(entry)
            if inspect.isawaitable(outcome):
                await outcome

    def energy(self) -> float | None:
        view = self.robot.view
        if self.start_charge is None or view is None:
            return None
        return round(max(0.0, (self.start_charge - view.battery_percent) / 100.0 * self.robot.battery_wh), 3)

    def position(self) -> LatLon | None:
        view = self.robot.view
        if view is None or view.position is None:
            return None
        lon, lat = self.frame.to_wgs84(view.position[0], view.position[1])
        return float(lat), float(lon)

    def result(self, delivered: bool, reason: str | None = None, code: str | None = None) -> DeliveryResult:
        return DeliveryResult(
            self.plan.package_id,
            self.robot.serial_number,
            delivered,
            reason,
            code,
            energy_used_wh=self.energy(),
            release_position=self.release_position,
            returned=self.phase in ("done", "home"),
            events=self.events,
            proof=(self.proof or self.inferred_proof()) if delivered else None,
        )

    def dropped(self, result: str | None) -> None:
        """The robot reported its drop action FINISHED: the proof is its own word and its `agvPosition`."""
        self.release_position = self.position()
        lat, lon = self.release_position or (None, None)
        words = f"{self.drop_action.action_type} FINISHED" + (f": {result}" if result else "")
        self.proof = DeliveryProof.now(
            vehicle_id=self.robot.serial_number, kind="robot", lat=lat, lon=lon, confirmed_by="vehicle",
            event=words, method=self.drop_action.action_type,
        )  # fmt: skip

    def inferred_proof(self) -> DeliveryProof:
        """A delivery whose drop report went unheard (seen after a restart): at the planned drop point."""
        lat, lon = self.release_position or self.plan.destination
        return DeliveryProof.now(
            vehicle_id=self.robot.serial_number, kind="robot", lat=lat, lon=lon, confirmed_by="inferred",
            event="the robot's order went past its drop node", method=self.drop_action.action_type,
        )  # fmt: skip

    def failed(self, reason: str, code: str) -> DeliveryResult:
        """A failure; if the package is already out of the robot it still counts as delivered."""
        if self.release_position is not None:
            return self.result(True, f"delivered, but on the way back: {reason}", code)
        return self.result(False, reason, code)

    def home_plan(self) -> OrderPlan | None:
        """After a confirmed cancel: an order from where the robot stopped back to the station along the
        trip's own path (the way it came while outbound, on along the way back once the parcel is out).
        None when the robot already stands at the station."""
        view = self.robot.view
        if view is None or view.position is None:
            return None
        ids = [n.node_id for n in self.order.nodes]
        k = ids.index(view.last_node_id) if view.last_node_id in ids else 0
        path = self.order.nodes[k::-1] if self.release_position is None else self.order.nodes[k + 1 :]
        x, y = view.position[0], view.position[1]
        path = [n for i, n in enumerate(path) if i > 0 or math.hypot(n.x - x, n.y - y) > HOME_SNAP_M]
        if not path:
            return None
        package = self.plan.package_id
        nodes = [PlannedNode(f"{package}-home-start", round(x, 3), round(y, 3))]
        nodes += [PlannedNode(f"{package}-home{i}", n.x, n.y) for i, n in enumerate(path)]
        order_id = f"home{ORDER_SEPARATOR}{package}{ORDER_SEPARATOR}{uuid.uuid4().hex[:8]}"
        return OrderPlan(order_id, nodes, map_id=self.order.map_id, max_speed=self.order.max_speed)

    def home_reached(self) -> bool:
        view, home = self.robot.view, self.home
        return (
            home is not None
            and view is not None
            and view.order_id == home.order_id
            and not view.node_ids_left
            and not view.driving
        )

    async def go_home(self, reason: str) -> DeliveryResult | None:
        """The robot confirmed the cancel where it stands: send it home (Carrier.abort's promise)."""
        self.abort_reason = reason
        home = self.home_plan()
        if home is None:  # it stopped at the station: nothing to drive
            self.phase = "home"
            return self.failed(reason, "aborted")
        self.home, self.phase = home, "homing"
        await self.robot.send_order(home, released_until=len(home.nodes) - 1)
        await self.note("return_home", order_id=home.order_id, nodes=len(home.nodes))
        return None

    def complete(self) -> bool:
        view = self.robot.view
        return (
            view is not None
            and view.order_id == self.order.order_id
            and view.order_update_id >= 1
            and not view.node_ids_left
            and not view.driving
        )

    async def handle(self, event: RobotEvent) -> DeliveryResult | None:
        """React to one robot event; a DeliveryResult ends the delivery."""
        robot, kind, data = self.robot, event.kind, event.data
        name = robot.serial_number
        if kind == "availability":
            availability = Availability(data["availability"])
            await self.note("availability", availability=availability.value, reason=data.get("reason"))
            now = asyncio.get_running_loop().time()
            if availability is Availability.AVAILABLE:
                self.broker_lost_at, self.hold = None, None
            elif availability is Availability.BROKER_DOWN:
                # The robot drives on without us (its order is released up to the door), so nothing can
                # be concluded while the broker is away: its own state, retained and republished when the
                # broker is back, decides (a drop FINISHED -> the way back is released, delivered). The
                # trip's time limit is what ends an outage that never ends.
                self.broker_lost_at = self.broker_lost_at or now
                self.hold = None
            elif availability in LINK_LOST:
                reason = f"robot {name} unreachable: {data.get('reason')}"
                if self.broker_lost_at is not None:
                    # Since a broker outage the robot has not been seen: while the broker is away, wait (its
                    # state decides once it is back); once it is back, the will left from the outage stands
                    # until the robot reconnects: give it `broker_grace_s` to do so.
                    back = robot.link.connected.is_set()
                    self.hold = (now + self.broker_grace_s, reason) if back else None
                else:
                    # a broker shutting down sends every client's will just before it drops us too:
                    # wait a moment to tell a lost robot from a lost broker
                    self.hold = (now + self.settle_s, reason)
            if availability is Availability.ERROR:
                await _best_effort_cancel(robot)
                return self.failed(
                    f"robot {name} stopped with an error: {data.get('reason')}", "vehicle_error"
                )
        elif kind == "error_raised":
            await self.note("robot_error", **data)
            references = data.get("references") or {}
            refused = [a for a in self.our_cancels() if robot.error_concerns_instant(references, a)]
            if refused and self.drop_failed is not None:  # the cancel was refused: the drop's failure stands
                return self.failed(self.drop_failed, "vehicle_error")
            if (
                self.home is not None
                and data["error_type"] in ORDER_REJECTIONS
                and robot.error_concerns_order(references, self.home.order_id)
            ):
                self.phase = "aborted"
                reason = f"{self.abort_reason}; it refused the way home: {data.get('description')}"
                return self.failed(reason, "aborted")
            if data["error_type"] in ORDER_REJECTIONS and robot.error_concerns_order(
                references, self.order.order_id
            ):
                # nothing to cancel: the robot never took the order (or this update)
                reason = f"robot {name} rejected the order: {data['error_type']}: {data.get('description')}"
                return self.failed(reason, "vehicle_error")
        elif kind == "node_reached":
            await self.note("node_reached", node_id=data["node_id"], position=self.position())
        elif kind == "action" and data["action_id"] == self.drop_id:
            await self.note("drop_off", status=data["status"], result=data.get("result"))
            if data["status"] == "FAILED":
                reason = f"robot {name}: drop-off failed: {data.get('result') or 'no reason given'}"
                if self.our_cancels():
                    # a robot cancelling the order fails its waiting actions first (VDA 5050 cancelOrder):
                    # the cancel's own outcome decides, this failure counts only if the cancel does not
                    self.drop_failed = reason
                    return None
                return self.failed(reason, "vehicle_error")
            if data["status"] == "FINISHED" and self.release_position is None:
                self.dropped(data.get("result"))
                self.phase = "returning"
                await robot.release(len(self.order.nodes) - 1)
                await self.note("return_released", order_id=self.order.order_id)
        elif (
            kind == "action"
            and robot.is_cancel(data["action_id"])
            and data["action_id"] not in self.earlier_instants
        ):
            await self.note("cancel", action_id=data["action_id"], status=data["status"])
            if data["status"] == "FAILED" and self.drop_failed is not None:
                return self.failed(self.drop_failed, "vehicle_error")
            if data["status"] == "FINISHED" and self.home is None:  # confirmed: it dropped the order
                where = robot.view.last_node_id if robot.view else "?"
                return await self.go_home(
                    f"aborted by an operator: robot {name} cancelled its order at {where}"
                )
        elif kind in ("order_sent", "header_gap", "stale", "connection"):
            await self.note(kind, **data)
        if self.phase == "homing" and self.home_reached():
            self.phase = "home"
            await self.note("returned", position=self.position(), energy_used_wh=self.energy())
            return self.failed(self.abort_reason or "aborted", "aborted")
        if self.phase == "returning" and self.complete():
            self.phase = "done"
            await self.note("returned", position=self.position(), energy_used_wh=self.energy())
            return self.result(True)
        return None


async def drive_delivery(
    robot: RobotHandle,
    plan: RobotDeliveryPlan,
    *,
    on_event: Callable[[dict[str, Any]], Any] | None = None,
    timeout_s: float | None = None,
    broker_grace_s: float = 30.0,
    settle_s: float = 1.0,
    drop_action: DropAction | None = None,
) -> DeliveryResult:
    """Drive one delivery to completion and report it; never raises for vehicle trouble.

    `on_event` (sync or async) gets every step as a dict (the same dicts end up in `result.events`).
    `timeout_s` bounds the whole trip; by default the walking time of the path x 3 + 10 minutes.
    A broker outage ends no delivery: the robot keeps driving meanwhile, and its own state when the
    broker is back decides (a drop it finished is a delivery, and its way back is released then); only
    `timeout_s` ends an outage that never ends. `broker_grace_s`: once the broker is back, how long a robot
    whose last will still stands may take to reconnect before the delivery is `connection_broken`.
    `settle_s`: after a robot's last will, how long to wait for it to come back before giving up (a broker
    shutting down sends every robot's will just before it disconnects the controller).
    `drop_action`: the robot's own handover action (default: `drop` with loadId, loadType, weight); when
    the robot has published a factsheet, a new trip whose action it does not list is refused before any
    order goes out (`vehicle_error`, the reason names the action or parameter).
    Returns delivered=True once the robot is back (or, with a reason_code, when it delivered but could
    not finish the way back); delivered=False with `connection_broken`, `vehicle_error` or `aborted`.
    """
    adopted = _running_order_of(robot, plan)
    run = _Delivery(robot, plan, on_event, order_id=adopted, drop_action=drop_action)
    run.broker_grace_s, run.settle_s = broker_grace_s, settle_s
    if not robot.available:
        code = "vehicle_error" if robot.availability is Availability.ERROR else "connection_broken"
        await run.note("refused", availability=robot.availability.value)
        return run.result(
            False, f"robot {robot.serial_number} not available: {robot.availability.value}", code
        )
    if adopted is None:
        spec = run.drop_action
        keys = spec.parameters_for(plan.package_id, plan.payload_kg)
        problem = action_problem(robot.info, robot.factsheet, spec.action_type, keys)
        if problem is not None:
            await run.note("refused", reason=problem)
            return run.result(
                False, f"robot {robot.serial_number} cannot hand over: {problem}", "vehicle_error"
            )
    limit = timeout_s if timeout_s is not None else _trip_length(run.order) / WALKING_SPEED * 3 + 600
    outcome = await _follow(run, robot, adopted, limit)
    if not outcome.returned:
        robot.forget_order()  # no re-sending an order that failed; the station decides what comes next
    return outcome


async def _follow(run: _Delivery, robot: RobotHandle, adopted: str | None, limit: float) -> DeliveryResult:
    with robot.events() as stream:
        if adopted is None:
            await robot.send_order(run.order, released_until=run.dest)
            await run.note(
                "order_sent", order_id=run.order.order_id, nodes=len(run.order.nodes), released_until=run.dest
            )
        else:
            outcome = await _adopt(run)
            if outcome is not None:
                return outcome
        try:
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(limit):
                while True:
                    wait = None if run.hold is None else max(0.0, run.hold[0] - loop.time())
                    try:
                        event = await stream.get(timeout_s=wait)
                    except TimeoutError:
                        if run.hold is None:
                            raise
                        await run.note("unreachable", reason=run.hold[1])
                        return run.failed(run.hold[1], "connection_broken")
                    outcome = await run.handle(event)
                    if outcome is not None:
                        return outcome
        except TimeoutError:
            await run.note("timeout", limit_s=limit, phase=run.phase)
            await _best_effort_cancel(robot)
            return run.failed(
                f"robot {robot.serial_number} did not finish within {limit:.0f} s", "vehicle_error"
            )


def _running_order_of(robot: RobotHandle, plan: RobotDeliveryPlan) -> str | None:
    """The orderId the robot reports for this package, if any (it kept driving while we were away)."""
    view = robot.view
    if view is None or not view.order_id.startswith(f"{plan.package_id}{ORDER_SEPARATOR}"):
        return None
    if view.node_ids_left:
        return view.order_id  # still on its way
    final = f"{plan.package_id}-back{len(plan.path_out) + len(plan.path_back) - 2}"
    if view.order_update_id >= 1 and view.last_node_id == final:
        return view.order_id  # finished the whole trip while we were away
    return None  # an order that was cancelled or refused: start a new one


async def _adopt(run: _Delivery) -> DeliveryResult | None:
    """Follow an order the robot already has, from where its state says it is."""
    robot, view, last = run.robot, run.robot.view, len(run.order.nodes) - 1
    assert view is not None
    await run.note("order_adopted", order_id=run.order.order_id, update_id=view.order_update_id)
    if view.order_update_id >= 1:  # the way back was released: the package is out
        robot.adopt_order(run.order, update_id=view.order_update_id, first_node=run.dest, released_until=last)
        run.phase, run.release_position = "returning", run.plan.destination
        if run.complete():
            run.phase = "done"
            await run.note("returned", position=run.position())
            return run.result(True, "completed while the controller was away")
        return None
    robot.adopt_order(run.order, update_id=0, first_node=0, released_until=run.dest)
    if view.action_states.get(run.drop_id) == "FINISHED":
        run.phase, run.release_position = "returning", run.plan.destination
        await robot.release(last)
        await run.note("return_released", order_id=run.order.order_id)
    return None


async def _best_effort_cancel(robot: RobotHandle) -> None:
    """Tell a misbehaving robot to drop the order; the delivery outcome does not depend on it."""
    try:
        async with asyncio.timeout(2.0):
            await robot.cancel_order()
    except Exception as exc:
        log.info("cancelOrder to %s not sent: %s", robot.serial_number, exc)
