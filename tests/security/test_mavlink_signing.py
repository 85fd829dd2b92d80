"""MAVLink 2 signing end to end, as an attacker on the same network tries it (issue 18, item 1).

Everything runs over real sockets with pymavlink on both ends: the built-in ArduCopter-compatible
simulator (`sitl.copter`, which keys itself from SETUP_SIGNING as ArduPilot's GCS_Signing.cpp does) on one
side, the controller's driver on the other, and raw pymavlink clients or datagrams as the third party.
SERIAL0 (channel 0) is where a key is given, as over USB; the controller and the attackers use SERIAL1 or
UDP, the links where a keyed drone enforces signing. Waits are on events and messages, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

os.environ.setdefault("MAVLINK20", "1")
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from controller.service import carriers_drone
from controller.service.carriers_drone import DroneCarrier, SecurityEvents
from sitl.copter import SimCopterFleet
from vehicles.mavlink import DroneConnection, DroneDriver, MissionItemReached, UdpLink, parse_url
from vehicles.mavlink.driver import Drone, provision_key
from vehicles.mavlink.signing import SigningState, signing_timestamp, use_signing
from vehicles.spec import VehicleKind, default_spec

M = mavlink
KEY = bytes(range(1, 33))
OTHER_KEY = bytes(range(101, 133))
FORCE_ARM = 21196  # MAV_CMD_COMPONENT_ARM_DISARM param2: arm regardless of checks


# -- helpers -----------------------------------------------------------------------------------------------


async def wait_for(predicate: Callable[[], bool], limit_s: float = 3.0) -> None:
    """Until `predicate()` holds, looked at again after each short turn of the loop's I/O: what it watches
    (counters of the simulator and the driver) has no event of its own to wait on."""
    async with asyncio.timeout(limit_s):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


class Client:
    """A third-party MAVLink client over TCP (pymavlink as codec): sends anything, keeps what it hears."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sysid: int) -> None:
        self.writer = writer
        self.mav = mavlink.MAVLink(self, srcSystem=sysid, srcComponent=190)
        self.mav.robust_parsing = True
        self.heard: list[Any] = []
        self._task = asyncio.create_task(self._read(reader))

    @classmethod
    async def connect(cls, port: int, sysid: int = 250) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, sysid)

    def write(self, buf: bytes) -> None:
        self.writer.write(buf)

    def sign_with(self, key: bytes, link_id: int = 3) -> None:
        signing = self.mav.signing
        signing.secret_key, signing.link_id, signing.sign_outgoing = key, link_id, True
        signing.timestamp = signing_timestamp()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            self.heard += [m for m in self.mav.parse_buffer(data) or () if m.get_type() != "BAD_DATA"]

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.writer.close()


def packet(msg: Any, *, sysid: int = 1, compid: int = 1, key: bytes | None = None, ts: int = 0) -> bytes:
    """One packed message as a given system would send it, signed with `key` when given."""
    mav = mavlink.MAVLink(None, srcSystem=sysid, srcComponent=compid)
    if key is not None:
        mav.signing.secret_key, mav.signing.sign_outgoing = key, True
        mav.signing.timestamp = ts or signing_timestamp()
    return msg.pack(mav)


def heartbeat(mode: int, armed: bool) -> Any:
    base = M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (M.MAV_MODE_FLAG_SAFETY_ARMED if armed else 0)
    return M.MAVLink_heartbeat_message(M.MAV_TYPE_QUADROTOR, M.MAV_AUTOPILOT_ARDUPILOTMEGA, base, mode, 4, 3)


@pytest.fixture
async def keyed() -> AsyncIterator[SimCopterFleet]:
    """One booted simulated copter at speed-up 20 that holds KEY, given over SERIAL0 (channel 0)."""
    async with SimCopterFleet(1, base_port=0, speedup=20, boot_s=0) as fleet:
        await provision_key(fleet.urls()[0], KEY, vehicle_id="d1")
        assert fleet.vehicles[0].signing.secret_key == KEY
        yield fleet


@pytest.fixture
def udp_port() -> int:
    """A free UDP port on loopback for the driver to listen on (the drone sends its telemetry there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def udp_drone(
    port: int, *, key: bytes | None = KEY, state: SigningState | None = None
) -> AsyncIterator[tuple[SimCopterFleet, DroneDriver, Drone]]:
    """A keyed copter sending its telemetry by UDP to the driver listening on `port`."""
    async with SimCopterFleet(1, base_port=0, speedup=20, boot_s=0, udp_out=[f"127.0.0.1:{port}"]) as fleet:
        await provision_key(fleet.urls()[0], KEY, vehicle_id="d1")
        async with DroneDriver(heartbeat_period_s=0.1) as driver:
            link = UdpLink(parse_url(f"udpin:127.0.0.1:{port}"))
            drone = await driver.add("d1", link, signing_key=key, signing_state=state)
            yield fleet, driver, drone


def send_udp(port: int, *packets: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for p in packets:
            s.sendto(p, ("127.0.0.1", port))


# -- the drone ignores third parties ---------------------------------------------------------------------


async def test_third_party_unsigned_arm_set_mode_and_mission_upload_to_a_keyed_drone_are_ignored(
    keyed: SimCopterFleet,
) -> None:
    """On the link the controller uses (SERIAL1), a stranger's forced ARM, SET_MODE / DO_SET_MODE GUIDED
    and mission upload get no answer and change nothing; the keyed controller's commands still work."""
    copter = keyed.vehicles[0]
    mode_before = copter.mode
    async with DroneDriver() as driver:
        drone = await driver.add("d1", keyed.telemetry_urls()[0], signing_key=KEY)
        stranger = await Client.connect(keyed.telemetry_ports[0])
        try:
            rejected_before = sum(link.rx_rejected for link in copter.outlets)
            s = stranger.mav
            s.command_long_send(1, 1, M.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, FORCE_ARM, 0, 0, 0, 0, 0)
            s.set_mode_send(1, M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 4)
            s.command_long_send(1, 1, M.MAV_CMD_DO_SET_MODE, 0, 1, 4, 0, 0, 0, 0, 0)
            s.mission_count_send(1, 1, 2, M.MAV_MISSION_TYPE_MISSION)
            for seq in range(2):
                s.mission_item_int_send(
                    1, 1, seq, M.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, M.MAV_CMD_NAV_WAYPOINT,
                    0, 1, 0, 0, 0, 0, 334_500_000, -1_122_500_000, 30, M.MAV_MISSION_TYPE_MISSION,
                )  # fmt: skip
            s.setup_signing_send(1, 1, bytes(32), 0)  # and an attempt to switch signing off
            await stranger.writer.drain()
            await wait_for(lambda: sum(link.rx_rejected for link in copter.outlets) >= rejected_before + 7)
            # the keyed controller is still obeyed, on the same kind of link
            await drone.set_mode("LOITER")
            assert copter.mode == "LOITER"
            await drone.set_mode(mode_before)
        finally:
            await stranger.close()
    answers = {m.get_type() for m in stranger.heard}
    assert not answers & {"COMMAND_ACK", "MISSION_REQUEST", "MISSION_REQUEST_INT", "MISSION_ACK"}
    assert not copter.armed
    assert copter.mode == mode_before
    assert len(copter.missions.mission) == 1  # home only: no upload happened
    assert copter.signing.secret_key == KEY


async def test_a_replayed_signed_command_is_refused_by_the_drone(keyed: SimCopterFleet) -> None:
    """A signed SET_MODE captured on the wire and sent again later (another connection) is refused: its
    stream's timestamp has moved on (mavlink_signature_check: "repeating old timestamp")."""
    copter = keyed.vehicles[0]
    owner = await Client.connect(keyed.telemetry_ports[0], sysid=255)
    owner.sign_with(KEY, link_id=2)
    captured = M.MAVLink_set_mode_message(1, M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 4).pack(owner.mav)
    try:
        owner.write(captured)  # GUIDED, accepted
        await wait_for(lambda: copter.mode == "GUIDED")
        owner.mav.set_mode_send(1, M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 5)  # LOITER, accepted
        await wait_for(lambda: copter.mode == "LOITER")
        replayer = await Client.connect(keyed.telemetry_ports[0], sysid=250)
        try:
            before = sum(link.rx_rejected for link in copter.outlets)
            replayer.write(captured)
            await wait_for(lambda: sum(link.rx_rejected for link in copter.outlets) > before)
        finally:
            await replayer.close()
    finally:
        await owner.close()
    assert copter.mode == "LOITER"


async def test_a_forged_far_future_timestamp_does_not_lock_the_controller_out(keyed: SimCopterFleet) -> None:
    """A wrongly signed packet claiming the controller's own stream with a timestamp a year ahead is
    dropped before its timestamp counts (ArduPilot checks the hash first), so the controller's next
    commands are still obeyed. pymavlink alone would remember that timestamp and refuse them all."""
    copter = keyed.vehicles[0]
    async with DroneDriver() as driver:
        drone = await driver.add("d1", keyed.telemetry_urls()[0], signing_key=KEY)
        forger = await Client.connect(keyed.telemetry_ports[0], sysid=255)  # the controller's own ids
        forger.sign_with(OTHER_KEY, link_id=drone.conn.mav.signing.link_id)
        forger.mav.signing.timestamp = signing_timestamp() + 365 * 86400 * 100_000
        before = sum(link.rx_rejected for link in copter.outlets)
        try:
            forger.mav.heartbeat_send(M.MAV_TYPE_GCS, M.MAV_AUTOPILOT_INVALID, 0, 0, 0)
            await wait_for(lambda: sum(link.rx_rejected for link in copter.outlets) > before)
            await drone.set_mode("GUIDED")
        finally:
            await forger.close()
    assert copter.mode == "GUIDED"


# -- the controller believes only the drone ---------------------------------------------------------------


async def test_spoofed_unsigned_heartbeat_and_mission_item_reached_over_udp_change_nothing(
    udp_port: int,
) -> None:
    """A stranger's unsigned HEARTBEAT (armed, RTL) and MISSION_ITEM_REACHED, sent as the drone (system 1)
    to the controller's UDP port, change nothing it shows, are counted, become one security event, and do
    not divert where the controller sends (its heartbeats keep reaching the drone)."""
    async with udp_drone(udp_port) as (fleet, _driver, drone):
        copter = fleet.vehicles[0]
        await wait_for(lambda: drone.state.mode is not None)
        shown = (drone.state.mode, drone.state.armed)
        events: list[dict[str, Any]] = []
        security = SecurityEvents()
        security.attach(events.append)
        carrier = DroneCarrier("d1", drone, default_spec(VehicleKind.DRONE), [], security=security)
        reached: list[Any] = []
        drone.telemetry.on_event(lambda e: reached.append(e) if isinstance(e, MissionItemReached) else None)
        peer = drone.conn.link.peer
        send_udp(
            udp_port,
            packet(heartbeat(6, armed=True)),
            packet(M.MAVLink_mission_item_reached_message(3)),
            packet(M.MAVLink_mission_current_message(3)),
        )
        await wait_for(lambda: drone.rejected.get("unsigned", 0) >= 3)
        # the drone's own signed messages still come in and still count
        seen = drone.conn.messages_in
        await wait_for(lambda: drone.conn.messages_in > seen + 3)
        assert (drone.state.mode, drone.state.armed) == shown
        assert carrier.snapshot().mode == shown[0]
        assert not reached
        assert drone.conn.link.peer == peer  # still the drone, not the spoofer
        assert not copter.armed
        assert len(events) == 1  # the first refusal at once; the rest wait for the next report
        assert events[0]["vehicle_id"] == "d1" and events[0]["reason"] == "unsigned"
        assert events[0]["kind"] == "mavlink_signing" and events[0]["claimed_source"] == "1/1"
        assert carrier.security is not None
        carrier.security.close()


async def test_wrong_key_and_replayed_telemetry_are_refused(udp_port: int, tmp_path: Path) -> None:
    """Packets signed with another key are refused ("bad signature"); a genuine signed HEARTBEAT captured
    earlier and replayed after the drone moved on is refused ("replayed") and does not undo what the
    controller shows."""
    sniffer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sniffer.bind(("127.0.0.1", 0))
    sniffer.setblocking(False)
    sniff_port = sniffer.getsockname()[1]
    udp_out = [f"127.0.0.1:{udp_port}", f"127.0.0.1:{sniff_port}"]
    try:
        async with SimCopterFleet(1, base_port=0, speedup=20, boot_s=0, udp_out=udp_out) as fleet:
            await provision_key(fleet.urls()[0], KEY, vehicle_id="d1")
            async with DroneDriver(heartbeat_period_s=0.1) as driver:
                link = UdpLink(parse_url(f"udpin:127.0.0.1:{udp_port}"))
                drone = await driver.add("d1", link, signing_key=KEY, set_rates=False)
                await drone.set_mode("STABILIZE")
                captured = await _capture_heartbeat(sniffer, mode=0)
                await drone.set_mode("LOITER")
                await wait_for(lambda: drone.state.mode == "LOITER")
                # the heartbeat the sniffer got was sent after the driver's last one of that time: wait
                # until the driver has heard something newer on the drone's stream, then replay
                seen = drone.conn.messages_in
                await wait_for(lambda: drone.conn.messages_in > seen + 2)
                send_udp(udp_port, captured)
                await wait_for(lambda: drone.rejected.get("replayed", 0) >= 1)
                send_udp(
                    udp_port,
                    packet(heartbeat(6, armed=True), key=OTHER_KEY),
                    packet(M.MAVLink_mission_item_reached_message(2), key=OTHER_KEY),
                )
                await wait_for(lambda: drone.rejected.get("bad signature", 0) >= 2)
                assert drone.conn.last_rejection is not None
                assert drone.conn.last_rejection.msg_type == "MISSION_ITEM_REACHED"
                # a forgery on the drone's own stream (link 0, 1/1) dated a year ahead is refused before
                # its date counts: the drone's next genuine messages are still believed, none "replayed"
                year_ahead = signing_timestamp() + 365 * 86400 * 100_000
                send_udp(udp_port, packet(heartbeat(6, armed=True), key=OTHER_KEY, ts=year_ahead))
                await wait_for(lambda: drone.rejected.get("bad signature", 0) >= 3)
                replayed, seen = drone.rejected.get("replayed", 0), drone.conn.messages_in
                await wait_for(lambda: drone.conn.messages_in > seen + 3)
                assert drone.rejected.get("replayed", 0) == replayed
                assert drone.state.mode == "LOITER" and not drone.state.armed
    finally:
        sniffer.close()


async def _capture_heartbeat(sock: socket.socket, *, mode: int) -> bytes:
    """The next signed HEARTBEAT of system 1 in `mode` arriving at `sock`, as raw bytes."""
    loop = asyncio.get_running_loop()
    parser = mavlink.MAVLink(None)
    async with asyncio.timeout(3.0):
        while True:
            data = await loop.sock_recv(sock, 65536)
            for msg in parser.parse_buffer(data) or ():
                raw = bytes(msg.get_msgbuf())
                if msg.get_type() == "HEARTBEAT" and msg.custom_mode == mode and raw[2] & 0x01:  # signed
                    return raw


# -- restarts ---------------------------------------------------------------------------------------------


async def test_signing_clock_and_streams_persist_across_a_driver_restart(
    udp_port: int, tmp_path: Path
) -> None:
    """The driver stores its signing clock and the drone's stream next to the key. Restarted, it sends
    past its old timestamps (so the drone still obeys it even when its clock had run ahead) and refuses a
    packet captured before the restart, which a fresh start would take as a new stream (under a minute)."""
    state_file = tmp_path / "d1.key.state"
    sniffer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sniffer.bind(("127.0.0.1", 0))
    sniffer.setblocking(False)
    udp_out = [f"127.0.0.1:{udp_port}", f"127.0.0.1:{sniffer.getsockname()[1]}"]
    try:
        async with SimCopterFleet(1, base_port=0, speedup=20, boot_s=0, udp_out=udp_out) as fleet:
            copter = fleet.vehicles[0]
            await provision_key(fleet.urls()[0], KEY, vehicle_id="d1")
            ahead = signing_timestamp() + 120 * 100_000  # our clock ran two minutes ahead
            async with DroneDriver(heartbeat_period_s=0.1) as driver:
                link = UdpLink(parse_url(f"udpin:127.0.0.1:{udp_port}"))
                drone = await driver.add(
                    "d1", link, signing_key=KEY, signing_state=SigningState(state_file), set_rates=False
                )
                drone.conn.mav.signing.timestamp = ahead
                await drone.set_mode("GUIDED")  # the drone now knows our stream at `ahead`
                captured = await _capture_heartbeat(sniffer, mode=4)
            saved = SigningState(state_file)
            first, streams = saved.load(KEY)
            assert saved.saved_timestamp > ahead and first > saved.saved_timestamp
            assert any(sysid == 1 for (_link, sysid, _comp) in streams)
            assert state_file.stat().st_mode & 0o777 == 0o600
            # restarted with the stored state: obeyed, and the old packet is refused
            async with DroneDriver(heartbeat_period_s=0.1) as driver:
                link = UdpLink(parse_url(f"udpin:127.0.0.1:{udp_port}"))
                drone = await driver.add(
                    "d1", link, signing_key=KEY, signing_state=SigningState(state_file), set_rates=False
                )
                assert drone.conn.mav.signing.timestamp > ahead
                await drone.set_mode("LOITER")
                assert copter.mode == "LOITER"
                send_udp(udp_port, captured)
                await wait_for(lambda: drone.rejected.get("replayed", 0) >= 1)
                assert drone.state.mode == "LOITER"
            # before it hears a word from the drone, a restarted driver already signs past its old clock;
            # from the wall clock alone it would sign two minutes in the past: replays, to the drone
            fresh, stateless = DroneConnection("udpin:127.0.0.1:0"), DroneConnection("udpin:127.0.0.1:0")
            use_signing(fresh, KEY, state=SigningState(state_file))
            use_signing(stateless, KEY)
            assert fresh.mav.signing.timestamp > ahead > stateless.mav.signing.timestamp
    finally:
        sniffer.close()


async def test_the_state_file_refuses_nothing_it_should_not(tmp_path: Path) -> None:
    """A state file of another key keeps the clock but not the streams; a crash (not saved clean) adds
    the save period to the stored clock, so a timestamp used after the last save is never used again."""
    state = SigningState(tmp_path / "s.state", save_period_s=5.0)

    class Signing:
        timestamp = signing_timestamp() + 1000 * 100_000
        stream_timestamps: ClassVar[dict[tuple[int, int, int], int]] = {(0, 1, 1): 42}

    state.save(KEY, Signing, clean=False)
    first, streams = SigningState(state.path).load(KEY)
    assert streams == {(0, 1, 1): 42}
    assert first >= Signing.timestamp + 5 * 100_000
    first, streams = SigningState(state.path).load(OTHER_KEY)
    assert streams == {} and first > Signing.timestamp
    state.save(KEY, Signing, clean=True)
    first, _ = SigningState(state.path).load(KEY)
    assert first == Signing.timestamp + 1


async def test_a_flood_of_refusals_becomes_few_security_events(
    udp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refusals are reported at once, then summed per drone and reason over the report period; what
    happens before the station's event bus exists is kept and handed over when it is attached."""
    monkeypatch.setattr(carriers_drone, "SECURITY_REPORT_S", 0.3)
    async with udp_drone(udp_port) as (_fleet, _driver, drone):
        security = SecurityEvents()
        carrier = DroneCarrier("d1", drone, default_spec(VehicleKind.DRONE), [], security=security)
        assert carrier.security is not None
        send_udp(udp_port, *(packet(heartbeat(6, armed=True)) for _ in range(5)))
        await wait_for(lambda: drone.rejected.get("unsigned", 0) >= 5)
        events: list[dict[str, Any]] = []
        security.attach(events.append)  # the bus arrives late: the first report was kept for it
        assert [e["refused"] for e in events] == [1]
        await wait_for(lambda: len(events) == 2)  # the other four, summed, one period later
        assert events[1]["refused"] == 4 and events[1]["refused_total"] == 5
        assert events[1]["last_msg_type"] == "HEARTBEAT"
        carrier.security.close()


@pytest.mark.ardupilot
@pytest.mark.timeout(300)
async def test_on_the_copter_target_a_stranger_neither_commands_nor_locks_out_a_keyed_drone() -> None:
    """The same attack against whichever copter target is selected: real ArduCopter SITL when
    ARDUPILOT_SITL is set (GCS_Signing.cpp itself), else the built-in simulator. Judged by what the keyed
    controller hears, signed: no ACK for the stranger, not armed, mode unchanged, still commanded."""
    from sitl.ardupilot import open_copters

    async with open_copters(1, speedup=10) as copters:
        await provision_key(copters.urls()[0], KEY, vehicle_id="d1", connect_timeout_s=60)
        async with DroneDriver() as driver:
            drone = await driver.add("d1", copters.telemetry_urls()[0], signing_key=KEY)
            await drone.set_mode("LOITER")
            port = int(copters.telemetry_urls()[0].rsplit(":", 1)[1])
            stranger = await Client.connect(port, sysid=250)
            forger = await Client.connect(port, sysid=255)  # the controller's ids, another key
            forger.sign_with(OTHER_KEY, link_id=drone.conn.mav.signing.link_id)
            forger.mav.signing.timestamp = signing_timestamp() + 365 * 86400 * 100_000
            try:
                stranger.mav.command_long_send(
                    1, 1, M.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, FORCE_ARM, 0, 0, 0, 0, 0
                )
                stranger.mav.command_long_send(1, 1, M.MAV_CMD_DO_SET_MODE, 0, 1, 4, 0, 0, 0, 0, 0)
                forger.mav.heartbeat_send(M.MAV_TYPE_GCS, M.MAV_AUTOPILOT_INVALID, 0, 0, 0)
                forger.mav.command_long_send(1, 1, M.MAV_CMD_DO_SET_MODE, 0, 1, 4, 0, 0, 0, 0, 0)
                await asyncio.gather(stranger.writer.drain(), forger.writer.drain())
                await drone.set_mode("STABILIZE")  # still obeyed after the forged far-future timestamp
                hb = await drone.conn.wait_for("HEARTBEAT", lambda m: m.custom_mode == 0, timeout_s=5)
                assert hb.get_signed() and not hb.base_mode & M.MAV_MODE_FLAG_SAFETY_ARMED
            finally:
                await stranger.close()
                await forger.close()
            assert not any(m.get_type() == "COMMAND_ACK" for m in stranger.heard + forger.heard)
            assert drone.state.mode == "STABILIZE" and not drone.state.armed
