"""Launcher for the real ArduPilot SITL `arducopter` binary, and the choice of copter target for tests.

When `ARDUPILOT_SITL` names an `arducopter` SITL build, `ArduPilotSitl` starts one process per vehicle
the way Tools/autotest/sim_vehicle.py does (libraries/AP_HAL_SITL/SITL_cmdline.cpp options):

    arducopter -S --model quad --home LAT,LON,ALT,HDG --defaults copter.parm,lastmile-copter.parm
               --speedup N --sysid i+1 -I i --base-port P+10*i --serial1 tcp:2 --serial2 none -w

each in its own temporary working directory (SITL keeps eeprom.bin and its logs in the current directory).
What ArduPilot's source says, and the launcher therefore does:
- `-I i` adds 10*i to the base port only while the base port is still the default 5760
  (SITL_cmdline.cpp, `case 'I'`), so the launcher passes every instance its own `--base-port P+10*i`
  and any base port works for any count.
- `--speedup` is only a parameter default (`SIM_SPEEDUP`, SITL_cmdline.cpp `case 's'`): a defaults file
  that sets SIM_SPEEDUP wins over it, and `--sysid` is the MAV_SYSID default in the same way. The launcher
  refuses defaults files that set either.
- `--model quad` is a 3 kg, 3S (12.6 V) frame (libraries/SITL/SIM_Frame.h `Model`); it needs
  ArduPilot's own `Tools/autotest/default_params/copter.parm` (FRAME_CLASS/FRAME_TYPE, RC, INS
  calibration), found in the binary's source tree or named by `ARDUPILOT_SITL_DEFAULTS`. The project's
  layer on top (`AIRFRAME_PARAMS`) configures the release devices completely and gives the battery a
  finite capacity that matches the frame's pack; it never touches the frame's voltage.
- SERIAL0 is announced as `SERIAL0 on TCP port N` (4.5+, libraries/AP_HAL_SITL/UARTDriver.cpp
  `_tcp_start_connection`) or `Serial port 0 on TCP port N` (4.4 and older); SERIAL1/2 print the same
  with their own number, so only SERIAL0 counts for start-up.
- Two links per vehicle, as on an airframe: SERIAL0 (P+10*i, `urls()`) is MAVLink channel 0, which
  ArduPilot treats as the secure local port (USB on a flight controller) and where it accepts unsigned
  messages even with a signing key (libraries/GCS_MAVLink/GCS_Signing.cpp `accept_unsigned_callback`);
  SERIAL1 (P+10*i+2, `telemetry_urls()`) is a telemetry link where a signed vehicle refuses unsigned
  commands. SERIAL2 is off. SITL's TCP listener binds every interface (UARTDriver.cpp leaves `sin_addr`
  zero); the launcher and tests talk over 127.0.0.1 only.
- ArduPilot ignores unknown names in a defaults file without a word (AP_Param.cpp
  `read_param_defaults_file` prints only with ENABLE_DEBUG), so after start the launcher reads every
  parameter it set back over MAVLink and raises `SitlError` naming any the vehicle does not know.

`copter_target()` tells which target the end-to-end tests use: the real binary when the variable is set (an
unusable path is an error, never a silent fallback), else the built-in simulator; `open_copters()` starts
whichever it is behind the same small interface (`urls()`, `tcp_ports`, async context manager).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from geofences.errors import LastmileError
from sitl.copter import SimCopterFleet

ENV_BINARY = "ARDUPILOT_SITL"
# ArduPilot's own defaults files, comma-separated; default: Tools/autotest/default_params/copter.parm
# found above the binary (build/sitl/bin/arducopter -> <tree>/Tools/...)
ENV_DEFAULTS = "ARDUPILOT_SITL_DEFAULTS"
# SERIAL0's announcement: 4.5+ "SERIAL0 on TCP port 5760", 4.4 and older "Serial port 0 on TCP port 5760"
READY_LINE = re.compile(r"\b(?:SERIAL0|Serial port 0) on TCP port (\d+)")
DEFAULT_HOME = (33.4484, -112.2590, 300.0, 0.0)
DEFAULT_BASE_PORT = 5760
COPTER_PARM = Path("Tools/autotest/default_params/copter.parm")
# Parameters the command line sets as defaults, which a defaults file would silently override.
COMMAND_LINE_PARAMS = frozenset({"SIM_SPEEDUP", "MAV_SYSID", "SYSID_THISMAV"})
# The built-in simulator's own extensions: not ArduPilot parameters, never sent to the real binary.
OUR_EXTENSIONS = frozenset({"SIM_PAYLOAD_KG", "SIM_EMPTY_KG", "WINCH_LEN_MAX"})

# The project's layer over copter.parm: names and meanings that exist in ArduCopter 4.5, 4.6 and 4.7.
AIRFRAME_PARAMS: dict[str, float] = {
    # Servo gripper (libraries/AP_Gripper: GRIP_TYPE 1 = servo) on output 9; a servo gripper without an
    # output with SERVOn_FUNCTION 28 (SRV_Channel::k_gripper) never reports released.
    "GRIP_ENABLE": 1,
    "GRIP_TYPE": 1,
    "SERVO9_FUNCTION": 28,
    # PWM winch (libraries/AP_Winch: WINCH_TYPE 0 none, 1 PWM, 2 Daiwa) on output 10: AP_Winch_PWM::healthy()
    # is false without an output with SERVOn_FUNCTION 88 (k_winch), and arming then fails "winch unhealthy".
    "WINCH_TYPE": 1,
    "SERVO10_FUNCTION": 88,
    # A finite pack for the quad model's 3S battery (SIM_Frame.cpp defaults SIM_BATT_CAP_AH to 0 = endless),
    # so that energy is used, BATTERY_STATUS counts mAh and the battery failsafe can happen.
    "SIM_BATT_CAP_AH": 5.0,
    "BATT_CAPACITY": 5000,
}


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


def ardupilot_defaults(binary: Path | str, environ: Mapping[str, str] | None = None) -> list[Path]:
    """ArduPilot's own defaults files for the quad model: `ARDUPILOT_SITL_DEFAULTS`, else copter.parm
    from the binary's source tree (what sim_vehicle.py passes, Tools/autotest/pysim/vehicleinfo.py)."""
    env = os.environ if environ is None else environ
    named = [Path(p.strip()).expanduser() for p in env.get(ENV_DEFAULTS, "").split(",") if p.strip()]
    if named:
        missing = [str(p) for p in named if not p.is_file()]
        if missing:
            raise SitlError(f"${ENV_DEFAULTS}: no such file: {', '.join(missing)}")
        return named
    for parent in Path(binary).resolve().parents:
        candidate = parent / COPTER_PARM
        if candidate.is_file():
            return [candidate]
    raise SitlError(
        f"cannot find ArduPilot's {COPTER_PARM} above {binary}: without it the copter has no frame class "
        f"or type and never arms; set ${ENV_DEFAULTS} to its path"
    )


def parse_defaults(text: str) -> dict[str, float]:
    """Name -> value from a defaults file (ArduPilot's `NAME VALUE` lines, `#` comments, tabs or commas)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split("#", 1)[0].replace(",", " ").split()
        if len(parts) >= 2:
            with contextlib.suppress(ValueError):
                values[parts[0]] = float(parts[1])
    return values


def airframe_params(params: Mapping[str, float] | None = None) -> dict[str, float]:
    """The project's defaults layer: AIRFRAME_PARAMS with the caller's values on top (ArduPilot names)."""
    values = dict(AIRFRAME_PARAMS)
    values.update({k: float(v) for k, v in (params or {}).items() if k not in OUR_EXTENSIONS})
    clash = sorted(COMMAND_LINE_PARAMS & values.keys())
    if clash:
        raise SitlError(
            f"{', '.join(clash)}: set by the launcher's command line (--speedup, --sysid), not by parameters"
        )
    return values


def defaults_text(params: Mapping[str, float]) -> str:
    """A --defaults parameter file."""
    return "".join(f"{name} {value:g}\n" for name, value in sorted(params.items()))


def sitl_command(
    binary: Path | str,
    instance: int,
    *,
    home: tuple[float, float, float, float] = DEFAULT_HOME,
    speedup: float = 1.0,
    defaults: Sequence[Path] = (),
    base_port: int = DEFAULT_BASE_PORT,
    model: str = "quad",
) -> list[str]:
    """The command line for vehicle `instance` (0-based): SERIAL0 on TCP base_port + 10*instance."""
    cmd = [str(binary), "-S", "--model", model, "--home", ",".join(f"{x:g}" for x in home)]
    if defaults:
        cmd += ["--defaults", ",".join(str(p) for p in defaults)]
    cmd += ["--speedup", f"{speedup:g}", "--sysid", str(instance + 1), "-I", str(instance)]
    # after -I: an explicit base port is never shifted by the instance (SITL_cmdline.cpp), so shift it here
    cmd += ["--base-port", str(base_port + 10 * instance), "--serial1", "tcp:2", "--serial2", "none", "-w"]
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
        base_port: int = DEFAULT_BASE_PORT,
        host: str = "127.0.0.1",
        params: Mapping[str, float] | None = None,
        workdir: Path | None = None,
        start_timeout: float = 60.0,
        verify_params: bool = True,
        defaults: Sequence[Path] | None = None,
    ) -> None:
        self.binary = Path(binary)
        self.count = count
        self.home = home
        self.speedup = speedup
        self.base_port = base_port
        self.host = host
        self.params = airframe_params(params)
        self.start_timeout = start_timeout
        self.verify_params = verify_params
        self.defaults = list(defaults) if defaults is not None else None
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
        """SERIAL0 of each vehicle: MAVLink channel 0, ArduPilot's trusted local port."""
        return [f"tcp:{self.host}:{port}" for port in self.tcp_ports]

    def telemetry_urls(self) -> list[str]:
        """SERIAL1 of each vehicle: a telemetry link, where signing is enforced."""
        return [f"tcp:{self.host}:{port + 2}" for port in self.tcp_ports]

    def defaults_files(self) -> list[Path]:
        """ArduPilot's files, then ours (later files win, as in sim_vehicle.py)."""
        theirs = self.defaults if self.defaults is not None else ardupilot_defaults(self.binary)
        return [*theirs, self.workdir / "lastmile-copter.parm"]

    def commands(self) -> list[list[str]]:
        files = self.defaults_files()
        return [
            sitl_command(
                self.binary, i, home=self.home, speedup=self.speedup, defaults=files, base_port=self.base_port
            )
            for i in range(self.count)
        ]

    def _check_defaults(self, files: Sequence[Path]) -> None:
        for path in files[:-1]:
            try:
                clash = sorted(COMMAND_LINE_PARAMS & parse_defaults(path.read_text()).keys())
            except OSError as exc:
                raise SitlError(f"defaults file {path}: {exc}") from exc
            if clash:
                raise SitlError(
                    f"defaults file {path} sets {', '.join(clash)}, which would override the launcher's "
                    "--speedup/--sysid (ArduPilot treats those as parameter defaults): remove the lines"
                )

    async def start(self) -> None:
        """Spawn every instance, wait until each announces SERIAL0, then check our parameters took."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "lastmile-copter.parm").write_text(defaults_text(self.params))
        commands = self.commands()
        self._check_defaults(self.defaults_files())
        ready = [asyncio.Event() for _ in range(self.count)]
        try:
            for i, cmd in enumerate(commands):
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
            for i, proc in enumerate(self.procs):
                if proc.returncode is not None:
                    raise SitlError(f"instance {i} exited with {proc.returncode}: {self.output[i][-5:]}")
            if self.verify_params:
                async with asyncio.timeout(self.start_timeout):
                    await asyncio.gather(*(self._verify(i) for i in range(self.count)))
        except BaseException as exc:
            tail = " | ".join(line for out in self.output for line in out[-5:])
            await self.stop()
            if isinstance(exc, TimeoutError | OSError):
                raise SitlError(f"ArduPilot SITL did not start: {exc!r}; output: {tail}") from exc
            raise

    async def _read(self, i: int, proc: asyncio.subprocess.Process, ready: asyncio.Event) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            text = line.decode(errors="replace").rstrip()
            self.output[i].append(text)
            del self.output[i][:-200]
            m = READY_LINE.search(text)
            if m:
                if int(m.group(1)) != self.tcp_ports[i]:
                    note = f"(lastmile: SERIAL0 on {m.group(1)}, expected {self.tcp_ports[i]})"
                    self.output[i].append(note)
                    proc.kill()
                ready.set()
        ready.set()  # exited: start() reports it

    async def _verify(self, i: int) -> None:
        """Read back every parameter we set; SitlError naming those the vehicle lacks or holds otherwise."""
        got = await read_params(self.host, self.tcp_ports[i], list(self.params), timeout_s=self.start_timeout)
        unknown = sorted(n for n in self.params if n not in got)
        if unknown:
            raise SitlError(
                f"instance {i}: ArduPilot does not know {', '.join(unknown)} (ignored in the defaults file)"
            )
        wrong = [
            f"{n}={got[n]:g} (wanted {v:g})"
            for n, v in self.params.items()
            if not math.isclose(got[n], v, rel_tol=1e-6, abs_tol=1e-6)
        ]
        if wrong:
            raise SitlError(f"instance {i}: parameters not in force: {', '.join(wrong)}")

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


async def read_params(
    host: str,
    port: int,
    names: Sequence[str],
    *,
    timeout_s: float = 30.0,
    quiet_s: float = 3.0,
    sysid: int = 254,
) -> dict[str, float]:
    """Read parameters by name over one short TCP MAVLink session; names with no answer are left out.

    A plain pymavlink codec over asyncio streams (the launcher must not depend on the drone driver it
    tests). Unanswered names are asked again every second. ArduPilot stays silent for names it does not
    know (GCS_Param.cpp `handle_param_request_read`), so once the vehicle has answered something, `quiet_s`
    without a new answer ends the read; `timeout_s` bounds it all. The source system is not the GCS's (255),
    so this probe never counts as the ground station for FS_GCS.
    """
    reader, writer = await asyncio.open_connection(host, port)
    mav = mavlink.MAVLink(None, srcSystem=sysid, srcComponent=mavlink.MAV_COMP_ID_MISSIONPLANNER)
    mav.robust_parsing = True
    got: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last_answer: float | None = None
    try:
        while len(got) < len(names) and loop.time() < deadline:
            if last_answer is not None and loop.time() - last_answer > quiet_s:
                break
            for name in names:
                if name not in got:
                    writer.write(mav.param_request_read_encode(0, 0, name.encode(), -1).pack(mav))
            await writer.drain()
            tick = loop.time() + 1.0
            while len(got) < len(names) and (left := min(tick, deadline) - loop.time()) > 0:
                try:
                    data = await asyncio.wait_for(reader.read(65536), left)
                except TimeoutError:
                    break
                if not data:
                    raise SitlError(f"ArduPilot SITL closed TCP port {port} while its parameters were read")
                for msg in mav.parse_buffer(data) or []:
                    if msg.get_type() == "PARAM_VALUE" and msg.param_id in names and msg.param_id not in got:
                        got[msg.param_id] = float(msg.param_value)
                        last_answer = loop.time()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return got


def open_copters(
    count: int = 1,
    *,
    home: tuple[float, float, float, float] = DEFAULT_HOME,
    speedup: float = 10.0,
    params: Mapping[str, float] | None = None,
    target: CopterTarget | None = None,
    base_port: int | None = None,
) -> SimCopterFleet | ArduPilotSitl:
    """Copters for an end-to-end test on the selected target (use with `async with`).

    The built-in simulator picks free ports unless given `base_port`; ArduPilot SITL uses
    `base_port` (default 5760) + 10*i.
    """
    target = target or copter_target()
    if target.kind == "ardupilot":
        assert target.binary is not None
        return ArduPilotSitl(
            target.binary, count, home=home, speedup=speedup, params=params,
            base_port=DEFAULT_BASE_PORT if base_port is None else base_port,
        )  # fmt: skip
    return SimCopterFleet(count, home=home, speedup=speedup, base_port=base_port or 0, params=params)
