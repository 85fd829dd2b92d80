"""One MAVLink channel to the vehicle: codec state, stream schedule, and the socket it writes to.

pymavlink is used as a codec only: a `MAVLink` object per link (own sequence numbers and parser
state, shared signing state as ArduPilot shares one key across channels) whose `file` is this link, so
`mav.send(msg)` ends in `write()`. Transports: each TCP connection to the vehicle's SERIAL0 port is a link
(as SITL's SERIAL0 on 5760 + 10*i; several may be open at once) and so is each connection to its SERIAL1
port (5762 + 10*i) and each `udp_out` target. SERIAL0 is MAVLink channel 0, which ArduPilot trusts: it
accepts unsigned messages there even with a signing key (GCS_Signing.cpp accept_unsigned_callback, "always
accept channel 0, assumed to be secure channel. This is USB on ChibiOS boards"); the others are telemetry
links where signing is enforced.
Writes never block: when a TCP peer stops reading and more than WRITE_HIGH_WATER bytes are queued,
messages are dropped as ArduPilot drops them when a UART has no space (HAVE_PAYLOAD_SPACE).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import struct
from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import gcs, telemetry

if TYPE_CHECKING:
    from sitl.copter.vehicle import SimCopter

log = logging.getLogger("sitl.copter.link")
WRITE_HIGH_WATER = 1 << 20
_SIG_TIMESTAMP = struct.Struct("<IH")


class _Codec(mavlink.MAVLink):
    """pymavlink's codec with the C library's order of signature checks (mavlink_helpers.h
    `mavlink_signature_check`): the hash first, then the stream's timestamp, remembered only for a good
    packet. pymavlink 2.4 remembers the timestamp before comparing the hash, so one forged packet with a
    far-future timestamp would make the real ground station's stream look replayed; ArduPilot has no such
    hole, so neither may its stand-in."""

    def check_signature(self, msgbuf: bytearray, srcSystem: int, srcComponent: int) -> bool:
        signing = self.signing
        assert signing.secret_key is not None
        if hashlib.sha256(signing.secret_key + bytes(msgbuf[:-6])).digest()[:6] != bytes(msgbuf[-6:]):
            return False
        tlow, thigh = _SIG_TIMESTAMP.unpack(msgbuf[-12:-6])
        timestamp = tlow + (thigh << 32)
        stream = (msgbuf[-13], srcSystem, srcComponent)
        last = signing.stream_timestamps.get(stream)
        if last is not None:
            if timestamp <= last:
                return False  # "repeating old timestamp"
        elif timestamp + 6000 * 1000 < signing.timestamp:
            return False  # a new stream more than a minute old
        signing.stream_timestamps[stream] = timestamp
        signing.timestamp = max(signing.timestamp, timestamp)
        return True


class Link:
    """A channel: decode what arrives, answer, and send the streams the peer asked for."""

    def __init__(
        self, v: SimCopter, transport: asyncio.BaseTransport, name: str, peer=None, *, trusted: bool = False
    ) -> None:
        self.v = v
        self.trusted = trusted  # MAVLink channel 0 (SERIAL0): unsigned messages accepted under signing
        self.transport = transport
        self.name = name
        self.peer = peer  # UDP destination, None for TCP
        self.mav = _Codec(self, srcSystem=v.sysid, srcComponent=mavlink.MAV_COMP_ID_AUTOPILOT1)
        self.mav.robust_parsing = True
        self.mav.signing = v.signing
        self.sending_mavlink1 = False
        self.intervals: dict[int, tuple[float, float]] = {}  # msgid -> (interval s, next due sim time)
        self.deferred: list[int] = []  # REQUEST_MESSAGE during setup, sent once the main loop runs
        self.closed = False
        self.rx_messages = 0
        self.rx_rejected = 0

    # ---- pymavlink's file interface --------------------------------------------------------------
    def write(self, buf: bytes) -> None:
        if self.closed or self.transport.is_closing():
            return
        if self.peer is not None:
            self.transport.sendto(buf, self.peer)  # type: ignore[attr-defined]
        elif self.transport.get_write_buffer_size() < WRITE_HIGH_WATER:  # type: ignore[attr-defined]
            self.transport.write(buf)  # type: ignore[attr-defined]

    def send(self, msg: mavlink.MAVLink_message) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self.mav.send(msg)

    # ---- incoming ------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Decode bytes from the peer and act on each message; bad or unsigned packets are dropped."""
        for msg in self.mav.parse_buffer(data) or []:
            if msg.get_type() == "BAD_DATA":
                if "signature" in str(getattr(msg, "reason", "")):
                    self.rx_rejected += 1
                continue
            self.rx_messages += 1
            try:
                gcs.handle_message(self.v, self, msg)
            except Exception:  # one bad message must not kill the link
                log.exception("vehicle %d: error handling %s", self.v.sysid, msg.get_type())

    # ---- streams -------------------------------------------------------------------------------
    def set_interval(self, msgid: int, interval_us: float) -> bool:
        """MAV_CMD_SET_MESSAGE_INTERVAL: -1 stops, 0 = default rate (1 Hz here), else microseconds."""
        if msgid in telemetry.EVENT_MESSAGES:
            return True
        if msgid not in telemetry.BUILDERS:
            return False
        if interval_us < 0:
            self.intervals.pop(msgid, None)
            return True
        interval = 1.0 if interval_us == 0 else interval_us / 1e6
        self.intervals[msgid] = (interval, self.v.time_s)
        return True

    def request_data_stream(self, stream_id: int, rate_hz: int, start: int) -> None:
        """REQUEST_DATA_STREAM: a group (or ALL) at rate_hz; start_stop 0 or rate 0 stops it."""
        groups = telemetry.STREAM_GROUPS
        ids = (
            [m for g in groups.values() for m in g]
            if stream_id == mavlink.MAV_DATA_STREAM_ALL
            else groups.get(stream_id, ())
        )
        for msgid in ids:
            if start and rate_hz > 0:
                self.intervals[msgid] = (1.0 / rate_hz, self.v.time_s)
            else:
                self.intervals.pop(msgid, None)

    def request(self, msgid: int) -> None:
        """MAV_CMD_REQUEST_MESSAGE: send it now; during setup only what the delay callback sends, the rest
        once setup is done (GCS_MAVLINK::send_message queues, update_send sends when it may)."""
        if self.v.boot.initialising and msgid not in telemetry.SENT_DURING_SETUP:
            self.deferred.append(msgid)
            return
        msg = telemetry.build(self.v, msgid)
        if msg is not None:
            self.send(msg)

    def tick(self) -> None:
        """Send what is due at the vehicle's current simulated time; during setup no streams at all
        (GCS_MAVLINK::should_send_message_in_delay_callback)."""
        if self.v.boot.initialising:
            return
        now = self.v.time_s
        while self.deferred:
            self.request(self.deferred.pop(0))
        for msgid, (interval, due) in list(self.intervals.items()):
            if now + 1e-9 >= due:
                nxt = due + interval
                if nxt <= now:
                    nxt = now + interval
                self.intervals[msgid] = (interval, nxt)
                msg = telemetry.build(self.v, msgid)
                if msg is not None:
                    self.send(msg)

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(ValueError):
            self.v.outlets.remove(self)
        for transfer in self.v.missions.transfers.values():
            transfer.drop_link(self)
        if not self.transport.is_closing():
            self.transport.close()


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, v: SimCopter, trusted: bool) -> None:
        self.v = v
        self.trusted = trusted
        self.link: Link | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.link = Link(self.v, transport, f"tcp:{peer}", trusted=self.trusted)
        self.v.outlets.append(self.link)
        self.link.send(telemetry.heartbeat(self.v))
        log.debug("vehicle %d: client %s connected", self.v.sysid, peer)

    def data_received(self, data: bytes) -> None:
        if self.link is not None:
            self.link.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None


async def serve_tcp(v: SimCopter, host: str, port: int, *, trusted: bool = False) -> asyncio.Server:
    """Listen for ground stations; every connection is its own link (sequential or concurrent). `trusted`:
    the port is SERIAL0, MAVLink channel 0."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _TcpProtocol(v, trusted), host, port, reuse_address=True)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, v: SimCopter, peer: tuple[str, int]) -> None:
        self.v = v
        self.peer = peer
        self.link: Link | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.link = Link(self.v, transport, f"udp:{self.peer[0]}:{self.peer[1]}", peer=self.peer)
        self.v.outlets.append(self.link)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.link is not None:
            self.link.feed(data)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable: keep sending
        log.debug("vehicle %d: udp error %s", self.v.sysid, exc)


async def open_udp_out(v: SimCopter, target: str, host: str) -> Link:
    """A link that sends to `target` ("host:port" or "udp:host:port") from an ephemeral local port."""
    parts = target.removeprefix("udp:").removeprefix("udpout:").rsplit(":", 1)
    peer = (parts[0], int(parts[1]))
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(lambda: _UdpProtocol(v, peer), local_addr=(host, 0))
    assert proto.link is not None
    return proto.link
