"""A lossy UDP relay for link tests: sits between a MAVLink client and a vehicle and drops datagrams."""

from __future__ import annotations

import asyncio
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
