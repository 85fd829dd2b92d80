"""What differs between VDA 5050 2.0.0, 2.1.0 and 3.0.0, in one table: no other module branches on versions.

Every entry here was read from the official schemas shipped in `schemas/` (copied from
github.com/VDA5050/VDA5050, see `schemas/SOURCE.txt`):

- topic prefix: 2.x robots use `uagv/v2/<manufacturer>/<serialNumber>/<topic>`; 3.0.0 uses
  `vda5050/v3/<manufacturer>/<serialNumber>/<topic>` (interfaceName/majorVersion, VDA 5050 §6.1).
- connection.schema: the last will says `CONNECTIONBROKEN` (2.1.0) or `CONNECTION_BROKEN` (3.0.0);
  3.0.0 adds `HIBERNATING`.
- state.schema: battery in `batteryState.batteryCharge` (2.1.0) or `powerSupply.stateOfCharge` (3.0.0);
  position in `agvPosition` (2.1.0, `positionInitialized`) or `mobileRobotPosition` (3.0.0, `localized`);
  3.0.0 reports instant actions apart in `instantActionStates`; error levels WARNING/FATAL (2.1.0) or
  WARNING/URGENT/CRITICAL/FATAL (3.0.0).
- order.schema: 2.1.0 edges require `startNodeId`/`endNodeId`; 3.0.0 edges drop them (the sequenceIds
  place an edge between its nodes) and rename `maxSpeed` to `maximumSpeed`.
- instantActions.schema: 3.0.0 allows only blockingType `NONE` for instant actions (we use it for all).
- 2.0.0 against 2.1.0 (same `uagv/v2` topics, so the robot's configured version decides, not the topic):
  instant actions travel under `instantActions` (2.1.0 renamed the key `actions`; the official 2.0.0 schema
  file still shows the 1.x `actions`/`actionName` array but requires no key, and the 2.0.0 text and robots
  use `instantActions`/`actionType`); node positions spell `allowedDeviationXy`; action parameter values
  may not be objects; batteryState `reach` is an integer; state has no `maps`, errors no `errorHint`; and
  the state's nodeStates require `theta` in a nodePosition (optional in the order), which robots echo from
  the order: so 2.0.0 orders give every node a theta (the path's heading) that constrains nothing
  (`allowedDeviationTheta` pi), else a 2.0.0 robot's every state would be schema-invalid mid-order.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SUPPORTED_VERSIONS", "VersionInfo", "version_info"]


@dataclass(frozen=True)
class VersionInfo:
    """The wire details of one VDA 5050 version."""

    version: str  # the full version string sent in every header, e.g. "2.1.0"
    interface: str  # first topic level
    major: str  # second topic level
    connection_broken: str
    battery_object: str
    battery_charge: str
    position_object: str
    localized_field: str
    stopping_error_levels: frozenset[str]  # error levels after which the robot cannot go on with the order
    edge_has_node_ids: bool
    edge_speed_field: str
    separate_instant_action_states: bool
    text_suffix: str  # free-text fields: 2.1.0 `actionDescription`, 3.0.0 `actionDescriptor`
    instant_actions_key: str = "actions"  # 2.0.0: `instantActions`
    deviation_xy_field: str = "allowedDeviationXY"  # 2.0.0: `allowedDeviationXy`
    node_theta: bool = False  # 2.0.0: nodes carry theta, or the robot's echo in nodeStates is invalid

    def topic(self, manufacturer: str, serial_number: str, subtopic: str) -> str:
        """The full MQTT topic of one robot's subtopic (`order`, `state`, ...)."""
        return f"{self.interface}/{self.major}/{manufacturer}/{serial_number}/{subtopic}"

    @property
    def major_number(self) -> str:
        """The major version ("2" for 2.0.0 and 2.1.0): messages of another major are refused."""
        return self.version.split(".", 1)[0]


_V20 = VersionInfo(
    version="2.0.0",
    interface="uagv",
    major="v2",
    connection_broken="CONNECTIONBROKEN",
    battery_object="batteryState",
    battery_charge="batteryCharge",
    position_object="agvPosition",
    localized_field="positionInitialized",
    stopping_error_levels=frozenset({"FATAL"}),
    edge_has_node_ids=True,
    edge_speed_field="maxSpeed",
    separate_instant_action_states=False,
    text_suffix="Description",
    instant_actions_key="instantActions",
    deviation_xy_field="allowedDeviationXy",
    node_theta=True,
)
_V2 = VersionInfo(
    version="2.1.0",
    interface="uagv",
    major="v2",
    connection_broken="CONNECTIONBROKEN",
    battery_object="batteryState",
    battery_charge="batteryCharge",
    position_object="agvPosition",
    localized_field="positionInitialized",
    stopping_error_levels=frozenset({"FATAL"}),
    edge_has_node_ids=True,
    edge_speed_field="maxSpeed",
    separate_instant_action_states=False,
    text_suffix="Description",
)
_V3 = VersionInfo(
    version="3.0.0",
    interface="vda5050",
    major="v3",
    connection_broken="CONNECTION_BROKEN",
    battery_object="powerSupply",
    battery_charge="stateOfCharge",
    position_object="mobileRobotPosition",
    localized_field="localized",
    stopping_error_levels=frozenset({"CRITICAL", "FATAL"}),
    edge_has_node_ids=False,
    edge_speed_field="maximumSpeed",
    separate_instant_action_states=True,
    text_suffix="Descriptor",
)

SUPPORTED_VERSIONS: dict[str, VersionInfo] = {v.version: v for v in (_V20, _V2, _V3)}


def version_info(version: str) -> VersionInfo:
    """The table row for `version` ("2.0.0", "2.1.0" or "3.0.0"); a clear ValueError for anything else."""
    try:
        return SUPPORTED_VERSIONS[version]
    except KeyError:
        raise ValueError(
            f"version={version!r}: unsupported VDA 5050 version, expected one of {sorted(SUPPORTED_VERSIONS)}"
        ) from None
