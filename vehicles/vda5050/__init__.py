"""VDA 5050 sidewalk-robot driver over MQTT (aiomqtt): one `FleetLink` per station, a `RobotHandle` per robot.

Versions 2.1.0 (`uagv/v2/...`) and 3.0.0 (`vda5050/v3/...`) are chosen per robot; the official schemas
ship in `schemas/` (MIT, see `schemas/LICENSE.txt`). See `docs/robots.md`.
"""

from vehicles.vda5050.codec import checker, decode, encode, load_schema, parse_topic, validator
from vehicles.vda5050.errors import BrokerUnavailable, MalformedMessage, OrderRejected
from vehicles.vda5050.events import EventStream, RobotEvent
from vehicles.vda5050.link import FleetLink, LinkStats
from vehicles.vda5050.orders import Action, OrderPlan, PlannedNode, build_order_message
from vehicles.vda5050.robot import RobotHandle
from vehicles.vda5050.state import Availability, ConnectionState, RobotError, RobotView
from vehicles.vda5050.versions import SUPPORTED_VERSIONS, VersionInfo, version_info

__all__ = [
    "SUPPORTED_VERSIONS",
    "Action",
    "Availability",
    "BrokerUnavailable",
    "ConnectionState",
    "EventStream",
    "FleetLink",
    "LinkStats",
    "MalformedMessage",
    "OrderPlan",
    "OrderRejected",
    "PlannedNode",
    "RobotError",
    "RobotEvent",
    "RobotHandle",
    "RobotView",
    "VersionInfo",
    "build_order_message",
    "checker",
    "decode",
    "encode",
    "load_schema",
    "parse_topic",
    "validator",
    "version_info",
]
