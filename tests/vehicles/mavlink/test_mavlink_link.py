"""Connecting over real TCP and UDP sockets: discovery, GCS heartbeat, link loss, reconnection."""

from __future__ import annotations

import asyncio

import pytest

from vehicles.mavlink import DroneDriver, LinkError, LinkLost, LinkRestored, parse_url


async def test_tcp_connect_learns_sysid_and_sends_gcs_heartbeat(peer):
    async with peer("tcp", sysid=7) as server, DroneDriver() as driver:
        drone = await driver.add("d7", server.url)
        assert drone.sysid == 7
        hb = await server.vehicle.wait_received(lambda m: m.get_type() == "HEARTBEAT")
        assert (hb.get_srcSystem(), hb.get_srcComponent()) == (255, 190)
        # Stream rates were asked for with SET_MESSAGE_INTERVAL.
        assert any(m.get_type() == "COMMAND_LONG" and m.command == 511 for m in server.vehicle.received)


async def test_messages_iterate_in_arrival_order(peer):
    async with peer("tcp") as server, DroneDriver() as driver:
        drone = await driver.add("d1", server.url, set_rates=False)
        v = server.vehicle
        stream = drone.conn.messages()
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)  # let the iterator subscribe before the vehicle speaks
        for text in (b"one", b"two"):
            v.send(v.mav.statustext_encode(6, text))
        seen = [await first]
        while len([m for m in seen if m.get_type() == "STATUSTEXT"]) < 2:
            seen.append(await asyncio.wait_for(anext(stream), 2))
        assert [m.text for m in seen if m.get_type() == "STATUSTEXT"] == ["one", "two"]
        await stream.aclose()


async def test_udpout_connects_to_a_listening_vehicle(peer):
    async with peer("udp", sysid=3) as server, DroneDriver() as driver:
        drone = await driver.add("d3", server.url, set_rates=False)
        await drone.set_mode("GUIDED")
        assert drone.state.mode == "GUIDED"


@pytest.mark.slow  # 8 s
async def test_udpin_waits_for_the_vehicle_to_speak_first(peer):
    """The driver listens (udpin:127.0.0.1:PORT); the vehicle sends to that port."""
    import socket

    from vehicles.mavlink.link import UdpLink

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    link = UdpLink(parse_url(f"udpin:127.0.0.1:{port}"))
    async with peer("udp", sysid=4) as server, DroneDriver() as driver:
        # Point the scripted vehicle at the driver's port (it only knows how to answer, so prime its address).
        server.vehicle.outs.append(lambda data: sock.sendto(data, ("127.0.0.1", port)))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            add = asyncio.create_task(driver.add("d4", link, set_rates=False))
            drone = await add
            assert drone.sysid == 4
            assert link.peer is not None  # learnt the vehicle's address from its first datagram
        finally:
            sock.close()


async def test_no_vehicle_is_a_clear_link_error():
    with pytest.raises(LinkError, match="cannot connect"):
        async with DroneDriver() as driver:
            await driver.add("ghost", "tcp:127.0.0.1:1")


@pytest.mark.parametrize(
    ("url", "reason"),
    [("tcp:127.0.0.1", "scheme:host:port"), ("serial:x:1", "scheme must be"), ("udp:h:port", "not a number")],
)
def test_bad_urls_say_why(url, reason):
    with pytest.raises(LinkError, match=reason):
        parse_url(url)


async def test_heartbeat_silence_gives_link_lost_then_restored(peer):
    async with peer("tcp") as server:
        driver = DroneDriver(link_timeout_s=0.5)
        async with driver:
            drone = await driver.add("d1", server.url, set_rates=False)
            with drone.telemetry.subscribe() as events:
                server.vehicle.options.heartbeats = False
                lost = await asyncio.wait_for(_next_of(events, LinkLost), 3)
                assert lost.silent_s >= 0.5
                assert drone.conn.link_up is False
                server.vehicle.options.heartbeats = True
                restored = await asyncio.wait_for(_next_of(events, LinkRestored), 3)
                assert restored.down_s > 0


async def test_tcp_link_reconnects_after_the_connection_drops(peer):
    async with peer("tcp") as server, DroneDriver(link_timeout_s=0.5) as driver:
        drone = await driver.add("d1", server.url, set_rates=False)
        server.close_clients()
        await drone.set_mode("LOITER")  # resent until the new connection carries it
        assert drone.state.mode == "LOITER"
        assert drone.conn.link.reconnections >= 1


async def _next_of(queue, kind):
    while True:
        ev = await queue.get()
        if isinstance(ev, kind):
            return ev
