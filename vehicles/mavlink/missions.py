"""The MAVLink mission protocol for missions, fences and rally points: upload, download, verify.

Upload (https://mavlink.io/en/services/mission.html): MISSION_COUNT, then the vehicle asks for each item
with MISSION_REQUEST_INT or MISSION_REQUEST (ArduPilot sends the latter, libraries/GCS_MAVLink/
MissionItemProtocol.cpp `queued_request_send`) and we answer whatever it asks, in any order and as often
as it asks (a lost item is simply asked for again). The transfer ends with MISSION_ACK. On our side a
silent link resends the last thing sent. If the final ACK is lost, the read-back decides: `upload_verified`
downloads the list and compares item by item, so success never depends on one lost packet.

ArduPilot answers stray items with MAV_MISSION_INVALID_SEQUENCE; that ACK is not the end of a transfer.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from vehicles.errors import LinkError
from vehicles.mavlink.connection import DroneConnection
from vehicles.mavlink.errors import MissionError, MissionMismatchError

__all__ = ["FENCE", "MISSION", "RALLY", "MissionItem", "Missions", "compare_items"]

MISSION = mavlink.MAV_MISSION_TYPE_MISSION
FENCE = mavlink.MAV_MISSION_TYPE_FENCE
RALLY = mavlink.MAV_MISSION_TYPE_RALLY

# Read-back frames: ArduPilot stores "relative"/"terrain" flags and hands back the non-INT frame numbers
# (libraries/AP_Mission/AP_Mission.cpp `mission_cmd_to_mavlink_int`), so compare frames modulo that.
_FRAME_FAMILY = {
    mavlink.MAV_FRAME_GLOBAL_INT: mavlink.MAV_FRAME_GLOBAL,
    mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT: mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT,
    mavlink.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT: mavlink.MAV_FRAME_GLOBAL_TERRAIN_ALT,
}
# Params the vehicle keeps per command (others are dropped by AP_Mission's packed storage and read back 0).
_KEPT_PARAMS: dict[int, tuple[int, ...]] = {
    mavlink.MAV_CMD_NAV_WAYPOINT: (1,),
    mavlink.MAV_CMD_NAV_PAYLOAD_PLACE: (1,),
    mavlink.MAV_CMD_DO_GRIPPER: (1, 2),
    mavlink.MAV_CMD_DO_WINCH: (1, 2, 3, 4),
    mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION: (1,),
    mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION: (1,),
    mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION: (1,),
    mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION: (1,),
}
_TRANSIENT = {mavlink.MAV_MISSION_DENIED, mavlink.MAV_MISSION_OPERATION_CANCELLED}
# MissionItemProtocol.cpp handle_mission_count: NO_SPACE with "Only %u items are supported"; while ArduPilot
# boots its mission storage is not up yet and says 0, which passes by itself.
_CAPACITY_TEXT = re.compile(r"Only (\d+) items are supported")
_POSITIONLESS = {mavlink.MAV_CMD_DO_GRIPPER, mavlink.MAV_CMD_DO_WINCH, mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH}


@dataclass(frozen=True)
class MissionItem:
    """One item, in degrees and metres; `command` is a MAV_CMD, `frame` a MAV_FRAME."""

    command: int
    lat: float = 0.0
    lon: float = 0.0
    alt: float = 0.0
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    frame: int = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
    autocontinue: int = 1

    def to_message(self, conn: DroneConnection, seq: int, mission_type: int) -> Any:
        """The MISSION_ITEM_INT for this item at position `seq`."""
        return conn.mav.mission_item_int_encode(
            conn.target_system, conn.target_component, seq, self.frame, self.command, 0, self.autocontinue,
            self.param1, self.param2, self.param3, self.param4,
            round(self.lat * 1e7), round(self.lon * 1e7), self.alt, mission_type,
        )  # fmt: skip

    @classmethod
    def from_message(cls, msg: Any) -> MissionItem:
        """From MISSION_ITEM_INT (x, y in 1e-7 degrees) or MISSION_ITEM (degrees)."""
        scale = 1e-7 if msg.get_type() == "MISSION_ITEM_INT" else 1.0
        return cls(
            command=msg.command, lat=msg.x * scale, lon=msg.y * scale, alt=msg.z,
            param1=msg.param1, param2=msg.param2, param3=msg.param3, param4=msg.param4,
            frame=msg.frame, autocontinue=msg.autocontinue,
        )  # fmt: skip


def compare_items(sent: Sequence[MissionItem], got: Sequence[MissionItem], mission_type: int) -> list[str]:
    """Differences that matter between an uploaded and a downloaded list (empty when they agree).

    Mission item 0 is home, which ArduPilot overwrites with the real home, so only its command is compared.
    Positions are compared at 1e-7 degrees (the wire resolution), altitudes at 1 cm, params as float32.
    """
    diffs: list[str] = []
    if len(sent) != len(got):
        return [f"{len(got)} items read back, {len(sent)} uploaded"]
    for seq, (a, b) in enumerate(zip(sent, got, strict=True)):
        if a.command != b.command:
            diffs.append(f"item {seq}: command {b.command} read back, {a.command} uploaded")
            continue
        if mission_type == MISSION and seq == 0:
            continue
        for i in _KEPT_PARAMS.get(a.command, ()):
            pa, pb = getattr(a, f"param{i}"), getattr(b, f"param{i}")
            if not (math.isnan(pa) or math.isclose(pa, pb, rel_tol=1e-6, abs_tol=1e-4)):
                diffs.append(f"item {seq}: param{i} {pb} read back, {pa} uploaded")
        if a.command in _POSITIONLESS:
            continue
        if (
            abs(round(a.lat * 1e7) - round(b.lat * 1e7)) > 1
            or abs(round(a.lon * 1e7) - round(b.lon * 1e7)) > 1
        ):
            diffs.append(
                f"item {seq}: position {b.lat:.7f},{b.lon:.7f} read back, {a.lat:.7f},{a.lon:.7f} uploaded"
            )
        if mission_type == MISSION:
            if abs(a.alt - b.alt) > 0.01:
                diffs.append(f"item {seq}: alt {b.alt} read back, {a.alt} uploaded")
            if _FRAME_FAMILY.get(a.frame, a.frame) != _FRAME_FAMILY.get(b.frame, b.frame):
                diffs.append(f"item {seq}: frame {b.frame} read back, {a.frame} uploaded")
    return diffs


class Missions:
    """Mission, fence and rally transfers for one drone."""

    def __init__(
        self, conn: DroneConnection, *, timeout_s: float = 1.0, retries: int = 8, boot_wait_s: float = 60.0
    ) -> None:
        self.conn = conn
        self.timeout_s = timeout_s
        self.retries = retries
        self.boot_wait_s = boot_wait_s  # how long a booting vehicle's "Only 0 items" is waited out
        self.capacity: int | None = None  # from the vehicle's last "Only N items are supported"
        conn.add_listener(self._on_message)

    def _on_message(self, msg: Any) -> None:
        if msg.get_type() == "STATUSTEXT" and (m := _CAPACITY_TEXT.search(msg.text)):
            self.capacity = int(m.group(1))

    def _err(self, mission_type: int, result: int | None, message: str) -> MissionError:
        return MissionError(mission_type, result, message, vehicle=self.conn.vehicle_id)

    async def upload(
        self, items: Sequence[MissionItem], mission_type: int = MISSION, *, restarts: int = 3
    ) -> bool:
        """Upload `items`; True when the vehicle ACKed ACCEPTED, False when every item went out but the final
        ACK never came (then only a read-back can tell). Raises MissionError on a refusal, LinkError when the
        vehicle stops asking.

        A vehicle that gave up waiting (MISSION_ACK OPERATION_CANCELLED: ArduPilot's 8 s upload timeout,
        which a lossy link or a sped-up simulator can reach) gets the whole transfer again, `restarts` times.
        A vehicle still booting (NO_SPACE after "Only 0 items are supported") is asked again every second
        for up to `boot_wait_s`.
        """
        attempt = 0
        booting_since: float | None = None
        while True:
            try:
                return await self._upload_once(items, mission_type)
            except MissionError as exc:
                if exc.result == mavlink.MAV_MISSION_NO_SPACE and self.capacity == 0 and items:
                    now = time.monotonic()
                    booting_since = booting_since or now
                    if now - booting_since < self.boot_wait_s:
                        self.capacity = None
                        # storage is up by the end of setup ("ArduPilot Ready"); at most a second per try
                        with contextlib.suppress(LinkError):
                            await self.conn.wait_for(
                                "STATUSTEXT", lambda m: m.text == "ArduPilot Ready", timeout_s=1.0
                            )
                        continue
                    raise self._err(
                        mission_type, exc.result, f"the vehicle still has no mission storage after "
                        f"{self.boot_wait_s:g} s (\"Only 0 items are supported\")",
                    ) from exc  # fmt: skip
                if exc.result != mavlink.MAV_MISSION_OPERATION_CANCELLED or attempt == restarts:
                    raise
                attempt += 1

    async def _upload_once(self, items: Sequence[MissionItem], mission_type: int) -> bool:
        conn = self.conn
        count = len(items)

        def count_msg() -> Any:
            return conn.mav.mission_count_encode(
                conn.target_system, conn.target_component, count, mission_type
            )

        def ours(m: Any) -> bool:
            return m.mission_type == mission_type

        last_sent: Any = count_msg()
        conn.send(last_sent)
        asked: set[int] = set()
        silent = 0
        resent_when_done = False
        while True:
            done = bool(count) and len(asked) == count
            fut = conn.expect(("MISSION_REQUEST_INT", "MISSION_REQUEST", "MISSION_ACK"), ours)
            try:
                msg = await conn.wait_for_future(fut, self.timeout_s)
            except TimeoutError:
                silent += 1
                # Once every item went out, a silent vehicle has most likely finished and its ACK was lost.
                if silent > (min(self.retries, 3) if done else self.retries):
                    if done:
                        return False
                    raise LinkError(
                        f"mission upload stalled after {len(asked)}/{count} items", vehicle=conn.vehicle_id
                    ) from None
                resent_when_done = done
                conn.send(last_sent)
                continue
            silent = 0
            if msg.get_type() == "MISSION_ACK":
                if msg.type == mavlink.MAV_MISSION_ACCEPTED:
                    if len(asked) == count:
                        return True
                    continue  # stale ACK from an earlier transfer
                if msg.type == mavlink.MAV_MISSION_INVALID_SEQUENCE:
                    continue  # a duplicate item we sent; the vehicle asks again
                if resent_when_done and msg.type == mavlink.MAV_MISSION_ERROR:
                    # "no upload in progress" (GCS_MAVLINK::handle_mission_item): the answer to our resend
                    # of the last item after the vehicle had already finished; the read-back decides.
                    return False
                raise self._err(mission_type, msg.type, f"upload refused after {len(asked)}/{count} items")
            seq = msg.seq
            if not 0 <= seq < count:
                raise self._err(mission_type, None, f"vehicle asked for item {seq} of {count}")
            asked.add(seq)
            last_sent = items[seq].to_message(conn, seq, mission_type)
            conn.send(last_sent)

    async def download(self, mission_type: int = MISSION) -> list[MissionItem]:
        """Read the vehicle's list: MISSION_REQUEST_LIST, then MISSION_REQUEST_INT per item, then our ACK."""
        conn = self.conn
        tgt, comp = conn.target_system, conn.target_component

        async def ask(msg: Any, types: tuple[str, ...], pred: Any) -> Any:
            def match(m: Any) -> bool:
                return m.mission_type == mission_type and (
                    (m.get_type() == "MISSION_ACK" and m.type != mavlink.MAV_MISSION_ACCEPTED) or pred(m)
                )

            reply = await conn.request(
                msg, (*types, "MISSION_ACK"), match, timeout_s=self.timeout_s, retries=self.retries
            )
            if reply.get_type() == "MISSION_ACK":
                raise self._err(mission_type, reply.type, "download refused")
            return reply

        count_msg = await ask(
            conn.mav.mission_request_list_encode(tgt, comp, mission_type), ("MISSION_COUNT",), lambda m: True
        )
        items = []
        for seq in range(count_msg.count):
            reply = await ask(
                conn.mav.mission_request_int_encode(tgt, comp, seq, mission_type),
                ("MISSION_ITEM_INT", "MISSION_ITEM"),
                lambda m, seq=seq: m.get_type() != "MISSION_ACK" and m.seq == seq,
            )
            items.append(MissionItem.from_message(reply))
        conn.send(conn.mav.mission_ack_encode(tgt, comp, mavlink.MAV_MISSION_ACCEPTED, mission_type))
        return items

    async def upload_verified(
        self, items: Sequence[MissionItem], mission_type: int = MISSION, *, attempts: int = 3
    ) -> list[MissionItem]:
        """Upload, read back and compare; retry the whole transfer on mismatch. Returns the read-back list."""
        diffs: list[str] = []
        for attempt in range(attempts):
            try:
                await self.upload(items, mission_type)
                got = await self.download(mission_type)
            except MissionError as exc:
                # DENIED: the vehicle still thinks an upload is running (our last item was lost with its ACK).
                if exc.result not in _TRANSIENT or attempt == attempts - 1:
                    raise
                diffs = [str(exc)]
                continue
            diffs = compare_items(items, got, mission_type)
            if not diffs:
                return got
        raise MissionMismatchError(mission_type, diffs, vehicle=self.conn.vehicle_id)

    async def clear(self, mission_type: int = MISSION) -> None:
        """Remove every item of `mission_type` (an empty upload)."""
        await self.upload([], mission_type)


def with_home(items: Sequence[MissionItem], home: MissionItem | None = None) -> list[MissionItem]:
    """Prefix the placeholder home item 0 that ArduCopter expects in a MISSION upload."""
    first = home or MissionItem(mavlink.MAV_CMD_NAV_WAYPOINT, frame=mavlink.MAV_FRAME_GLOBAL_INT)
    return [replace(first), *items]
