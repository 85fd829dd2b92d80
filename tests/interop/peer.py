"""Drive `peer.js` (vda-5050-lib, a VDA 5050 implementation this project did not write) from pytest.

The peer runs under Node.js with the lib pinned in `package.json`/`package-lock.json`; `.ci/run` installs
it (`npm ci`), and `ensure_lib` does the same on a developer's machine when `node_modules` is missing. Events
come back as JSON lines on the peer's stdout; tests wait on them (`expect`), never on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["HERE", "Peer", "ensure_lib"]

HERE = Path(__file__).resolve().parent
LIB = HERE / "node_modules" / "vda-5050-lib"
LIB_VERSION = "1.4.0"


def ensure_lib() -> None:
    """Install the pinned vda-5050-lib into tests/interop/node_modules unless it is there already."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError(
            "tests/interop needs Node.js and npm (`.ci/run` installs them: apt-get install nodejs npm)"
        )
    package = LIB / "package.json"
    if package.is_file() and json.loads(package.read_text())["version"] == LIB_VERSION:
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True, timeout=300
    )


class Peer:
    """One peer.js process (mode "agv" or "master"); `async with Peer(config) as peer:`."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.events: list[dict[str, Any]] = []  # everything the peer said, in order
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> Peer:
        self._proc = await asyncio.create_subprocess_exec(
            "node",
            str(HERE / "peer.js"),
            json.dumps(self.config),
            cwd=HERE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read(), name="interop-peer.read")
        await self.expect(lambda e: e["event"] == "ready", timeout_s=20)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            await self._proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "output", "text": line}  # node's own messages (a crash trace, say)
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    async def send(self, command: dict[str, Any]) -> None:
        """One command on the peer's stdin (`{"cmd": "order", ...}`)."""
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(command) + "\n").encode())
        await self._proc.stdin.drain()

    async def expect(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 15.0
    ) -> dict[str, Any]:
        """The first event (seen or to come) matching `predicate`; TimeoutError shows the last ones."""
        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: any(predicate(e) for e in self.events) or self._ended())
        except TimeoutError:
            raise TimeoutError(
                f"no such peer event within {timeout_s:g} s; last events: {self.events[-8:]}"
            ) from None
        for event in self.events:
            if predicate(event):
                return event
        raise AssertionError(f"the peer ended first; its last events: {self.events[-8:]}")

    def _ended(self) -> bool:
        return self._reader is not None and self._reader.done()

    def kill(self) -> None:
        """End the process at once, without an MQTT DISCONNECT: the broker publishes its last will."""
        assert self._proc is not None
        self._proc.kill()

    def problems(self) -> list[dict[str, Any]]:
        """Messages the lib dropped as invalid, and failures inside the peer."""
        return [e for e in self.events if e["event"] in ("dropped", "failure", "output")]
