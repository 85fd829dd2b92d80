"""The mission protocol as ArduPilot speaks it: re-requests, time-outs, refusals, fence and rally."""

from __future__ import annotations

import asyncio
import random

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import SimCopterFleet, geo

from .conftest import CopterClient, item, upload

M = mavlink
HOME = (33.4484, -112.2590)


def simple_mission(n_wp: int = 2) -> list[mavlink.MAVLink_mission_item_int_message]:
    items = [item(M.MAV_CMD_NAV_WAYPOINT, *HOME, 0), item(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 20)]
    for i in range(n_wp):
        items.append(item(M.MAV_CMD_NAV_WAYPOINT, *geo.offset(*HOME, 100.0 * (i + 1), 0.0), 30))
    return items


async def test_unanswered_request_is_repeated_each_second_then_cancelled_after_8s(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    copter = copter_fleet.vehicles[0]
    since = copter_client.mark()
    copter_client.mav.mission_count_send(1, 1, 3, M.MAV_MISSION_TYPE_MISSION)
    first = await copter_client.expect("MISSION_REQUEST", since=since)
    t0 = copter.time_s
    second = await copter_client.expect("MISSION_REQUEST", since=copter_client.log.index(first) + 1)
    t1 = copter.time_s
    assert first.seq == second.seq == 0
    assert 0.9 <= t1 - t0 <= 1.5  # MissionItemProtocol::update: 1000 ms
    ack = await copter_client.expect("MISSION_ACK", since=since, timeout=5)
    assert ack.type == M.MAV_MISSION_OPERATION_CANCELLED
    assert 7.8 <= copter.time_s - t0 <= 8.6  # upload_timeout_ms = 8000
    assert "Mission upload timeout" in copter.statustexts
    assert len(copter.missions.mission) == 1  # nothing stored


async def test_wrong_sequence_is_refused_but_the_upload_goes_on(copter_client: CopterClient):
    items = simple_mission(1)
    since = copter_client.mark()
    copter_client.mav.mission_count_send(1, 1, len(items), 0)
    await copter_client.expect("MISSION_REQUEST", lambda m: m.seq == 0, since=since)
    wrong = items[2]
    wrong.seq = 2
    copter_client.mav.send(wrong)
    ack = await copter_client.expect("MISSION_ACK", since=since)
    assert ack.type == M.MAV_MISSION_INVALID_SEQUENCE
    # the same uploader restarts cleanly
    assert await upload(copter_client, simple_mission(1)) == M.MAV_MISSION_ACCEPTED


async def test_refusals_no_space_unsupported_denied_and_error(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    since = copter_client.mark()
    copter_client.mav.mission_count_send(1, 1, 5000, 0)
    assert (await copter_client.expect("MISSION_ACK", since=since)).type == M.MAV_MISSION_NO_SPACE

    bad = simple_mission(1)
    bad[2] = item(31000, 0, 0, 0)  # MAV_CMD_USER_1: not a command AP_Mission stores
    assert await upload(copter_client, bad) == M.MAV_MISSION_UNSUPPORTED

    bad_jump = simple_mission(1)
    bad_jump[2] = item(M.MAV_CMD_DO_JUMP, 0, 0, 0, 0, 3)  # jump to item 0
    assert await upload(copter_client, bad_jump) == M.MAV_MISSION_ERROR

    bad_frame = simple_mission(1)
    bad_frame[2].frame = M.MAV_FRAME_BODY_NED
    assert await upload(copter_client, bad_frame) == M.MAV_MISSION_UNSUPPORTED_FRAME

    # an item nobody asked for
    since = copter_client.mark()
    stray = simple_mission(1)[1]
    stray.seq = 1
    copter_client.mav.send(stray)
    assert (await copter_client.expect("MISSION_ACK", since=since)).type == M.MAV_MISSION_ERROR

    # a second ground station may not start an upload while one runs
    other = await CopterClient.connect(copter_fleet.tcp_ports[0], sysid=254)
    try:
        copter_client.mav.mission_count_send(1, 1, 3, 0)
        await copter_client.expect("MISSION_REQUEST")
        since = other.mark()
        other.mav.mission_count_send(1, 1, 3, 0)
        ack = await other.expect("MISSION_ACK", lambda m: m.target_system == 254, since=since)
        assert ack.type == M.MAV_MISSION_DENIED
        other.mav.mission_request_list_send(1, 1, 0)
        ack = await other.expect("MISSION_ACK", lambda m: m.target_system == 254)
        assert ack.type == M.MAV_MISSION_DENIED
    finally:
        await other.close()


async def test_items_are_stored_as_they_arrive_and_partial_writes_replace_a_range(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    copter = copter_fleet.vehicles[0]
    old = simple_mission(3)  # home, takeoff, 3 waypoints
    assert await upload(copter_client, old) == M.MAV_MISSION_ACCEPTED
    # a new 4-item upload that stops after item 1: ArduPilot keeps what arrived (AP_Mission storage)
    new = simple_mission(2)
    new[1] = item(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 55)
    since = copter_client.mark()
    copter_client.mav.mission_count_send(1, 1, 4, 0)
    for seq in (0, 1):
        req = await copter_client.expect("MISSION_REQUEST", lambda m, s=seq: m.seq == s, since=since)
        new[req.seq].seq = req.seq
        copter_client.mav.send(new[req.seq])
    ack = await copter_client.expect("MISSION_ACK", since=since, timeout=5)
    assert ack.type == M.MAV_MISSION_OPERATION_CANCELLED
    # truncated to the 4 announced items, item 1 replaced, items 2-3 still the old ones
    assert [(i.command, i.z) for i in copter.missions.mission[1:]] == [(22, 55), (16, 30), (16, 30)]

    # MISSION_WRITE_PARTIAL_LIST 2..2 replaces just that item
    assert await upload(copter_client, old) == M.MAV_MISSION_ACCEPTED
    since = copter_client.mark()
    copter_client.mav.mission_write_partial_list_send(1, 1, 2, 2, 0)
    req = await copter_client.expect("MISSION_REQUEST", since=since)
    assert req.seq == 2
    replacement = item(M.MAV_CMD_NAV_LOITER_TIME, *HOME, 45, 12)
    replacement.seq = 2
    copter_client.mav.send(replacement)
    assert (await copter_client.expect("MISSION_ACK", since=since)).type == M.MAV_MISSION_ACCEPTED
    assert [i.command for i in copter.missions.mission] == [16, 22, 19, 16, 16]
    since = copter_client.mark()
    copter_client.mav.mission_write_partial_list_send(1, 1, 9, 12, 0)  # past the end
    assert (await copter_client.expect("MISSION_ACK", since=since)).type == M.MAV_MISSION_ERROR


async def download(client: CopterClient, mission_type: int) -> list[mavlink.MAVLink_message]:
    since = client.mark()
    client.mav.mission_request_list_send(1, 1, mission_type)
    count = (await client.expect("MISSION_COUNT", since=since)).count
    out = []
    for seq in range(count):
        since = client.mark()
        client.mav.mission_request_int_send(1, 1, seq, mission_type)
        out.append(await client.expect("MISSION_ITEM_INT", lambda m, s=seq: m.seq == s, since=since))
    client.mav.mission_ack_send(1, 1, M.MAV_MISSION_ACCEPTED, mission_type)
    return out


async def test_download_returns_home_as_item_0_and_the_uploaded_items(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    items = simple_mission(3)
    items[0] = item(M.MAV_CMD_NAV_WAYPOINT, 1.0, 1.0, 0)  # a bogus home: ArduPilot ignores it
    assert await upload(copter_client, items) == M.MAV_MISSION_ACCEPTED
    got = await download(copter_client, M.MAV_MISSION_TYPE_MISSION)
    assert len(got) == 5
    assert "Flight plan received" in copter_fleet.vehicles[0].statustexts
    assert abs(got[0].x / 1e7 - HOME[0]) < 1e-6 and got[0].z == 300.0
    since = copter_client.mark()
    copter_client.mav.mission_request_int_send(1, 1, 9, 0)  # past the end: size, then ERROR
    assert (await copter_client.expect("MISSION_COUNT", since=since)).count == 5
    assert (await copter_client.expect("MISSION_ACK", since=since)).type == M.MAV_MISSION_ERROR
    for sent, back in zip(items[1:], got[1:], strict=True):
        assert (back.command, back.x, back.y, back.z) == (sent.command, sent.x, sent.y, sent.z)


async def test_fence_and_rally_upload_validate_and_download(
    copter_fleet: SimCopterFleet, copter_client: CopterClient
):
    square = [geo.offset(*HOME, n, e) for n, e in ((200, -50), (200, 50), (300, 50), (300, -50))]
    fence = [item(M.MAV_CMD_NAV_FENCE_RETURN_POINT, *HOME, 0)]
    fence += [item(M.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION, *p, 0, 4) for p in square]
    fence += [item(M.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION, *HOME, 0, 2000)]
    assert await upload(copter_client, fence, M.MAV_MISSION_TYPE_FENCE) == M.MAV_MISSION_ACCEPTED
    got = await download(copter_client, M.MAV_MISSION_TYPE_FENCE)
    assert [g.command for g in got] == [5000, 5002, 5002, 5002, 5002, 5003]
    assert got[1].param1 == 4 and got[5].param1 == 2000
    assert got[1].frame == M.MAV_FRAME_GLOBAL and got[1].z == 0  # AC_PolyFence keeps no altitude

    broken = [item(M.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION, *p, 0, 5) for p in square]  # says 5, has 4
    assert await upload(copter_client, broken, M.MAV_MISSION_TYPE_FENCE) == M.MAV_MISSION_ERROR
    assert len(await download(copter_client, M.MAV_MISSION_TYPE_FENCE)) == 6  # old fence kept

    rally = [item(M.MAV_CMD_NAV_RALLY_POINT, *geo.offset(*HOME, -400, 0), 20)]
    assert await upload(copter_client, rally, M.MAV_MISSION_TYPE_RALLY) == M.MAV_MISSION_ACCEPTED
    assert [g.command for g in await download(copter_client, M.MAV_MISSION_TYPE_RALLY)] == [5100]
    not_rally = [item(M.MAV_CMD_NAV_WAYPOINT, *HOME, 10)]
    assert await upload(copter_client, not_rally, M.MAV_MISSION_TYPE_RALLY) == M.MAV_MISSION_UNSUPPORTED


class LossyRelay(asyncio.DatagramProtocol):
    """UDP relay between the simulator's udp_out and a client, dropping `loss` of datagrams each way."""

    def __init__(self, loss: float, seed: int) -> None:
        self.loss = loss
        self.rng = random.Random(seed)
        self.sim_addr: tuple[str, int] | None = None
        self.client_addr: tuple[str, int] | None = None
        self.dropped = 0
        self.passed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def forward(self, data: bytes, to: tuple[str, int] | None) -> None:
        if to is None:
            return
        if self.rng.random() < self.loss:
            self.dropped += 1
            return
        self.passed += 1
        self.transport.sendto(data, to)  # type: ignore[attr-defined]


async def test_upload_completes_through_a_link_losing_20_percent_each_way():
    loop = asyncio.get_running_loop()
    sim_side = LossyRelay(0.2, seed=7)
    t_sim, _ = await loop.create_datagram_endpoint(lambda: sim_side, local_addr=("127.0.0.1", 0))
    relay_port = t_sim.get_extra_info("sockname")[1]
    received: asyncio.Queue[mavlink.MAVLink_message] = asyncio.Queue()
    client_mav = mavlink.MAVLink(None, srcSystem=255, srcComponent=190)
    client_mav.robust_parsing = True

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr) -> None:
            for m in client_mav.parse_buffer(data) or []:
                received.put_nowait(m)

    t_client, _ = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
    client_addr = t_client.get_extra_info("sockname")

    def from_relay(data: bytes, addr) -> None:
        if addr == client_addr:
            sim_side.forward(data, sim_side.sim_addr)
        else:
            sim_side.sim_addr = addr
            sim_side.forward(data, client_addr)

    sim_side.datagram_received = from_relay  # type: ignore[method-assign]

    def send(msg: mavlink.MAVLink_message) -> None:
        t_client.sendto(msg.pack(client_mav), ("127.0.0.1", relay_port))
        client_mav.seq = (client_mav.seq + 1) % 256

    items = simple_mission(12)
    try:
        async with SimCopterFleet(
            1, base_port=0, speedup=10, udp_out=[f"127.0.0.1:{relay_port}"], boot_s=0
        ) as fleet:
            async with asyncio.timeout(60):
                result = None
                while result is None:  # a GCS's own retry of MISSION_COUNT until the vehicle answers
                    send(mavlink.MAVLink_mission_count_message(1, 1, len(items), 0))
                    deadline = loop.time() + 0.5
                    while loop.time() < deadline:
                        try:
                            m = await asyncio.wait_for(received.get(), deadline - loop.time())
                        except TimeoutError:
                            break
                        if m.get_type() == "MISSION_REQUEST":
                            deadline = loop.time() + 2.0
                            it = items[m.seq]
                            it.seq = m.seq
                            send(it)
                        elif m.get_type() == "MISSION_ACK":
                            result = m.type
                            break
            stored = fleet.vehicles[0].missions.mission
    finally:
        t_sim.close()
        t_client.close()
    assert result == M.MAV_MISSION_ACCEPTED
    assert sim_side.dropped > 5  # the link really lost packets
    assert [(i.command, i.x, i.y) for i in stored[1:]] == [(i.command, i.x, i.y) for i in items[1:]]
