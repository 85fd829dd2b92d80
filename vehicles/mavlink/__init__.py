"""MAVLink drone driver: asyncio transports, pymavlink as codec, one `Drone` handle per vehicle.

link.py        TCP / UDP byte transports (the seam), reconnect with jittered backoff
connection.py  codec, GCS heartbeat, target discovery, request/response futures
telemetry.py   DroneState and events (mode, battery failsafe, fence breach, link lost/restored)
streams.py     SET_MESSAGE_INTERVAL (REQUEST_DATA_STREAM fallback)
params.py      PARAM_SET/PARAM_VALUE with confirmation
missions.py    mission / fence / rally upload, download, read-back compare
commands.py    COMMAND_LONG/ACK, arm (pre-arm reasons), modes, RTL/land/pause, gripper/winch
signing.py     SETUP_SIGNING and signed outgoing messages
fence.py       FencePlan: zones as FENCE mission items (polygons, circles, ceiling)
driver.py      DroneDriver (many drones, one loop) and the Drone handle
"""

from vehicles.mavlink.connection import DroneConnection
from vehicles.mavlink.driver import Drone, DroneDriver
from vehicles.mavlink.errors import (
    CommandError,
    FenceError,
    LinkError,
    MissionError,
    MissionMismatchError,
    NotReadyError,
    ParamError,
    PreArmError,
    ProtocolError,
)
from vehicles.mavlink.fence import FencePlan, fence_from_zones
from vehicles.mavlink.firmware import Firmware
from vehicles.mavlink.link import Link, TcpLink, UdpLink, open_link, parse_url
from vehicles.mavlink.missions import FENCE, MISSION, RALLY, MissionItem, compare_items
from vehicles.mavlink.signing import key_from_passphrase
from vehicles.mavlink.telemetry import (
    COPTER_MODES,
    ArmedChanged,
    BatteryFailsafe,
    DroneEvent,
    DroneState,
    FenceBreach,
    LinkLost,
    LinkRestored,
    MissionItemReached,
    ModeChanged,
    StatusText,
)

__all__ = [
    "COPTER_MODES",
    "FENCE",
    "MISSION",
    "RALLY",
    "ArmedChanged",
    "BatteryFailsafe",
    "CommandError",
    "Drone",
    "DroneConnection",
    "DroneDriver",
    "DroneEvent",
    "DroneState",
    "FenceBreach",
    "FenceError",
    "FencePlan",
    "Firmware",
    "Link",
    "LinkError",
    "LinkLost",
    "LinkRestored",
    "MissionError",
    "MissionItem",
    "MissionItemReached",
    "MissionMismatchError",
    "ModeChanged",
    "NotReadyError",
    "ParamError",
    "PreArmError",
    "ProtocolError",
    "StatusText",
    "TcpLink",
    "UdpLink",
    "compare_items",
    "fence_from_zones",
    "key_from_passphrase",
    "open_link",
    "parse_url",
]
