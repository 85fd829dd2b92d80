"""Launcher for the real ArduPilot SITL `arducopter` binary, and the choice of copter target for tests.

When `ARDUPILOT_SITL` names an `arducopter` SITL build, `ArduPilotSitl` starts one process per vehicle
the way Tools/autotest/sim_vehicle.py does (libraries/AP_HAL_SITL/SITL_cmdline.cpp options):

    arducopter -S --model quad --home LAT,LON,ALT,HDG --defaults FILES --base-port P -I i
               --speedup N --sysid i+1 -w

each in its own working directory (SITL keeps eeprom.bin in the current directory), serving MAVLink on
TCP base_port + 10*i like `sitl.copter`. `copter_target()` tells which target the end-to-end tests use:
the real binary when the variable is set (an unusable path is an error, never a silent fallback), else
the built-in simulator; `open_copters()` starts whichever it is behind the same small interface
(`urls()`, `tcp_ports`, async context manager).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from geofences.errors import LastmileError
from sitl.copter import SimCopterFleet
from sitl.copter.params import DEFAULTS

ENV_BINARY = "ARDUPILOT_SITL"
# extra --defaults files, comma-separated, e.g. Tools/autotest/default_params/copter.parm
ENV_DEFAULTS = "ARDUPILOT_SITL_DEFAULTS"
# printed (to stderr) by libraries/AP_HAL_SITL/UARTDriver.cpp once SERIAL0 listens
READY_TEXT = "Serial port 0 on TCP port"
OUR_EXTENSIONS = frozenset({"SIM_PAYLOAD_KG", "SIM_EMPTY_KG", "WINCH_LEN_MAX"})  # not ArduPilot parameters
DEFAULT_HOME = (33.4484, -112.2590, 300.0, 0.0)


class SitlError(LastmileError):
    """The ArduPilot SITL binary is missing, unusable, or did not come up."""


@dataclass(frozen=True)
class CopterTarget:
    """What the copter end-to-end tests fly against."""

    kind: str  # "sitl.copter" or "ardupilot"
    binary: Path | None = None

    def describe(self) -> str:
        if self.kind == "ardupilot":
            return f"copter target: ArduPilot SITL {self.binary} (from ${ENV_BINARY})"
        return f"copter target: built-in sitl.copter simulator (set ${ENV_BINARY} to fly ArduPilot SITL)"


def copter_target(environ: Mapping[str, str] | None = None) -> CopterTarget:
    """The real binary if `ARDUPILOT_SITL` is set (and usable), else the built-in simulator."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_BINARY, "").strip()
    if not value:
        return CopterTarget("sitl.copter")
    path = Path(value).expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        found = shutil.which(value)
        if found is None:
            raise SitlError(f"${ENV_BINARY}={value!r} is not an executable file")
        path = Path(found)
    return CopterTarget("ardupilot", path.resolve())


def defaults_text(params: Mapping[str, float] | None = None) -> str:
    """A --defaults parameter file with our airframe's values (ArduPilot names only)."""
    values = {name: d.default for name, d in DEFAULTS.items() if name not in OUR_EXTENSIONS}
    values.pop("SYSID_THISMAV", None)  # set per instance with --sysid
    values.update({k: v for k, v in (params or {}).items() if k not in OUR_EXTENSIONS})
    return "".join(f"{name} {value:g}\n" for name, value in sorted(values.items()))


def sitl_command(
    binary: Path | str,
    instance: int,
    *,
    home: tuple[float, float, float, float] = DEFAULT_HOME,
    speedup: float = 1.0,
    defaults: list[Path] | None = None,
    base_port: int = 5760,
) -> list[str]:
    """The command line for vehicle `instance` (0-based): SERIAL0 on TCP base_port + 10*instance."""
    cmd = [str(binary), "-S", "--model", "quad", "--home", ",".join(f"{x:g}" for x in home)]
    if defaults:
        cmd += ["--defaults", ",".join(str(p) for p in defaults)]
    cmd += ["--base-port", str(base_port), "-I", str(instance), "--speedup", f"{speedup:g}"]
    cmd += ["--sysid", str(instance + 1), "-w"]
    return cmd


class ArduPilotSitl:
    """`count` ArduPilot SITL copters as subprocesses; same surface as `SimCopterFleet` for links."""

    def __init__(
        self,
        binary: Path | str,
        count: int = 1,
        *,
        home: tuple[float, float, float, float] = DEFAULT_HOME,
        speedup: float = 1.0,
        base_port: int = 5760,
        host: str = "127.0.0.1",
        params: Mapping[str, float] | None = None,
        workdir: Path | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.binary = Path(binary)
        self.count = count
        self.home = home
        self.speedup = speedup
        self.base_port = base_port
        self.host = host
        self.params = dict(params or {})
        self.start_timeout = start_timeout
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="lastmile-ardupilot-"))
        self.tcp_ports = [base_port + 10 * i for i in range(count)]
        self.procs: list[asyncio.subprocess.Process] = []
        self.output: list[list[str]] = [[] for _ in range(count)]
        self._readers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> ArduPilotSitl:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def urls(self) -> list[str]:
        return [f"tcp:{self.host}:{port}" for port in self.tcp_ports]

    def commands(self) -> list[list[str]]:
        extra = [Path(p) for p in os.environ.get(ENV_DEFAULTS, "").split(",") if p]
        ours = self.workdir / "lastmile-copter.parm"
        return [
            sitl_command(
                self.binary,
                i,
                home=self.home,
                speedup=self.speedup,
                defaults=[*extra, ours],
                base_port=self.base_port,
            )
            for i in range(self.count)
        ]

    async def start(self) -> None:
        """Spawn every instance and wait until each says SERIAL0 listens (its own words on stdout)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "lastmile-copter.parm").write_text(defaults_text(self.params))
        ready = [asyncio.Event() for _ in range(self.count)]
        try:
            for i, cmd in enumerate(self.commands()):
                cwd = self.workdir / f"instance{i}"
                cwd.mkdir(exist_ok=True)
                proc = await asyncio.create_subprocess_exec(
                    *cmd, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                )  # fmt: skip
                self.procs.append(proc)
                self._readers.append(
                    asyncio.create_task(self._read(i, proc, ready[i]), name=f"ardupilot[{i}].out")
                )
            async with asyncio.timeout(self.start_timeout):
                await asyncio.gather(*(e.wait() for e in ready))
        except BaseException as exc:
            tail = " | ".join(line for out in self.output for line in out[-5:])
            await self.stop()
            if isinstance(exc, TimeoutError | OSError):
                raise SitlError(f"ArduPilot SITL did not start: {exc!r}; output: {tail}") from exc
            raise
        for i, proc in enumerate(self.procs):
            if proc.returncode is not None:
                raise SitlError(f"instance {i} exited with {proc.returncode}: {self.output[i][-5:]}")

    async def _read(self, i: int, proc: asyncio.subprocess.Process, ready: asyncio.Event) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            text = line.decode(errors="replace").rstrip()
            self.output[i].append(text)
            del self.output[i][:-200]
            if READY_TEXT in text:
                ready.set()
        ready.set()  # exited: start() reports it

    async def stop(self) -> None:
        """Terminate our processes (by their own handles), then kill what does not stop in 10 s."""
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for task in self._readers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.procs.clear()
        self._readers.clear()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def open_copters(
    count: int = 1,
    *,
    home: tuple[float, float, float, float] = DEFAULT_HOME,
    speedup: float = 10.0,
    params: Mapping[str, float] | None = None,
    target: CopterTarget | None = None,
) -> SimCopterFleet | ArduPilotSitl:
    """Copters for an end-to-end test on the selected target (use with `async with`).

    The built-in simulator picks free ports; ArduPilot SITL uses 5760 + 10*i as it always does.
    """
    target = target or copter_target()
    if target.kind == "ardupilot":
        assert target.binary is not None
        return ArduPilotSitl(target.binary, count, home=home, speedup=speedup, params=params)
    return SimCopterFleet(count, home=home, speedup=speedup, base_port=0, params=params)
