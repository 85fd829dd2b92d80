"""Mission, fence and rally storage, and the upload/download protocol ArduPilot speaks for them.

Protocol: libraries/GCS_MAVLink/MissionItemProtocol.cpp, followed closely:
- MISSION_COUNT starts an upload; the vehicle sends MISSION_REQUEST for item 0.. (ArduPilot sends
  MISSION_REQUEST, not _INT, in queued_request_send) and resends the request after 1 s without an item;
  after 8 s (upload_timeout_ms) without an item it gives up with MISSION_ACK OPERATION_CANCELLED.
- A second uploader is refused with DENIED while one upload runs; the same uploader may restart.
- count above capacity: NO_SPACE; an item with the wrong seq: INVALID_SEQUENCE (the upload continues);
  an item that cannot be stored: its error (UNSUPPORTED, UNSUPPORTED_FRAME, INVALID_PARAM5_X ...) and
  the upload ends; download during an upload: DENIED.
- MISSION and RALLY items are stored as they arrive (after MISSION_COUNT truncates the list), so a
  cancelled upload leaves the items received so far, as in ArduPilot; FENCE items are validated and
  stored only when the upload completes. MISSION_WRITE_PARTIAL_LIST re-uploads a range.
- Timers run in simulated time, as AP_HAL::millis() does in SITL.
MISSION item 0 is home (AP_Mission keeps home there; what a GCS uploads as item 0 is ignored and a
download returns the current home). FENCE and RALLY have no home item and need MAVLink 2
(mavlink2_requirement_met); their storage follows libraries/AC_Fence/AC_PolyFence_loader.cpp and
libraries/AP_Rally/AP_Rally.cpp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import fence
from sitl.copter.items import ABSOLUTE_FRAMES, FENCE, MISSION, RALLY, Item, validate

if TYPE_CHECKING:
    from sitl.copter.vehicle import SimCopter

REQUEST_RESEND_S = 1.0  # MissionItemProtocol::update: 1000 ms + stream slowdown
UPLOAD_TIMEOUT_S = 8.0  # MissionItemProtocol.h upload_timeout_ms
CAPACITY = {MISSION: 700, FENCE: 200, RALLY: 20}
TIMEOUT_NAMES = {MISSION: "Mission", FENCE: "Fence", RALLY: "Rally"}  # each protocol's timeout()
RECEIVED_TEXTS = {MISSION: "Flight plan received", RALLY: "Rally points received"}  # complete()


class Replier(Protocol):
    """The link a request came in on (answers go back there only)."""

    sending_mavlink1: bool

    def send(self, msg: mavlink.MAVLink_message) -> None: ...


class Transfer:
    """One MissionItemProtocol instance (one per mission type, shared by all links as in ArduPilot)."""

    def __init__(self, store: MissionStore, mission_type: int) -> None:
        self.store = store
        self.mission_type = mission_type
        self.receiving = False
        self.link: Replier | None = None
        self.dest = (0, 0)
        self.request_i = 0
        self.request_last = 0
        self.new_items: list[Item] = []
        self.last_receive = 0.0
        self.last_request = 0.0

    def _ack(self, link: Replier, dest: tuple[int, int], result: int) -> None:
        link.send(mavlink.MAVLink_mission_ack_message(dest[0], dest[1], result, self.mission_type))

    def _request(self) -> None:
        assert self.link is not None
        self.link.send(
            mavlink.MAVLink_mission_request_message(
                self.dest[0], self.dest[1], self.request_i, self.mission_type
            )
        )
        self.last_request = self.store.v.time_s

    def _mav2_ok(self, link: Replier, dest: tuple[int, int]) -> bool:
        if self.mission_type == MISSION or not link.sending_mavlink1:
            return True
        self.store.v.send_text("Need mavlink2 for item transfer", mavlink.MAV_SEVERITY_WARNING)
        self._ack(link, dest, mavlink.MAV_MISSION_UNSUPPORTED)
        return False

    def handle_count(self, link: Replier, src: tuple[int, int], count: int) -> None:
        if not self._mav2_ok(link, src):
            return
        if self.receiving and src != self.dest:
            self._ack(link, src, mavlink.MAV_MISSION_DENIED)
            return
        capacity = self.store.capacity(self.mission_type)
        if count > capacity:
            self._ack(link, src, mavlink.MAV_MISSION_NO_SPACE)
            self.store.v.send_text(f"Only {capacity} items are supported", mavlink.MAV_SEVERITY_WARNING)
            return
        self.new_items = []
        self.store.truncate(self.mission_type, count)
        if count == 0:
            self.receiving, self.link = False, None
            self._ack(link, src, self.store.complete(self.mission_type, []))
            return
        self._begin(link, src, 0, count - 1)

    def _begin(self, link: Replier, src: tuple[int, int], first: int, last: int) -> None:
        """MissionItemProtocol::init_send_requests."""
        self.receiving, self.link, self.dest = True, link, src
        self.request_i, self.request_last = first, last
        self.last_receive = self.store.v.time_s
        self._request()

    def handle_write_partial(self, link: Replier, src: tuple[int, int], start: int, end: int) -> None:
        """MISSION_WRITE_PARTIAL_LIST: re-upload items start..end of the stored list."""
        count = len(self.store.items_for(self.mission_type))
        if start > count or end > count or end < start:
            self.store.v.send_text("Flight plan update rejected", mavlink.MAV_SEVERITY_WARNING)
            self._ack(link, src, mavlink.MAV_MISSION_ERROR)
            return
        self.new_items = list(self.store.fence_items) if self.mission_type == FENCE else []
        self._begin(link, src, start, end)

    def handle_item(self, link: Replier, src: tuple[int, int], item: Item, seq: int) -> None:
        if not self.receiving or self.link is None:
            # GCS_MAVLINK::handle_mission_item with no upload in progress
            self._ack(link, src, mavlink.MAV_MISSION_ERROR)
            return
        if seq != self.request_i:
            self._ack(self.link, src, mavlink.MAV_MISSION_INVALID_SEQUENCE)
            return
        if src != self.dest:
            self._ack(self.link, src, mavlink.MAV_MISSION_DENIED)
            return
        result = validate(item, self.mission_type)
        if result == mavlink.MAV_MISSION_ACCEPTED and item.command == mavlink.MAV_CMD_DO_JUMP:
            # MissionItemProtocol_Waypoints.cpp: a jump to 0, or past both the mission and this upload
            jump = int(item.param1)
            if jump == 0 or (jump >= len(self.store.mission) and jump > self.request_last):
                result = mavlink.MAV_MISSION_ERROR
        if result != mavlink.MAV_MISSION_ACCEPTED:
            self._ack(self.link, src, result)
            self.receiving, self.link = False, None
            return
        # MISSION and RALLY items are written to storage as they arrive (replace_item / append_item in
        # MissionItemProtocol_Waypoints/_Rally.cpp); FENCE items are kept until the upload completes.
        target = self.new_items if self.mission_type == FENCE else self.store.items_for(self.mission_type)
        if seq < len(target):
            if not (self.mission_type == MISSION and seq == 0):  # item 0 stays home
                target[seq] = item
        elif seq == len(target):
            target.append(item)
        else:
            self._ack(self.link, src, mavlink.MAV_MISSION_ERROR)
            self.receiving, self.link = False, None
            return
        self.last_receive = self.store.v.time_s
        self.request_i += 1
        if self.request_i > self.request_last:
            link_, self.receiving, self.link = self.link, False, None
            result = self.store.complete(self.mission_type, self.new_items)
            if result == mavlink.MAV_MISSION_ACCEPTED and self.mission_type in RECEIVED_TEXTS:
                for msg in self.store.v.text_msgs(RECEIVED_TEXTS[self.mission_type]):  # _link.send_text
                    link_.send(msg)
            self._ack(link_, src, result)
            return
        self._request()

    def handle_request_list(self, link: Replier, src: tuple[int, int]) -> None:
        if not self._mav2_ok(link, src):
            return
        if self.receiving:
            self._ack(link, src, mavlink.MAV_MISSION_DENIED)
            return
        count = len(self.store.items_for(self.mission_type))
        link.send(mavlink.MAVLink_mission_count_message(src[0], src[1], count, self.mission_type))

    def handle_request(self, link: Replier, src: tuple[int, int], seq: int, want_int: bool) -> None:
        if not self._mav2_ok(link, src):
            return
        if self.receiving:
            self._ack(link, src, mavlink.MAV_MISSION_DENIED)
            return
        items = self.store.items_for(self.mission_type)
        if not 0 <= seq < len(items):
            if self.mission_type == MISSION:
                # MissionItemProtocol_Waypoints::get_item: tell the GCS the real size, then ERROR
                link.send(mavlink.MAVLink_mission_count_message(src[0], src[1], len(items), MISSION))
                self._ack(link, src, mavlink.MAV_MISSION_ERROR)
            elif self.mission_type == FENCE and seq == len(items):
                self._ack(link, src, mavlink.MAV_MISSION_ERROR)
            else:
                self._ack(link, src, mavlink.MAV_MISSION_INVALID_SEQUENCE)
            return
        current = 1 if (self.mission_type == MISSION and seq == self.store.current) else 0
        i = items[seq]
        if self.mission_type == FENCE:  # AC_PolyFence stores no frame or altitude
            i = Item(i.command, mavlink.MAV_FRAME_GLOBAL, i.param1, x=i.x, y=i.y)
        elif self.mission_type == RALLY:  # AP_Rally stores lat, lng, alt (relative)
            i = Item(i.command, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT, x=i.x, y=i.y, z=int(i.z))
        msg = i.to_msg(src, seq, self.mission_type, current)
        if not want_int:
            msg = mavlink.MAVLink_mission_item_message(
                src[0], src[1], seq, i.frame, i.command, current, i.autocontinue,
                i.param1, i.param2, i.param3, i.param4, i.lat, i.lon, i.z, self.mission_type,
            )  # fmt: skip
        link.send(msg)

    def handle_clear_all(self, link: Replier, src: tuple[int, int]) -> None:
        ok = not self.receiving
        if ok:
            self.store.clear(self.mission_type)
        self._ack(link, src, mavlink.MAV_MISSION_ACCEPTED if ok else mavlink.MAV_MISSION_ERROR)

    def step(self) -> None:
        """MissionItemProtocol::update: resend the request after 1 s, give up after 8 s."""
        if not self.receiving or self.link is None:
            return
        now = self.store.v.time_s
        if now - self.last_receive > UPLOAD_TIMEOUT_S:
            self.receiving = False
            for msg in self.store.v.text_msgs(f"{TIMEOUT_NAMES[self.mission_type]} upload timeout"):
                self.link.send(msg)
            self._ack(self.link, self.dest, mavlink.MAV_MISSION_OPERATION_CANCELLED)
            self.link = None
            self.new_items = []
            return
        if now - self.last_request > REQUEST_RESEND_S:
            self._request()

    def drop_link(self, link: Replier) -> None:
        """A link closed: stop talking to it (the upload then times out as it would in ArduPilot)."""
        if self.link is link:
            self.receiving, self.link = False, None


class MissionStore:
    """The vehicle's stored mission (item 0 = home), fence items and rally points."""

    def __init__(self, v: SimCopter) -> None:
        self.v = v
        self.mission: list[Item] = [self._home_item()]
        self.fence_items: list[Item] = []
        self.rally: list[Item] = []
        self.transfers = {t: Transfer(self, t) for t in (MISSION, FENCE, RALLY)}
        self.current = 0

    def _home_item(self) -> Item:
        lat, lon, alt, _ = self.v.home
        return Item(
            mavlink.MAV_CMD_NAV_WAYPOINT,
            mavlink.MAV_FRAME_GLOBAL,
            x=round(lat * 1e7),
            y=round(lon * 1e7),
            z=alt,
        )

    def capacity(self, mission_type: int) -> int:
        """max_items(): AP_Mission::num_commands_max() is 0 until AP_Mission::init runs during setup
        (`boot.py`); the fence's and rally's capacity is their storage size from the start."""
        if mission_type == MISSION and not self.v.boot.mission_ready:
            return 0
        return CAPACITY[mission_type]

    def items_for(self, mission_type: int) -> list[Item]:
        if mission_type == MISSION:
            self.mission[0] = self._home_item()
            return self.mission
        return self.fence_items if mission_type == FENCE else self.rally

    def truncate(self, mission_type: int, count: int) -> None:
        """MISSION_COUNT: AP_Mission::truncate / AP_Rally::truncate keep the first `count` items."""
        if mission_type == MISSION:
            del self.mission[max(count, 1) :]
        elif mission_type == RALLY:
            del self.rally[count:]

    def complete(self, mission_type: int, fence_items: list[Item]) -> int:
        """An upload finished: MAV_MISSION_RESULT (the fence is validated and loaded only now)."""
        if mission_type == MISSION:
            self.v.nav.auto.complete = False
            self.v.nav.auto.current = min(self.v.nav.auto.current, len(self.mission) - 1)
        elif mission_type == FENCE:
            result = fence.check_items(fence_items)
            if result != mavlink.MAV_MISSION_ACCEPTED:
                return result
            self.fence_items = list(fence_items)
            self.v.failsafes.fence.load(fence_items)
        return mavlink.MAV_MISSION_ACCEPTED

    def clear(self, mission_type: int) -> int:
        """MISSION_CLEAR_ALL."""
        if mission_type == FENCE:
            return self.complete(FENCE, [])
        self.truncate(mission_type, 0)
        return self.complete(mission_type, [])

    def rel_alt(self, item: Item) -> float:
        """Altitude above home of a location item."""
        if item.frame in ABSOLUTE_FRAMES:
            return item.z - self.v.home[2]
        return item.z

    def nav_count(self) -> int:
        return sum(1 for i in self.mission[1:] if i.command <= 95)

    def starts_with_takeoff(self) -> bool:
        """AP_Mission::starts_with_takeoff_cmd: the first NAV item is a takeoff."""
        for item in self.mission[1:]:
            if item.command <= 95:
                return item.command == mavlink.MAV_CMD_NAV_TAKEOFF
        return False

    def rally_points(self) -> list[tuple[float, float]]:
        return [(i.lat, i.lon) for i in self.rally]

    def announce_current(self, seq: int) -> None:
        self.current = seq
        self.v.emit(self.mission_current_msg())

    def mission_current_msg(self) -> mavlink.MAVLink_message:
        """MISSION_CURRENT as GCS_MAVLINK::send_mission_current (total excludes home)."""
        auto = self.v.nav.auto
        total = len(self.mission) - 1
        if total == 0:
            state = mavlink.MISSION_STATE_NO_MISSION
        elif auto.complete:
            state = mavlink.MISSION_STATE_COMPLETE
        elif auto.running and self.v.mode == "AUTO":
            state = mavlink.MISSION_STATE_ACTIVE
        elif auto.current > 0:
            state = mavlink.MISSION_STATE_PAUSED
        else:
            state = mavlink.MISSION_STATE_NOT_STARTED
        mission_mode = 1 if self.v.mode == "AUTO" else 0
        return mavlink.MAVLink_mission_current_message(self.current, total, state, mission_mode)

    def step(self) -> None:
        for t in self.transfers.values():
            t.step()
