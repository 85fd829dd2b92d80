"""Fixtures for the simulators' tests. Copter fixtures are named `copter_*` (robot ones live beside them).

The copter client is raw pymavlink used as a codec over an asyncio socket: the simulator is proved by
the wire, not by reading its internals (tests read the `SimCopter` truth only to judge outcomes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable

import pytest

os.environ.setdefault("MAVLINK20", "1")
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from sitl.copter import SimCopterFleet


class CopterClient:
    """A ground station over TCP: `mav.*_send` writes to the socket, `expect` waits for an answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, sysid: int, compid: int):
        self.reader = reader
        self.writer = writer
        self.mav = mavlink.MAVLink(self, srcSystem=sysid, srcComponent=compid)
        self.mav.robust_parsing = True
        self.log: list[mavlink.MAVLink_message] = []
        self._arrived = asyncio.Condition()
        self._task = asyncio.create_task(self._read(), name="copter-client.read")
        self.closed = asyncio.Event()

    @classmethod
    async def connect(cls, port: int, *, sysid: int = 255, compid: int = 190) -> CopterClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, sysid, compid)

    def write(self, buf: bytes) -> None:  # pymavlink's file interface
        if not self.writer.is_closing():
            self.writer.write(buf)

    async def _read(self) -> None:
        try:
            while data := await self.reader.read(65536):
                msgs = self.mav.parse_buffer(data) or []
                async with self._arrived:
                    self.log.extend(m for m in msgs if m.get_type() != "BAD_DATA")
                    self._arrived.notify_all()
        finally:
            self.closed.set()

    def mark(self) -> int:
        """Index of the next message to arrive (pass as `since` to ignore older ones)."""
        return len(self.log)

    async def expect(
        self,
        kind: str | tuple[str, ...],
        cond: Callable[[mavlink.MAVLink_message], bool] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
        since: int | None = None,
    ) -> mavlink.MAVLink_message:
        """First message of `kind` (matching `cond`) at or after `since` (default: from now)."""
        kinds = (kind,) if isinstance(kind, str) else kind
        i = self.mark() if since is None else since
        async with asyncio.timeout(timeout), self._arrived:
            while True:
                while i < len(self.log):
                    m = self.log[i]
                    i += 1
                    if m.get_type() in kinds and (cond is None or cond(m)):
                        return m
                await self._arrived.wait()

    async def command(self, command: int, *params: float, target: int = 1, timeout: float = 5.0) -> int:  # noqa: ASYNC109
        """COMMAND_LONG and its COMMAND_ACK result."""
        p = [*params, 0, 0, 0, 0, 0, 0, 0][:7]
        since = self.mark()
        self.mav.command_long_send(target, 1, command, 0, *p)
        ack = await self.expect("COMMAND_ACK", lambda m: m.command == command, timeout=timeout, since=since)
        return ack.result

    def heartbeat(self) -> None:
        self.mav.heartbeat_send(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def statustexts(client: CopterClient, since: int = 0) -> list[tuple[str, int]]:
    """(text, severity) of the STATUSTEXTs since `since`, chunked ones (id != 0) joined as a GCS does."""
    out: list[tuple[str, int]] = []
    open_chunks: dict[int, int] = {}  # id -> index in out
    for m in client.log[since:]:
        if m.get_type() != "STATUSTEXT":
            continue
        text = m.text.rstrip("\0")
        if m.id and m.id in open_chunks:
            i = open_chunks[m.id]
            out[i] = (out[i][0] + text, out[i][1])
        else:
            if m.id:
                open_chunks[m.id] = len(out)
            out.append((text, m.severity))
    return out


async def upload(
    client: CopterClient,
    items: list[mavlink.MAVLink_mission_item_int_message],
    mission_type: int = mavlink.MAV_MISSION_TYPE_MISSION,
    *,
    target: int = 1,
    timeout: float = 10.0,  # noqa: ASYNC109
) -> int:
    """Plain mission upload answering every MISSION_REQUEST(_INT); returns the MISSION_ACK type."""
    since = client.mark()
    client.mav.mission_count_send(target, 1, len(items), mission_type)
    async with asyncio.timeout(timeout):
        while True:
            m = await client.expect(
                ("MISSION_REQUEST", "MISSION_REQUEST_INT", "MISSION_ACK"),
                lambda m: m.mission_type == mission_type,
                since=since,
                timeout=timeout,
            )
            since = client.log.index(m, since) + 1
            if m.get_type() == "MISSION_ACK":
                return m.type
            item = items[m.seq]
            item.seq = m.seq
            item.target_system, item.target_component, item.mission_type = target, 1, mission_type
            client.mav.send(item)


def item(
    command: int,
    lat: float = 0.0,
    lon: float = 0.0,
    alt: float = 0.0,
    *params: float,
    frame: int = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
) -> mavlink.MAVLink_mission_item_int_message:
    """A MISSION_ITEM_INT (seq and targets are filled in by `upload`)."""
    p = [*params, 0, 0, 0, 0][:4]
    return mavlink.MAVLink_mission_item_int_message(
        1, 1, 0, frame, command, 0, 1, p[0], p[1], p[2], p[3], round(lat * 1e7), round(lon * 1e7), alt
    )


@pytest.fixture
async def copter_fleet() -> AsyncIterator[SimCopterFleet]:
    """One simulated copter at speed-up 20 on a free port, already booted (boot_s=0): for the tests that
    are not about a copter's first seconds (`test_copter_boot.py` is, on the default boot)."""
    async with SimCopterFleet(1, base_port=0, speedup=20, boot_s=0) as fleet:
        yield fleet


@pytest.fixture
async def copter_client(copter_fleet: SimCopterFleet) -> AsyncIterator[CopterClient]:
    """A raw pymavlink ground station connected to vehicle 1 (sysid 255, the default MAV_GCS_SYSID)."""
    client = await CopterClient.connect(copter_fleet.tcp_ports[0])
    await client.expect("HEARTBEAT", timeout=5)
    yield client
    await client.close()


_TARGET_SHOWN = pytest.StashKey[bool]()


def pytest_report_header(config: pytest.Config) -> str:
    """Say which copter target the end-to-end flights use (shown when tests/sitl is a test path)."""
    from sitl.ardupilot import copter_target

    config.stash[_TARGET_SHOWN] = True
    return copter_target().describe()


@pytest.fixture(scope="session", autouse=True)
def copter_target_reported(request: pytest.FixtureRequest) -> str:
    """Print the copter target once per run, even when this conftest is not an initial one."""
    from sitl.ardupilot import copter_target

    text = copter_target().describe()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and not request.config.stash.get(_TARGET_SHOWN, False):
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(text)
    return text
