"""One robot as the controller sees it: its latest state, availability, events, orders and instant actions.

A `RobotHandle` owns no connection: the fleet's single `FleetLink` feeds it messages (`_receive`) and
publishes for it. Orders in flight survive reconnects: the handle remembers the last order message it meant
the robot to have, and after every state it compares the robot's `orderId`/`orderUpdateId` with it and
re-sends when the robot is behind (VDA 5050 robots ignore an order whose orderId and orderUpdateId they
already have, so a duplicate is harmless).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vehicles.errors import LinkError
from vehicles.vda5050.codec import header
from vehicles.vda5050.errors import CancelRefused
from vehicles.vda5050.events import EventHub, EventStream, RobotEvent, wait_quietly
from vehicles.vda5050.orders import Action, OrderPlan, build_order_message, instant_action
from vehicles.vda5050.state import Availability, ConnectionState, RobotView, view_from_state
from vehicles.vda5050.versions import SUPPORTED_VERSIONS, VersionInfo

if TYPE_CHECKING:
    from vehicles.vda5050.link import FleetLink

__all__ = ["RobotHandle", "SentOrder"]

log = logging.getLogger("lastmile.vehicles.vda5050")


@dataclass
class SentOrder:
    """The order message the robot should have now, and when it last went out."""

    plan: OrderPlan
    update_id: int
    first_node: int
    released_until: int
    sent_at: float | None = None  # loop time of the last successful publish; None: not out yet
    sent_epoch: int = -1  # the link's connection number at that publish


SENT_MEMORY = 256  # how many sent order headers and instant actions an error may still be tied to


def _trim(sent: dict[Any, Any]) -> None:
    """Forget the oldest entries (dicts keep insertion order): errors name recent messages."""
    while len(sent) > SENT_MEMORY:
        del sent[next(iter(sent))]


class RobotHandle:
    """The controller's handle on one VDA 5050 robot (create it with `FleetLink.add_robot`)."""

    def __init__(
        self,
        link: FleetLink,
        info: VersionInfo,
        manufacturer: str,
        serial_number: str,
        map_id: str,
        *,
        battery_wh: float = 500.0,
    ) -> None:
        self.link = link
        self.info = info
        self.manufacturer = manufacturer
        self.serial_number = serial_number
        self.map_id = map_id
        self.battery_wh = battery_wh
        self.view: RobotView | None = None
        self.connection = ConnectionState.UNKNOWN
        self.factsheet: dict[str, Any] | None = None
        self.stale = False
        self.last_heard: float | None = None  # loop time of the last state/connection message
        self.order: SentOrder | None = None
        self.header_gaps = 0
        self._availability = Availability.UNKNOWN
        self._header_ids: dict[str, int] = {}
        self._out_header_ids: dict[str, int] = {}
        # what we sent, so an error's errorReferences can be tied to it (VDA 5050 errorReference keys)
        self.order_headers: dict[int, str] = {}  # headerId of an order message -> its orderId
        self.instant_sent: dict[str, tuple[str, int]] = {}  # actionId -> (actionType, headerId)
        self._hub = EventHub()
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"RobotHandle({self.serial_number!r}, version={self.info.version}, {self.availability})"

    # ---- availability and events -------------------------------------------------------------
    @property
    def availability(self) -> Availability:
        """May the controller give this robot work right now? If not, the reason."""
        return self._availability

    @property
    def available(self) -> bool:
        return self._availability is Availability.AVAILABLE

    def _compute_availability(self) -> tuple[Availability, str]:
        if not self.link.connected.is_set():
            return Availability.BROKER_DOWN, "the controller is not connected to the MQTT broker"
        if self.connection is ConnectionState.CONNECTION_BROKEN:
            return Availability.CONNECTION_BROKEN, "last will received: connection broken"
        if self.connection in (ConnectionState.OFFLINE, ConnectionState.HIBERNATING):
            return Availability.OFFLINE, f"robot reported {self.connection.value}"
        if self.view is None:
            return Availability.UNKNOWN, "no state received yet"
        if self.stale:
            return Availability.STALE, f"no state for more than {self.link.stale_after_s:g} s"
        stopping = self.view.errors_at(self.info.stopping_error_levels)
        if stopping:
            return Availability.ERROR, "; ".join(f"{e.error_type} ({e.level})" for e in stopping)
        return Availability.AVAILABLE, "online"

    def _refresh_availability(self) -> None:
        availability, reason = self._compute_availability()
        if availability is not self._availability:
            self._availability = availability
            self._emit("availability", availability=availability.value, reason=reason)

    def events(self, maxsize: int = 10_000) -> EventStream:
        """A stream of this robot's events (close it when done)."""
        return self._hub.stream(maxsize)

    def _emit(self, kind: str, **data: Any) -> None:
        event = RobotEvent(kind, self.serial_number, data)
        self._hub.emit(event)
        self.link._hub.emit(event)
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[RobotHandle], bool], timeout_s: float) -> None:
        """Return once `predicate(self)` holds (checked after every event); TimeoutError after `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not predicate(self):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{self.serial_number}: condition not met within {timeout_s:g} s")
            waiter = asyncio.ensure_future(self._changed.wait())
            if not await wait_quietly(waiter, remaining):
                waiter.cancel()

    # ---- receiving ---------------------------------------------------------------------------
    def _check_header(self, subtopic: str, header_id: int, retained: bool) -> None:
        """headerIds count up by one per topic; a gap means lost messages (or a robot restart)."""
        previous = self._header_ids.get(subtopic)
        self._header_ids[subtopic] = header_id
        if retained or previous is None or header_id == previous + 1:
            return
        self.header_gaps += 1
        self.link.stats.header_gaps += 1
        self._emit("header_gap", topic=subtopic, expected=previous + 1, got=header_id)

    def _receive(self, subtopic: str, message: dict[str, Any], retained: bool) -> None:
        self._check_header(subtopic, message["headerId"], retained)
        now = asyncio.get_running_loop().time()
        if subtopic == "state":
            self._apply_state(message, now)
        elif subtopic == "connection":
            state = ConnectionState.from_wire(message["connectionState"])
            if not retained:
                self.last_heard = now
            if state is not self.connection:
                self.connection = state
                self._emit("connection", state=state.value)
                if state is ConnectionState.ONLINE and self.order is not None:
                    self.order.sent_epoch = -1  # the robot reconnected: check its order on the next state
        elif subtopic == "factsheet":
            self.factsheet = message
            self._adopt_version(message["version"])
            self._emit("factsheet")
        elif subtopic == "visualization" and self.view is not None:
            pos = message.get(self.info.position_object)
            if pos is not None:
                self.view.position = (float(pos["x"]), float(pos["y"]), float(pos["theta"]))
        self._refresh_availability()

    def _adopt_version(self, claimed: str) -> None:
        """The robot's factsheet says which version it speaks; within the topics it uses (2.0.0 and 2.1.0
        share `uagv/v2`) that beats the station file, whose guess made a 2.0 robot refuse every cancel."""
        other = SUPPORTED_VERSIONS.get(claimed)
        if (
            other is None
            or other is self.info
            or (other.interface, other.major) != (self.info.interface, self.info.major)
        ):
            return
        log.warning(
            "robot %s: its factsheet says VDA 5050 %s, not the configured %s; speaking %s from now on",
            self.serial_number, claimed, self.info.version, claimed, extra={"vehicle": self.serial_number},
        )  # fmt: skip
        self._emit("version", version=claimed, configured=self.info.version)
        self.info = other

    def _apply_state(self, message: dict[str, Any], now: float) -> None:
        old = self.view
        new = view_from_state(self.info, message)
        self.view = new
        self.last_heard = now
        if self.connection in (ConnectionState.UNKNOWN, ConnectionState.CONNECTION_BROKEN):
            # a state proves the robot is connected (its ONLINE message may be older than our subscription)
            self.connection = ConnectionState.ONLINE
            self._emit("connection", state=ConnectionState.ONLINE.value, inferred=True)
        if self.stale:
            self.stale = False
        if old is None or (old.last_node_id, old.last_node_sequence_id) != (
            new.last_node_id,
            new.last_node_sequence_id,
        ):
            self._emit("node_reached", node_id=new.last_node_id, sequence_id=new.last_node_sequence_id)
        old_states = old.action_states if old else {}
        for action_id, status in new.action_states.items():
            if old_states.get(action_id) != status:
                result = new.action_results.get(action_id)
                self._emit("action", action_id=action_id, status=status, result=result)
        old_errors = {e.key for e in old.errors} if old else set()
        new_errors = {e.key: e for e in new.errors}
        for key, error in new_errors.items():
            if key not in old_errors:
                self._emit(
                    "error_raised",
                    error_type=error.error_type,
                    level=error.level,
                    description=error.description,
                    references=dict(error.references),
                )
        for key in old_errors - set(new_errors):
            self._emit("error_cleared", error_type=key[0], level=key[1], references=dict(key[2]))
        self._emit("state", header_id=new.header_id)
        self._reconcile_order(now)

    def _mark_stale(self, now: float) -> None:
        if not self.stale and self.last_heard is not None:
            self.stale = True
            self._emit("stale", silent_s=round(now - self.last_heard, 3))
            self._refresh_availability()

    # ---- orders ------------------------------------------------------------------------------
    def _reconcile_order(self, now: float) -> None:
        """Re-send the order if this state shows the robot does not have what we sent."""
        order, view = self.order, self.view
        if order is None or view is None or order.sent_at is None:
            return
        behind = view.order_id != order.plan.order_id or view.order_update_id < order.update_id
        if not behind:
            return
        reconnected = order.sent_epoch != self.link.epoch
        if reconnected or now - order.sent_at >= self.link.resend_after_s:
            full = view.order_id != order.plan.order_id
            order.sent_at, order.sent_epoch = now, self.link.epoch  # claim it: later states wait their turn
            self.link._spawn(self._publish_order(resend=True, full=full))

    def _next_header(self, subtopic: str) -> dict[str, Any]:
        header_id = self._out_header_ids.get(subtopic, -1) + 1
        self._out_header_ids[subtopic] = header_id
        return header(self.info, header_id, self.manufacturer, self.serial_number)

    async def _publish_order(self, *, resend: bool = False, full: bool = False) -> None:
        order = self.order
        if order is None:
            return
        # a robot that never got this orderId needs the whole order, from node 0, at the current release
        first = 0 if full else order.first_node
        head = self._next_header("order")
        self.order_headers[head["headerId"]] = order.plan.order_id
        _trim(self.order_headers)
        message = build_order_message(
            self.info,
            head,
            order.plan,
            update_id=order.update_id,
            first_node=first,
            released_until=order.released_until,
        )
        epoch = self.link.epoch
        order.sent_at = asyncio.get_running_loop().time()  # claim the slot so states in flight do not re-send
        order.sent_epoch = epoch
        try:
            await self.link.publish(self.info.topic(self.manufacturer, self.serial_number, "order"), message)
        except LinkError as exc:
            order.sent_at, order.sent_epoch = None, -1  # retried when the link comes back
            log.warning(
                "order %s not sent yet: %s", order.plan.order_id, exc, extra={"vehicle": self.serial_number}
            )
            return
        if resend:
            self.link.stats.orders_resent += 1
        self._emit(
            "order_sent", order_id=order.plan.order_id, update_id=order.update_id, resend=resend, full=full
        )

    async def send_order(self, plan: OrderPlan, *, released_until: int) -> None:
        """Send a new order (orderUpdateId 0) with nodes 0..released_until as its base.

        Never raises for a broker outage: the order is kept and sent when the link is back.
        """
        self.order = SentOrder(plan, update_id=0, first_node=0, released_until=released_until)
        await self._publish_order()

    async def release(self, released_until: int) -> None:
        """Order update: release nodes up to `released_until`, stitched at the previous base end."""
        order = self.order
        if order is None:
            raise ValueError("release: no order was sent to this robot")
        if released_until <= order.released_until:
            raise ValueError(
                f"released_until={released_until}: must be past the base end {order.released_until}"
            )
        self.order = SentOrder(
            order.plan,
            update_id=order.update_id + 1,
            first_node=order.released_until,
            released_until=released_until,
        )
        await self._publish_order()

    def adopt_order(self, plan: OrderPlan, *, update_id: int, first_node: int, released_until: int) -> None:
        """Take over an order the robot already runs (e.g. after a controller restart) without sending it.

        From here on it is reconciled like any order this handle sent: re-sent if the robot falls behind.
        """
        self.order = SentOrder(
            plan,
            update_id=update_id,
            first_node=first_node,
            released_until=released_until,
            sent_at=asyncio.get_running_loop().time(),
            sent_epoch=self.link.epoch,
        )

    def forget_order(self) -> None:
        """Stop following (and re-sending) the current order, e.g. after the robot refused it."""
        self.order = None

    def _pending_unsent(self) -> bool:
        return self.order is not None and self.order.sent_at is None

    # ---- what an error is about --------------------------------------------------------------
    def error_concerns_order(self, references: dict[str, str], order_id: str) -> bool:
        """Does an error with these errorReferences name order `order_id` (or an order message we sent)?

        Why so strict: a robot that refuses an instant action (or a message it could not parse at all)
        reports it in the same `errors` array; booking that against the running order failed deliveries the
        robot was still carrying out. An error naming no order is about no order.
        """
        if references.get("orderId") is not None:
            return references["orderId"] == order_id
        topic = references.get("topic")
        header_id = references.get("headerId")
        if header_id is not None and topic in (None, "order"):
            try:
                return self.order_headers.get(int(header_id)) == order_id
            except ValueError:
                return False
        return False

    def error_concerns_instant(self, references: dict[str, str], action_id: str) -> bool:
        """Does an error with these errorReferences name instant action `action_id` (or its message)?"""
        if references.get("actionId") is not None:
            return references["actionId"] == action_id
        sent = self.instant_sent.get(action_id)
        header_id = references.get("headerId")
        if sent is None or header_id is None or references.get("topic") != "instantActions":
            return False
        return header_id == str(sent[1])

    # ---- instant actions ---------------------------------------------------------------------
    async def instant(self, action_type: str, parameters: dict[str, Any] | None = None) -> str:
        """Send one instant action; returns its actionId (follow it in `view.action_states`)."""
        action = Action(action_type, f"{action_type}-{uuid.uuid4().hex[:12]}", "NONE", dict(parameters or {}))
        head = self._next_header("instantActions")
        message = instant_action(self.info, head, [action])
        topic = self.info.topic(self.manufacturer, self.serial_number, "instantActions")
        self.instant_sent[action.action_id] = (action_type, head["headerId"])
        _trim(self.instant_sent)
        await self.link.publish(topic, message)
        return action.action_id

    async def cancel_order(self) -> str:
        """cancelOrder: the robot stops at the next node and drops the rest of the order.

        Fire and forget: `cancel_confirmed` is the one that waits for the robot's answer.
        """
        return await self.instant("cancelOrder")

    def is_cancel(self, action_id: str) -> bool:
        """Whether `action_id` is a cancelOrder this handle sent."""
        sent = self.instant_sent.get(action_id)
        return sent is not None and sent[0] == "cancelOrder"

    async def cancel_confirmed(self, timeout_s: float = 10.0) -> str:
        """cancelOrder, and wait until the robot says it is done; returns the actionId.

        Raises CancelRefused when the robot reports the action FAILED, reports an error whose
        errorReferences name the action (or its instantActions message), or says nothing within
        `timeout_s`: in every one of those cases its order runs on, and the caller must not act as if not.
        """
        with self.events() as stream:
            action_id = await self.cancel_order()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while True:
                remaining = deadline - loop.time()
                try:
                    event = await stream.get(timeout_s=max(0.0, remaining))
                except TimeoutError:
                    raise CancelRefused(
                        f"cancelOrder {action_id}: no answer within {timeout_s:g} s; the order may still run",
                        vehicle=self.serial_number,
                        action_id=action_id,
                    ) from None
                data = event.data
                if event.kind == "action" and data["action_id"] == action_id:
                    if data["status"] == "FINISHED":
                        return action_id
                    if data["status"] == "FAILED":
                        raise CancelRefused(
                            f"cancelOrder {action_id} failed: {data.get('result') or 'no reason given'}",
                            vehicle=self.serial_number,
                            action_id=action_id,
                        )
                elif event.kind == "error_raised" and self.error_concerns_instant(
                    data.get("references") or {}, action_id
                ):
                    raise CancelRefused(
                        f"cancelOrder {action_id} refused: {data['error_type']}: {data.get('description')}",
                        vehicle=self.serial_number,
                        action_id=action_id,
                    )

    async def pause(self) -> str:
        return await self.instant("startPause")

    async def resume(self) -> str:
        return await self.instant("stopPause")

    async def request_state(self) -> str:
        return await self.instant("stateRequest")

    async def request_factsheet(self) -> str:
        return await self.instant("factsheetRequest")

    def silent_for(self) -> float | None:
        """Seconds since the robot was last heard (None if never)."""
        if self.last_heard is None:
            return None
        return asyncio.get_running_loop().time() - self.last_heard
