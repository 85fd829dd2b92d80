"""Relays for link tests: a lossy UDP relay (drops datagrams between a MAVLink client and a vehicle) and a
TCP relay the test can cut and restore (a lost network between a client and a server)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest


class LossyUdpRelay(asyncio.DatagramProtocol):
    """Forwards datagrams between one client and `upstream`, dropping each with probability `loss`."""

    def __init__(self, upstream: tuple[str, int], loss: float, seed: int) -> None:
        self.upstream = upstream
        self.loss = loss
        self.rng = random.Random(seed)
        self.client: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.dropped = 0
        self.forwarded = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if addr == self.upstream:
            dest = self.client
        else:
            self.client, dest = addr, self.upstream
        if dest is None or self.transport is None:
            return
        if self.rng.random() < self.loss:
            self.dropped += 1
            return
        self.forwarded += 1
        self.transport.sendto(data, dest)


async def open_lossy_relay(
    upstream_port: int, loss: float, seed: int
) -> tuple[asyncio.DatagramTransport, LossyUdpRelay, int]:
    """Start a relay to 127.0.0.1:`upstream_port`; returns (transport, relay, the relay's own port)."""
    transport, relay = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: LossyUdpRelay(("127.0.0.1", upstream_port), loss, seed), local_addr=("127.0.0.1", 0)
    )
    return transport, relay, transport.get_extra_info("sockname")[1]


@pytest.fixture
async def lossy_relay() -> AsyncIterator[Callable[..., Any]]:
    """Factory: `relay, port = await lossy_relay(upstream_port, loss=0.2, seed=7)`; closed after the test."""
    transports: list[asyncio.DatagramTransport] = []

    async def make(upstream_port: int, loss: float, seed: int) -> tuple[LossyUdpRelay, int]:
        transport, relay, port = await open_lossy_relay(upstream_port, loss, seed)
        transports.append(transport)
        return relay, port

    yield make
    for t in transports:
        t.close()


class TcpRelay:
    """A TCP man-in-the-middle the test can cut: `cut()` drops every connection and refuses new ones
    (connections are accepted and closed at once), `restore()` lets them through again."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.open = True
        self.server: asyncio.Server | None = None
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"tcp:127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:  # awaited by `aclose`, so none is left pending when the test's loop ends
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not self.open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.open = False
        for w in self._writers:
            w.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()

    async def aclose(self) -> None:
        """`close`, then wait until every connection's handler has ended."""
        self.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
