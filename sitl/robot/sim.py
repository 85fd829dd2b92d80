"""One simulated VDA 5050 sidewalk robot: order handling, driving, actions, battery, errors. No I/O here.

The MQTT side lives in `client.py`; this class only turns received messages and elapsed simulated time into
state. Behaviour follows VDA 5050 2.1/3.0: a new orderId is accepted only when idle and standing at its
first node; an update (same orderId, higher orderUpdateId) must start at the last base node (stitching);
an equal orderUpdateId is a duplicate and ignored; the robot drives released nodes only and stops in front
of the horizon; node actions with blockingType HARD/SOFT stop driving while they run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sitl.robot.factsheet import factsheet
from sitl.robot.wire import WIRE, iso_now

__all__ = ["WALKING_SPEED", "SimRobot"]

WALKING_SPEED = 1.7  # m/s, about 6 km/h: sidewalk delivery robots move at walking pace
ACTION_DURATIONS = {"drop": 5.0, "pick": 5.0}  # simulated seconds


@dataclass
class _Node:
    node_id: str
    seq: int
    released: bool
    x: float | None
    y: float | None
    actions: list[str]  # actionIds
    theta: float | None = None


@dataclass
class _Edge:
    edge_id: str
    seq: int
    released: bool
    max_speed: float | None


@dataclass
class _Action:
    action_id: str
    action_type: str
    blocking: str
    params: dict[str, Any]
    status: str = "WAITING"
    result: str | None = None
    remaining_s: float = 0.0


@dataclass
class SimRobot:
    """A sidewalk robot at (x, y) metres in its station's map frame."""

    serial: str
    manufacturer: str = "lastmile"
    version: str = "2.1.0"
    x: float = 0.0
    y: float = 0.0
    map_id: str = "station"
    speed: float = WALKING_SPEED
    battery_wh: float = 500.0
    wh_per_km: float = 20.0
    battery_percent: float = 100.0
    low_battery_percent: float = 15.0
    max_payload_kg: float = 10.0
    theta: float = 0.0
    order_id: str = ""
    order_update_id: int = 0
    last_node_id: str = ""
    last_node_seq: int = 0
    paused: bool = False
    driving: bool = False
    current_speed: float = 0.0  # m/s on the current edge (its maxSpeed may be lower): the state's velocity
    odometer_m: float = 0.0
    distance_since_last_node: float = 0.0
    nodes: list[_Node] = field(default_factory=list)  # not yet reached, in order
    edges: list[_Edge] = field(default_factory=list)  # not yet finished, in order
    actions: dict[str, _Action] = field(default_factory=dict)  # order actions of the current order
    instant_actions: dict[str, _Action] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    loads: list[dict[str, Any]] = field(default_factory=list)
    header_ids: dict[str, int] = field(default_factory=dict)
    wants_factsheet: bool = False
    cancel_refusal: str | None = None  # test hook: refuse cancelOrder with this reason (e.g. mid-handover)
    factsheet_on_connect: bool = True  # test hook: False for a robot that sends one only when asked

    def __post_init__(self) -> None:
        if self.version not in WIRE:
            raise ValueError(f"version={self.version!r}: expected one of {sorted(WIRE)}")
        if self.speed <= 0:
            raise ValueError(f"speed={self.speed!r}: must be > 0 m/s")
        self.wire = WIRE[self.version]

    # ---- test hooks --------------------------------------------------------------------------
    def raise_error(self, error_type: str, level: str = "FATAL", description: str = "") -> None:
        """Report an error (e.g. `blockedPath`); FATAL (and 3.0.0 CRITICAL) stop the robot."""
        self.clear_error(error_type)
        self.errors.append(
            {"errorType": error_type, "errorLevel": level, "errorDescription": description or error_type}
        )

    def clear_error(self, error_type: str) -> None:
        self.errors = [e for e in self.errors if e["errorType"] != error_type]

    def set_battery(self, percent: float) -> None:
        """Jump the charge (to test low-battery handling without driving kilometres)."""
        self.battery_percent = max(0.0, min(100.0, percent))
        self._battery_errors()

    def report_refusal(self, error: dict[str, Any]) -> None:
        """A message the robot could not use (see `inbox`): the latest refusal per topic stays in `errors`."""
        topic = next(
            (r["referenceValue"] for r in error.get("errorReferences", []) if r["referenceKey"] == "topic"),
            None,
        )
        self.errors = [
            e
            for e in self.errors
            if not (
                e["errorType"] == "validationError"
                and {"referenceKey": "topic", "referenceValue": topic} in e.get("errorReferences", [])
            )
        ]
        self.errors.append(error)

    @property
    def stopped_by_error(self) -> bool:
        stopping = {"FATAL", "CRITICAL"} if self.version.startswith("3") else {"FATAL"}
        return any(e["errorLevel"] in stopping for e in self.errors)

    # ---- orders ------------------------------------------------------------------------------
    def order_active(self) -> bool:
        return bool(self.nodes) or any(
            a.status in ("WAITING", "INITIALIZING", "RUNNING") for a in self.actions.values()
        )

    def _reject(self, error_type: str, message: dict[str, Any], reason: str) -> None:
        self.clear_error(error_type)
        self.errors.append(
            {
                "errorType": error_type,
                "errorLevel": "WARNING",
                "errorDescription": reason,
                "errorReferences": [
                    {"referenceKey": "topic", "referenceValue": "order"},
                    {"referenceKey": "headerId", "referenceValue": str(message.get("headerId", ""))},
                    {"referenceKey": "orderId", "referenceValue": str(message.get("orderId", ""))},
                    {
                        "referenceKey": "orderUpdateId",
                        "referenceValue": str(message.get("orderUpdateId", "")),
                    },
                ],
            }
        )

    def _parse_nodes(self, message: dict[str, Any]) -> tuple[list[_Node], list[_Edge], list[_Action]]:
        nodes, actions = [], []
        for n in sorted(message["nodes"], key=lambda n: n["sequenceId"]):
            pos = n.get("nodePosition") or {}
            ids = []
            for a in n.get("actions", []):
                params = {p["key"]: p["value"] for p in a.get("actionParameters", [])}
                actions.append(_Action(a["actionId"], a["actionType"], a["blockingType"], params))
                ids.append(a["actionId"])
            node = _Node(n["nodeId"], n["sequenceId"], n["released"], pos.get("x"), pos.get("y"), ids)
            node.theta = pos.get("theta")
            nodes.append(node)
        edges = [
            _Edge(e["edgeId"], e["sequenceId"], e["released"], e.get("maxSpeed", e.get("maximumSpeed")))
            for e in sorted(message["edges"], key=lambda e: e["sequenceId"])
        ]
        return nodes, edges, actions

    def handle_order(self, message: dict[str, Any]) -> None:
        """Apply an order message (accept, stitch, ignore a duplicate, or reject with an error)."""
        order_id, update_id = message["orderId"], message["orderUpdateId"]
        if not message["nodes"]:
            self._reject("validationError", message, "order without nodes")
            return
        nodes, edges, actions = self._parse_nodes(message)
        if order_id != self.order_id:
            if self.order_active():
                self._reject("orderError", message, f"order {self.order_id} is still active")
                return
            first = nodes[0]
            if (
                first.x is not None
                and first.y is not None
                and math.hypot(first.x - self.x, first.y - self.y) > 2.0
            ):
                self._reject(
                    "noRouteError", message, f"first node {first.node_id} is not where the robot stands"
                )
                return
            self.errors = [
                e
                for e in self.errors
                if e["errorType"] not in ("orderError", "orderUpdateError", "noRouteError")
            ]
            self.order_id, self.order_update_id = order_id, update_id
            self.nodes, self.edges = nodes, edges
            self.actions = {a.action_id: a for a in actions}
            self.loads = [
                {"loadId": str(a.params["loadId"])}
                for a in actions
                if a.action_type == "drop" and "loadId" in a.params
            ]
            self._arrive(self.nodes.pop(0))
            return
        if update_id < self.order_update_id:
            self._reject(
                "orderUpdateError", message, f"orderUpdateId {update_id} < current {self.order_update_id}"
            )
            return
        if update_id == self.order_update_id:
            return  # a duplicate (e.g. re-sent after a reconnect): VDA 5050 says discard it
        base = [n for n in self.nodes if n.released]
        end = (base[-1].node_id, base[-1].seq) if base else (self.last_node_id, self.last_node_seq)
        if (nodes[0].node_id, nodes[0].seq) != end:
            self._reject(
                "orderUpdateError", message, f"update does not start at the base end {end[0]}/{end[1]}"
            )
            return
        stitch_seq = nodes[0].seq
        self.nodes = [n for n in self.nodes if n.seq <= stitch_seq and n.released]
        if self.nodes:  # the stitching node is still ahead: merge its new actions
            self.nodes[-1].actions += nodes[0].actions
        self.nodes += [n for n in nodes[1:]]
        self.edges = [e for e in self.edges if e.seq < stitch_seq and e.released] + [
            e for e in edges if e.seq > stitch_seq
        ]
        self.actions.update({a.action_id: a for a in actions})
        self.order_update_id = update_id

    def _arrive(self, node: _Node) -> None:
        """Node traversed: VDA 5050 drops it (and the edge before it) from the state; its actions start."""
        if node.x is not None and node.y is not None:
            self.x, self.y = node.x, node.y
        self.last_node_id, self.last_node_seq = node.node_id, node.seq
        self.distance_since_last_node = 0.0
        self.edges = [e for e in self.edges if e.seq > node.seq]
        for action_id in node.actions:
            action = self.actions[action_id]
            action.status = "RUNNING"
            action.remaining_s = ACTION_DURATIONS.get(action.action_type, 0.0)

    # ---- instant actions ---------------------------------------------------------------------
    def _refuse_instant(self, error_type: str, action: _Action, head: dict[str, Any], reason: str) -> None:
        """An instant action the robot will not run: FAILED, and an error naming it (so the master knows)."""
        action.status, action.result = "FAILED", reason
        self.errors = [
            e
            for e in self.errors
            if not (
                e["errorType"] == error_type
                and {"referenceKey": "actionType", "referenceValue": action.action_type}
                in e.get("errorReferences", [])
            )
        ]
        self.errors.append(
            {
                "errorType": error_type,
                "errorLevel": "WARNING",
                "errorDescription": reason,
                "errorReferences": [
                    {"referenceKey": "topic", "referenceValue": "instantActions"},
                    {"referenceKey": "headerId", "referenceValue": str(head.get("headerId", ""))},
                    {"referenceKey": "actionId", "referenceValue": action.action_id},
                    {"referenceKey": "actionType", "referenceValue": action.action_type},
                ],
            }
        )

    def handle_instant_actions(self, message: dict[str, Any]) -> None:
        for a in message[self.wire.instant_key]:
            params = {p["key"]: p["value"] for p in a.get("actionParameters", [])}
            action = _Action(a["actionId"], a["actionType"], a["blockingType"], params, status="FINISHED")
            kind = action.action_type
            if kind == "cancelOrder" and self.cancel_refusal is not None:
                self._refuse_instant("instantActionError", action, message, self.cancel_refusal)
            elif kind == "cancelOrder":
                if self.order_active():
                    self.nodes, self.edges = [], []
                    for pending in self.actions.values():
                        if pending.status in ("WAITING", "INITIALIZING", "RUNNING"):
                            pending.status, pending.result = "FAILED", "cancelled"
                    self.driving = False
                else:
                    self._refuse_instant("noOrderToCancel", action, message, "no order to cancel")
            elif kind == "startPause":
                self.paused, self.driving = True, False
            elif kind == "stopPause":
                self.paused = False
            elif kind == "factsheetRequest":
                self.wants_factsheet = True
            elif kind != "stateRequest":
                action.status, action.result = "FAILED", f"unsupported instant action {kind}"
            self.instant_actions[action.action_id] = action

    # ---- simulation --------------------------------------------------------------------------
    def _battery_errors(self) -> None:
        if self.battery_percent <= 0.0:
            self.raise_error("batteryEmpty", "FATAL", "battery empty")
        elif self.battery_percent < self.low_battery_percent:
            if not any(e["errorType"] == "lowBattery" for e in self.errors):
                self.raise_error("lowBattery", "WARNING", f"battery below {self.low_battery_percent:g} %")
        else:
            self.clear_error("lowBattery")

    def step(self, dt: float) -> bool:
        """Advance `dt` simulated seconds; True when something worth a state message happened."""
        changed = False
        was_driving = self.driving
        for action in self.actions.values():
            if action.status == "RUNNING":
                action.remaining_s -= dt
                if action.remaining_s <= 0 and not self.stopped_by_error:
                    action.status = "FINISHED"
                    if action.action_type == "drop":
                        self.loads = [
                            ld for ld in self.loads if ld.get("loadId") != str(action.params.get("loadId"))
                        ]
                        # VDA 5050 resultDescription: which load went, the robot's own proof of the hand-over
                        if "loadId" in action.params:
                            action.result = f"load {action.params['loadId']} handed over"
                    changed = True
        blocked = any(a.status == "RUNNING" and a.blocking in ("HARD", "SOFT") for a in self.actions.values())
        target = self.nodes[0] if self.nodes else None
        can_drive = (
            target is not None
            and target.released
            and not blocked
            and not self.paused
            and not self.stopped_by_error
        )
        self.driving = False
        self.current_speed = 0.0
        if can_drive and target is not None:
            tx = self.x if target.x is None else target.x
            ty = self.y if target.y is None else target.y
            dist = math.hypot(tx - self.x, ty - self.y)
            edge = self.edges[0] if self.edges else None
            speed = min(self.speed, edge.max_speed) if edge and edge.max_speed else self.speed
            move = min(dist, speed * dt)
            if dist > 1e-9:
                self.theta = math.atan2(ty - self.y, tx - self.x)
                self.x += (tx - self.x) * move / dist
                self.y += (ty - self.y) * move / dist
            self.odometer_m += move
            self.distance_since_last_node += move
            before = self.battery_percent
            self.battery_percent = max(0.0, before - 100.0 * move / 1000.0 * self.wh_per_km / self.battery_wh)
            self._battery_errors()
            self.driving = True
            self.current_speed = speed
            if move >= dist - 1e-9:
                self._arrive(self.nodes.pop(0))
                changed = True
        return changed or was_driving != self.driving

    # ---- messages ----------------------------------------------------------------------------
    def _header(self, topic: str) -> dict[str, Any]:
        header_id = self.header_ids.get(topic, -1) + 1
        self.header_ids[topic] = header_id
        return {
            "headerId": header_id,
            "timestamp": iso_now(),
            "version": self.version,
            "manufacturer": self.manufacturer,
            "serialNumber": self.serial,
        }

    def _action_state(self, a: _Action) -> dict[str, Any]:
        out: dict[str, Any] = {"actionId": a.action_id, "actionType": a.action_type, "actionStatus": a.status}
        if a.result:
            out[self.wire.action_result] = a.result
        return out

    def connection_message(self, state: str) -> dict[str, Any]:
        """`ONLINE`, `OFFLINE`, or "broken" for the last will (the version's own spelling)."""
        value = self.wire.broken if state == "broken" else state
        return {**self._header("connection"), "connectionState": value}

    def _node_position(self, n: _Node) -> dict[str, Any]:
        """A node state's optional nodePosition; 2.0.0's state schema requires theta in it, so without one
        from the order the position is left out rather than sent invalid."""
        if n.x is None or n.y is None or (self.version == "2.0.0" and n.theta is None):
            return {}
        position: dict[str, Any] = {"x": n.x, "y": n.y, "mapId": self.map_id}
        if n.theta is not None:
            position["theta"] = n.theta
        return {"nodePosition": position}

    def state_message(self) -> dict[str, Any]:
        w = self.wire
        order_states = [self._action_state(a) for a in self.actions.values()]
        instant_states = [self._action_state(a) for a in self.instant_actions.values()]
        range_m = max(0.0, self.battery_percent / 100.0 * self.battery_wh / self.wh_per_km * 1000.0)
        message: dict[str, Any] = {
            **self._header("state"),
            "orderId": self.order_id,
            "orderUpdateId": self.order_update_id,
            "lastNodeId": self.last_node_id,
            "lastNodeSequenceId": self.last_node_seq,
            "nodeStates": [
                {
                    "nodeId": n.node_id,
                    "sequenceId": n.seq,
                    "released": n.released,
                    **self._node_position(n),
                }
                for n in self.nodes
            ],
            "edgeStates": [
                {"edgeId": e.edge_id, "sequenceId": e.seq, "released": e.released} for e in self.edges
            ],
            "driving": self.driving,
            "paused": self.paused,
            "distanceSinceLastNode": round(self.distance_since_last_node, 3),
            "actionStates": order_states if w.separate_instant_states else order_states + instant_states,
            w.battery: {
                w.charge: round(self.battery_percent, 3),
                "charging": False,
                ("range" if w.separate_instant_states else "reach"): (
                    round(range_m, 1) if w.version != "2.0.0" else int(range_m)  # 2.0.0: an integer
                ),
            },
            "operatingMode": w.operating_mode,
            "errors": [dict(e) for e in self.errors],
            "safetyState": {w.estop_field: "NONE", "fieldViolation": False},
            w.position: {
                "x": round(self.x, 3),
                "y": round(self.y, 3),
                "theta": round(self.theta, 5),
                "mapId": self.map_id,
                w.localized: True,
            },
            "velocity": {
                "vx": round(self.current_speed * math.cos(self.theta), 3) if self.driving else 0.0,
                "vy": round(self.current_speed * math.sin(self.theta), 3) if self.driving else 0.0,
                "omega": 0.0,
            },
            "loads": [dict(ld) for ld in self.loads],
        }
        if w.separate_instant_states:
            message["instantActionStates"] = instant_states
        return message

    def factsheet_message(self) -> dict[str, Any]:
        """The robot's factsheet (type, size, speeds, supported actions) in its version's shape."""
        return factsheet(self, self._header("factsheet"))
