"""Building VDA 5050 orders (and their updates) from a robot's path in the station's map frame.

Conventions from the standard (VDA 5050 2.1 §6.6 / 3.0 "order"):
- nodes and edges share one sequenceId counter: node 0, edge 1, node 2, ... for the whole orderId;
- the *base* (released=true) is what the robot may drive now; the *horizon* (released=false) is shown
  ahead of time and released later by an order update;
- an update keeps the orderId, raises orderUpdateId, and starts at the *stitching node*: the last base node
  of the previous message, with the same nodeId and sequenceId (we send it without actions so nothing
  runs twice).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vehicles.vda5050.versions import VersionInfo

__all__ = ["Action", "OrderPlan", "PlannedNode", "build_order_message", "instant_action"]


@dataclass(frozen=True)
class Action:
    """A VDA 5050 action: drop-off on a node, or an instant action."""

    action_type: str
    action_id: str
    blocking_type: str = "HARD"
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str | None = None

    def to_wire(self, info: VersionInfo) -> dict[str, Any]:
        """The action object; 2.1.0 calls the free text `actionDescription`, 3.0.0 `actionDescriptor`."""
        out: dict[str, Any] = {
            "actionType": self.action_type,
            "actionId": self.action_id,
            "blockingType": self.blocking_type,
            "actionParameters": [{"key": k, "value": v} for k, v in self.parameters.items()],
        }
        if self.description:
            out[f"action{info.text_suffix}"] = self.description
        return out


@dataclass(frozen=True)
class PlannedNode:
    """One node of a robot's path: an id, a position in the map frame (m) and actions to run there."""

    node_id: str
    x: float
    y: float
    actions: tuple[Action, ...] = ()


@dataclass
class OrderPlan:
    """A whole trip as one orderId: all nodes in order; `released_until` nodes (by index) form the base."""

    order_id: str
    nodes: list[PlannedNode]
    map_id: str
    max_speed: float | None = None  # m/s, sent on every edge when set
    allowed_deviation_m: float = 0.5

    def __post_init__(self) -> None:
        if not self.order_id:
            raise ValueError("order_id: must be a non-empty string")
        if not self.nodes:
            raise ValueError("nodes: an order needs at least one node")
        for i, node in enumerate(self.nodes):
            if not (math.isfinite(node.x) and math.isfinite(node.y)):
                raise ValueError(f"nodes[{i}] ({node.node_id}): x and y must be finite metres")

    def sequence_id(self, node_index: int) -> int:
        """Node i has sequenceId 2i; the edge after it 2i+1."""
        return 2 * node_index


ANY_THETA = 3.141592654  # allowedDeviationTheta's maximum in the 2.x schemas: any orientation will do


def _heading(nodes: Sequence[PlannedNode], i: int) -> float:
    """The path's direction at node i (towards the next node; at the last node, the way it came), rad."""
    a, b = (nodes[i], nodes[i + 1]) if i + 1 < len(nodes) else (nodes[i - 1] if i else nodes[i], nodes[i])
    if math.hypot(b.x - a.x, b.y - a.y) < 1e-9:
        return 0.0
    return math.atan2(b.y - a.y, b.x - a.x)  # not rounded: pi rounded up would exceed the schema's maximum


def build_order_message(
    info: VersionInfo,
    head: dict[str, Any],
    plan: OrderPlan,
    *,
    update_id: int,
    first_node: int,
    released_until: int,
) -> dict[str, Any]:
    """One order message: nodes `first_node..end`, released up to and including node `released_until`.

    For an update (update_id > 0) `first_node` is the stitching node: it goes out without actions because
    the robot already has them from the message that released it.
    """
    last = len(plan.nodes) - 1
    if not 0 <= first_node <= released_until <= last:
        raise ValueError(
            f"released_until={released_until}: must lie between first_node={first_node} and {last}"
        )
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for i in range(first_node, last + 1):
        node = plan.nodes[i]
        released = i <= released_until
        stitching = update_id > 0 and i == first_node
        position: dict[str, Any] = {"x": node.x, "y": node.y, "mapId": plan.map_id}
        if info.edge_has_node_ids:  # 2.x: a radius in metres (2.0.0 spells it allowedDeviationXy)
            position[info.deviation_xy_field] = plan.allowed_deviation_m
        else:  # 3.0.0: an ellipse with semi-axes a, b and rotation theta
            position["allowedDeviationXY"] = {
                "a": plan.allowed_deviation_m,
                "b": plan.allowed_deviation_m,
                "theta": 0.0,
            }
        if info.node_theta:
            position["theta"] = _heading(plan.nodes, i)
            position["allowedDeviationTheta"] = ANY_THETA
        nodes.append(
            {
                "nodeId": node.node_id,
                "sequenceId": plan.sequence_id(i),
                "released": released,
                "nodePosition": position,
                "actions": [] if stitching else [a.to_wire(info) for a in node.actions],
            }
        )
        if i < last:
            nxt = plan.nodes[i + 1]
            edge: dict[str, Any] = {
                "edgeId": f"{node.node_id}->{nxt.node_id}",
                "sequenceId": plan.sequence_id(i) + 1,
                # an edge is released only when both of its nodes are
                "released": i + 1 <= released_until,
                "actions": [],
                "length": math.hypot(nxt.x - node.x, nxt.y - node.y),
            }
            if info.edge_has_node_ids:
                edge["startNodeId"] = node.node_id
                edge["endNodeId"] = nxt.node_id
            if plan.max_speed is not None:
                edge[info.edge_speed_field] = plan.max_speed
            edges.append(edge)
    return {**head, "orderId": plan.order_id, "orderUpdateId": update_id, "nodes": nodes, "edges": edges}


def instant_action(info: VersionInfo, head: dict[str, Any], actions: Sequence[Action]) -> dict[str, Any]:
    """An instantActions message; 3.0.0 requires blockingType NONE for instant actions, 2.x allows it.

    The array's key is `actions` (2.1.0, 3.0.0) or `instantActions` (2.0.0): a 2.0 robot refuses the other.
    """
    return {**head, info.instant_actions_key: [a.to_wire(info) for a in actions]}
