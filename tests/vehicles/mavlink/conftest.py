"""A scripted MAVLink vehicle over real sockets, for driver tests that need exact protocol misbehaviour.

It speaks ArduPilot's side of the wire with pymavlink (its own codec, sysid 1 by default): heartbeats,
COMMAND_LONG acks, parameters, and the mission protocol (with switches for duplicate / out-of-order
requests, ack errors, silence and read-back corruption). The real simulator (`sitl.copter`) is used in
tests/e2e; this peer exists because a faithful simulator never misbehaves on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from tests.relays import lossy_relay  # noqa: F401 (a fixture for the tests here)


@dataclass
class PeerOptions:
    duplicate_requests: bool = False  # ask for every item twice
    reverse_order: bool = False  # ask for items last-first
    final_ack: int = mavlink.MAV_MISSION_ACCEPTED
    silent_missions: bool = False  # never answer MISSION_COUNT
    lose_final_ack: bool = False  # the ACK ending an upload is lost on the way
    corrupt_readback: bool = False  # move item 1 by ~1 m when read back
    ignore_commands: int = 0  # drop this many COMMAND_LONGs before answering
    command_results: dict[int, int] = field(default_factory=dict)  # MAV_CMD -> MAV_RESULT
    prearm_reasons: list[str] = field(default_factory=list)  # refuse arming with these texts
    clamp: dict[str, float] = field(default_factory=dict)  # parameter -> value it is kept at
    heartbeats: bool = True
    rerequest_s: float = 0.3  # ArduPilot re-requests after 1 s; faster here to keep tests short


class ScriptedVehicle:
    """ArduPilot's side of the conversation, driven by `options`."""

    def __init__(self, sysid: int = 1) -> None:
        self.sysid = sysid
        self.mav = mavlink.MAVLink(None, srcSystem=sysid, srcComponent=1)
        self.mav.robust_parsing = True
        self.options = PeerOptions()
        self.outs: list[Callable[[bytes], None]] = []
        self.params: dict[str, float] = {
            "MAV_SYSID": float(sysid),  # ArduPilot 4.7's name (SYSID_THISMAV before)
            "FENCE_ENABLE": 0.0,
            "RTL_ALT": 1500.0,
        }
        self.stored: dict[int, list[Any]] = {0: [], 1: [], 2: []}
        self.custom_mode = 0
        self.armed = False
        self.received: list[Any] = []
        self.item_requests: list[int] = []
        self.got_message = asyncio.Event()
        self._upload: asyncio.Task[None] | None = None
        self._item_event = asyncio.Event()
        self._pending: list[int] = []
        self._upload_type = 0
        self._upload_items: dict[int, Any] = {}
        self._hb_task: asyncio.Task[None] | None = None

    # -- wire ----------------------------------------------------------------------------------------

    def send(self, msg: Any) -> None:
        buf = msg.pack(self.mav)
        self.mav.seq = (self.mav.seq + 1) % 256
        for out in list(self.outs):
            out(buf)

    def feed(self, data: bytes) -> None:
        for msg in self.mav.parse_buffer(data) or ():
            if msg.get_type() == "BAD_DATA":
                continue
            self.received.append(msg)
            self.got_message.set()
            handler = getattr(self, f"_on_{msg.get_type()}", None)
            if handler is not None:
                handler(msg)

    async def wait_received(self, predicate: Callable[[Any], bool], timeout_s: float = 3.0) -> Any:
        """Wait until a received message satisfies `predicate` (event-driven)."""
        async with asyncio.timeout(timeout_s):
            while True:
                for msg in self.received:
                    if predicate(msg):
                        return msg
                self.got_message.clear()
                await self.got_message.wait()

    def heartbeat(self) -> None:
        base = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (
            mavlink.MAV_MODE_FLAG_SAFETY_ARMED if self.armed else 0
        )
        self.send(
            self.mav.heartbeat_encode(
                mavlink.MAV_TYPE_QUADROTOR, mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA, base, self.custom_mode,
                mavlink.MAV_STATE_STANDBY,
            )
        )  # fmt: skip

    async def run_heartbeats(self, period: float = 0.1) -> None:
        while True:
            if self.options.heartbeats:
                self.heartbeat()
            await asyncio.sleep(period)

    # -- commands and params ---------------------------------------------------------------------------

    def _ack(self, command: int, result: int) -> None:
        self.send(self.mav.command_ack_encode(command, result))

    def _on_COMMAND_LONG(self, msg: Any) -> None:
        if self.options.ignore_commands > 0:
            self.options.ignore_commands -= 1
            return
        cmd = msg.command
        if cmd in self.options.command_results:
            self._ack(cmd, self.options.command_results[cmd])
            return
        if cmd == mavlink.MAV_CMD_COMPONENT_ARM_DISARM and msg.param1 == 1 and self.options.prearm_reasons:
            for text in self.options.prearm_reasons:
                self.send(self.mav.statustext_encode(mavlink.MAV_SEVERITY_CRITICAL, text.encode()))
            self._ack(cmd, mavlink.MAV_RESULT_FAILED)
            return
        if cmd == mavlink.MAV_CMD_COMPONENT_ARM_DISARM:
            self.armed = msg.param1 == 1
        elif cmd == mavlink.MAV_CMD_DO_SET_MODE:
            self.custom_mode = int(msg.param2)
        self._ack(cmd, mavlink.MAV_RESULT_ACCEPTED)
        self.heartbeat()

    def _param_value(self, name: str) -> None:
        names = sorted(self.params)
        self.send(
            self.mav.param_value_encode(
                name.encode(), self.params[name], mavlink.MAV_PARAM_TYPE_REAL32, len(names), names.index(name)
            )
        )

    def _on_PARAM_SET(self, msg: Any) -> None:
        if msg.param_id not in self.params:
            return  # ArduPilot is silent about unknown names
        self.params[msg.param_id] = self.options.clamp.get(msg.param_id, msg.param_value)
        self._param_value(msg.param_id)

    def _on_PARAM_REQUEST_READ(self, msg: Any) -> None:
        if msg.param_id in self.params:
            self._param_value(msg.param_id)

    # -- mission protocol -----------------------------------------------------------------------------

    def _on_MISSION_COUNT(self, msg: Any) -> None:
        if self.options.silent_missions:
            return
        order = list(range(msg.count))
        if self.options.reverse_order:
            order.reverse()
        self._pending = order
        self._upload_type = msg.mission_type
        self._upload_items = {}
        if self._upload is not None:
            self._upload.cancel()
        if not order:
            self.stored[msg.mission_type] = []
            self.send(self.mav.mission_ack_encode(255, 190, self.options.final_ack, msg.mission_type))
            return
        self._upload = asyncio.get_running_loop().create_task(self._run_upload())

    def _request_next(self) -> None:
        seq = self._pending[0]
        self.item_requests.append(seq)
        for _ in range(2 if self.options.duplicate_requests else 1):
            self.send(self.mav.mission_request_encode(255, 190, seq, self._upload_type))

    async def _run_upload(self) -> None:
        self._request_next()
        while self._pending:
            self._item_event.clear()
            try:
                async with asyncio.timeout(self.options.rerequest_s):
                    await self._item_event.wait()
            except TimeoutError:
                self._request_next()  # re-request, as ArduPilot's MissionItemProtocol::update does
        self.stored[self._upload_type] = [self._upload_items[i] for i in sorted(self._upload_items)]
        if not self.options.lose_final_ack:
            self.send(self.mav.mission_ack_encode(255, 190, self.options.final_ack, self._upload_type))
        self._upload = None

    def _on_MISSION_ITEM_INT(self, msg: Any) -> None:
        if self._upload is None:  # no upload in progress: ArduPilot answers MAV_MISSION_ERROR
            self.send(self.mav.mission_ack_encode(255, 190, mavlink.MAV_MISSION_ERROR, msg.mission_type))
            return
        if msg.mission_type != self._upload_type:
            return
        if not self._pending or msg.seq != self._pending[0]:
            self.send(
                self.mav.mission_ack_encode(255, 190, mavlink.MAV_MISSION_INVALID_SEQUENCE, msg.mission_type)
            )
            return
        self._upload_items[msg.seq] = msg
        self._pending.pop(0)
        self._item_event.set()
        if self._pending:
            self._request_next()

    def _on_MISSION_REQUEST_LIST(self, msg: Any) -> None:
        self.send(
            self.mav.mission_count_encode(255, 190, len(self.stored[msg.mission_type]), msg.mission_type)
        )

    def _on_MISSION_REQUEST_INT(self, msg: Any) -> None:
        items = self.stored[msg.mission_type]
        if msg.seq >= len(items):
            self.send(
                self.mav.mission_ack_encode(255, 190, mavlink.MAV_MISSION_INVALID_SEQUENCE, msg.mission_type)
            )
            return
        it = items[msg.seq]
        x = it.x + (90 if self.options.corrupt_readback and msg.seq == 1 else 0)
        self.send(
            self.mav.mission_item_int_encode(
                255, 190, msg.seq, it.frame, it.command, 0, it.autocontinue, it.param1, it.param2, it.param3,
                it.param4, x, it.y, it.z, msg.mission_type,
            )
        )  # fmt: skip


@dataclass
class PeerServer:
    vehicle: ScriptedVehicle
    url: str  # what the driver connects to
    close_clients: Callable[[], None]  # drop current TCP connections (the server keeps listening)


@contextlib.asynccontextmanager
async def _serve_tcp(vehicle: ScriptedVehicle) -> AsyncIterator[PeerServer]:
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        out = writer.write
        vehicle.outs.append(out)
        try:
            while data := await reader.read(65536):
                vehicle.feed(data)
        except OSError:
            pass
        finally:
            vehicle.outs.remove(out)
            writers.remove(writer)
            writer.close()

    def close_clients() -> None:
        for w in list(writers):
            w.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield PeerServer(vehicle, f"tcp:127.0.0.1:{port}", close_clients)
    finally:
        close_clients()
        server.close()


class _UdpPeer(asyncio.DatagramProtocol):
    def __init__(self, vehicle: ScriptedVehicle) -> None:
        self.vehicle = vehicle
        self.transport: asyncio.DatagramTransport | None = None
        self.addr: tuple[str, int] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.addr = addr
        self.vehicle.feed(data)

    def out(self, data: bytes) -> None:
        if self.transport is not None and self.addr is not None:
            self.transport.sendto(data, self.addr)


@contextlib.asynccontextmanager
async def _serve_udp(vehicle: ScriptedVehicle) -> AsyncIterator[PeerServer]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _UdpPeer(vehicle), local_addr=("127.0.0.1", 0)
    )
    vehicle.outs.append(proto.out)
    port = transport.get_extra_info("sockname")[1]
    try:
        yield PeerServer(vehicle, f"udpout:127.0.0.1:{port}", lambda: None)
    finally:
        transport.close()


@pytest.fixture
async def peer() -> AsyncIterator[Callable[..., Any]]:
    """Factory: `async with peer(transport="tcp"|"udp", sysid=1) as server:` -> PeerServer."""
    tasks: list[asyncio.Task[None]] = []

    @contextlib.asynccontextmanager
    async def make(transport: str = "tcp", sysid: int = 1) -> AsyncIterator[PeerServer]:
        vehicle = ScriptedVehicle(sysid)
        serve = _serve_tcp if transport == "tcp" else _serve_udp
        async with serve(vehicle) as server:
            task = asyncio.create_task(vehicle.run_heartbeats())
            tasks.append(task)
            try:
                yield server
            finally:
                task.cancel()

    yield make
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
