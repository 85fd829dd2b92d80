"""Byte transports under the MAVLink codec: TCP client, UDP listen (`udpin`) and UDP send (`udpout`).

A `Link` only moves bytes; it knows nothing about MAVLink. That seam (httpx's transport idea) lets unit tests
feed bytes and end-to-end tests use real sockets with the same connection code above it. URLs follow
mavutil's spelling (`tcp:host:port`, `udpin:host:port`, `udpout:host:port`, `udp:` = `udpin:`) so anything
written for MAVProxy or pymavlink works here too.

TCP links reconnect by themselves with jittered exponential backoff (aiomqtt's habit:
`random.uniform(0, 1.5 ** min(10, attempt))`, capped), so a dropped link heals without the caller's help;
the connection above notices the gap through missing heartbeats. UDP has no connection to lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from vehicles.errors import LinkError

__all__ = ["Link", "LinkAddress", "TcpLink", "UdpLink", "open_link", "parse_url"]

log = logging.getLogger("lastmile.vehicles.mavlink.link")

_MAX_BACKOFF_S = 2.0


@dataclass(frozen=True)
class LinkAddress:
    """A parsed link URL: `scheme` is one of tcp, udpin, udpout."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}:{self.host}:{self.port}"


def parse_url(url: str) -> LinkAddress:
    """Parse `tcp:host:port`, `udpin:host:port`, `udpout:host:port` (`udp:` = udpin); LinkError if bad."""
    parts = url.strip().split(":")
    if len(parts) != 3:
        raise LinkError(f"link url {url!r}: expected scheme:host:port (e.g. tcp:127.0.0.1:5760)")
    scheme, host, port_text = parts
    scheme = {"udp": "udpin"}.get(scheme.lower(), scheme.lower())
    if scheme not in ("tcp", "udpin", "udpout"):
        raise LinkError(f"link url {url!r}: scheme must be tcp, udp, udpin or udpout, not {scheme!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise LinkError(f"link url {url!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise LinkError(f"link url {url!r}: port {port} is outside 0..65535")
    return LinkAddress(scheme, host or "127.0.0.1", port)


class Link(Protocol):
    """The transport seam: bytes out with `send`, byte chunks in with `recv`."""

    address: LinkAddress

    async def open(self) -> None:
        """Connect (or bind); raise LinkError when the first attempt is impossible."""

    def send(self, data: bytes) -> None:
        """Queue bytes for the peer; dropped silently while the link is down (MAVLink tolerates loss)."""

    async def recv(self) -> bytes:
        """Wait for the next chunk of bytes; waits across reconnections."""

    async def close(self) -> None:
        """Stop for good: no more reconnection."""


def backoff_delay(attempt: int) -> float:
    """Jittered exponential backoff in seconds for reconnection attempt `attempt` (0-based)."""
    return min(_MAX_BACKOFF_S, random.uniform(0, 1.5 ** min(10, attempt)) * 0.1 + 0.05)


class TcpLink:
    """A TCP client that keeps itself connected; chunks from every successive connection feed one queue."""

    def __init__(self, address: LinkAddress) -> None:
        self.address = address
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.connected = asyncio.Event()
        self.reconnections = 0
        self.on_drop: Callable[[], None] | None = None  # told at once when the connection drops

    async def _connect(self) -> asyncio.StreamReader:
        reader, writer = await asyncio.open_connection(self.address.host, self.address.port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writer = writer
        self.connected.set()
        return reader

    async def open(self) -> None:
        try:
            reader = await self._connect()
        except OSError as exc:
            raise LinkError(f"cannot connect to {self.address}: {exc}") from exc
        self._task = asyncio.create_task(self._run(reader), name=f"mavlink[{self.address}].tcp")

    async def _run(self, reader: asyncio.StreamReader) -> None:
        attempt = 0
        while not self._closed:
            try:
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    attempt = 0
                    self._queue.put_nowait(data)
            except OSError as exc:
                log.info("tcp link %s dropped: %s", self.address, exc)
            self._drop_writer()
            # Reconnect until closed; each failure waits a little longer (jittered so fleets don't stampede).
            while not self._closed:
                await asyncio.sleep(backoff_delay(attempt))
                attempt += 1
                try:
                    reader = await self._connect()
                    self.reconnections += 1
                    log.info("tcp link %s reconnected", self.address)
                    break
                except OSError:
                    continue

    def _drop_writer(self) -> None:
        self.connected.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            if self.on_drop is not None and not self._closed:
                self.on_drop()

    def send(self, data: bytes) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            return
        try:
            writer.write(data)
        except OSError:
            self._drop_writer()

    async def recv(self) -> bytes:
        if self._closed and self._queue.empty():
            raise LinkError(f"link {self.address} is closed")
        return await self._queue.get()

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._drop_writer()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, link: UdpLink) -> None:
        self._link = link

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._link.address.scheme == "udpin" and not self._link.hold_peer:
            self._link.peer = addr  # udpin answers whoever spoke last, as mavutil does
        self._link._queue.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable on udpout
        log.debug("udp link %s: %s", self._link.address, exc)


class UdpLink:
    """UDP: `udpin` binds host:port and replies to the last sender; `udpout` sends to host:port."""

    def __init__(self, address: LinkAddress) -> None:
        self.address = address
        self._queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self._transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] | None = None
        # With `hold_peer`, a udpin link moves its peer only when told (`accept_sender`): the connection
        # above says so for a datagram it verified, so a spoofed one cannot divert what we send.
        self.hold_peer = False
        self.last_sender: tuple[str, int] | None = None
        self.connected = asyncio.Event()
        self.reconnections = 0

    @property
    def local_port(self) -> int:
        """The bound port (useful with `udpin:127.0.0.1:0`)."""
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self.address.scheme == "udpin":
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(self.address.host, self.address.port)
                )
            else:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self),
                    local_addr=("127.0.0.1", 0)
                    if self.address.host in ("127.0.0.1", "localhost")
                    else ("0.0.0.0", 0),
                )
                self.peer = (self.address.host, self.address.port)
        except OSError as exc:
            raise LinkError(f"cannot open {self.address}: {exc}") from exc
        self._transport = transport
        self.connected.set()

    def send(self, data: bytes) -> None:
        if self._transport is None or self.peer is None:
            return
        self._transport.sendto(data, self.peer)

    async def recv(self) -> bytes:
        data, self.last_sender = await self._queue.get()
        return data

    def accept_sender(self) -> None:
        """Answer the sender of the chunk `recv` returned last from now on (udpin only)."""
        if self.address.scheme == "udpin" and self.last_sender is not None:
            self.peer = self.last_sender

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self.connected.clear()


def open_link(url: str) -> TcpLink | UdpLink:
    """Build (not yet open) the link for `url`."""
    address = parse_url(url)
    return TcpLink(address) if address.scheme == "tcp" else UdpLink(address)
