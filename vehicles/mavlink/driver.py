"""The drone driver: many drones on one event loop, each a `Drone` handle over its own connection.

A `Drone` is a thin facade over the capability modules (telemetry, commands, params, missions, streams,
signing) so callers write `drone.commands.arm()` or `await drone.arm()` without knowing the wire. The
driver owns the handles and closes them together; nothing here decides anything (`vehicles` never does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType

from vehicles.errors import LinkError, VehicleError
from vehicles.mavlink.commands import Commands
from vehicles.mavlink.connection import GCS_COMPID, GCS_SYSID, DroneConnection
from vehicles.mavlink.errors import CommandError, NotReadyError, ParamError, PreArmError, ProtocolError
from vehicles.mavlink.firmware import RENAMED_IN_4_7, Firmware
from vehicles.mavlink.link import Link
from vehicles.mavlink.missions import FENCE, MISSION, RALLY, MissionItem, Missions
from vehicles.mavlink.params import Params
from vehicles.mavlink.signing import Rejection, SigningState, provision_signing, use_signing
from vehicles.mavlink.streams import DEFAULT_RATES_HZ, set_message_rates
from vehicles.mavlink.telemetry import DroneEvent, DroneState, Telemetry

__all__ = ["Drone", "DroneDriver", "provision_key"]

log = logging.getLogger("lastmile.vehicles.mavlink.driver")


class Drone:
    """One connected drone: `state` (live telemetry), `events()`, and the command methods."""

    def __init__(self, vehicle_id: str, conn: DroneConnection) -> None:
        self.vehicle_id = vehicle_id
        self.conn = conn
        self.telemetry = Telemetry(conn)
        self.commands = Commands(conn, self.telemetry)
        self.params = Params(conn)
        self.missions = Missions(conn)
        self.rates_hz: Mapping[int, float] | None = None
        self.firmware: Firmware | None = None  # from AUTOPILOT_VERSION (DroneDriver.add asks for it)
        self.new_names: bool | None = None  # the drone answers to 4.7's MAV_SYSID (None: not asked)
        self._rates_task: asyncio.Task[str] | None = None
        conn.add_link_listener(self._on_link)

    def _on_link(self, up: bool, _seconds: float) -> None:
        # A new connection may have lost the stream setup (per-link on many vehicles): ask again.
        if up and self._rates_task is None and self.rates_hz is not None:
            self._rates_task = asyncio.get_running_loop().create_task(self._reapply_rates())

    async def _reapply_rates(self) -> str:
        try:
            return await self.set_rates(self.rates_hz)
        except VehicleError:
            return "failed"
        finally:
            self._rates_task = None

    @property
    def state(self) -> DroneState:
        """Latest telemetry (updated in place as messages arrive)."""
        return self.telemetry.state

    @property
    def sysid(self) -> int:
        """The drone's MAVLink system id (learnt from its heartbeat)."""
        return self.conn.target_system

    def events(self) -> AsyncIterator[DroneEvent]:
        """Async iterator over DroneEvents from now on."""
        return self.telemetry.events()

    # Shortcuts for the common calls; the capability objects have the full set.
    async def arm(self, *, force: bool = False) -> None:
        await self.commands.arm(force=force)

    async def disarm(self, *, force: bool = False) -> None:
        await self.commands.disarm(force=force)

    async def set_mode(self, mode: str | int) -> None:
        await self.commands.set_mode(mode)

    async def start_mission(self) -> None:
        await self.commands.mission_start()

    async def return_to_launch(self) -> None:
        await self.commands.return_to_launch()

    async def land(self) -> None:
        await self.commands.land()

    async def pause(self) -> None:
        await self.commands.pause()

    async def upload_mission(self, items: Sequence[MissionItem]) -> list[MissionItem]:
        return await self.missions.upload_verified(items, MISSION)

    async def upload_fence(self, items: Sequence[MissionItem]) -> list[MissionItem]:
        return await self.missions.upload_verified(items, FENCE)

    async def upload_rally(self, items: Sequence[MissionItem]) -> list[MissionItem]:
        return await self.missions.upload_verified(items, RALLY)

    async def set_params(self, values: Mapping[str, float]) -> dict[str, float]:
        return await self.params.set_many(values)

    async def set_rates(self, rates_hz: Mapping[int, float] | None = None) -> str:
        """Ask for telemetry at these rates (default: DEFAULT_RATES_HZ); re-applied after a reconnection."""
        self.rates_hz = rates_hz if rates_hz is not None else DEFAULT_RATES_HZ
        return await set_message_rates(self.commands, self.rates_hz)

    async def provision_signing(
        self, key: bytes, *, state: SigningState | None = None, link_id: int = 0
    ) -> None:
        """Give the drone `key` (SETUP_SIGNING) and sign with it from now on (`signing.provision_signing`)."""
        await provision_signing(
            self.conn, key, sysid_param=self.param_name("MAV_SYSID"), state=state, link_id=link_id
        )

    @property
    def rejected(self) -> dict[str, int]:
        """Messages refused by signing so far, by reason (unsigned, bad signature, replayed, stale)."""
        return dict(self.conn.rejected)

    def on_rejection(self, callback: Callable[[Rejection], None]) -> Callable[[], None]:
        """Call `callback(rejection)` for every message refused by signing; returns a remover."""
        return self.conn.add_rejection_listener(callback)

    def param_name(self, name: str) -> str:
        """The drone's own name for a parameter given by its ArduPilot 4.7 name: what `resolve_names` found,
        else what the firmware version says (unknown firmware: the 4.7 name)."""
        if self.new_names is not None:
            return name if self.new_names else RENAMED_IN_4_7.get(name, name)
        return self.firmware.param_name(name) if self.firmware is not None else name

    async def resolve_names(self, *, timeout_s: float = 1.0) -> None:
        """Ask which names the drone answers to. The version is only a first guess: master reported
        4.7.0-dev from 2024-11-06 (ArduCopter/version.h) while it kept SYSID_THISMAV until 2025-03-19
        ("create and use MAV_ parameter namespace"), and a name the drone lacks gets no answer at all."""
        guess = self.param_name("MAV_SYSID")
        for name in dict.fromkeys((guess, "MAV_SYSID", RENAMED_IN_4_7["MAV_SYSID"])):
            try:
                await self.params.get(name, timeout_s=timeout_s, retries=1)
            except ParamError:
                continue
            self.new_names = name == "MAV_SYSID"
            return

    async def read_firmware(self, *, timeout_s: float = 1.0) -> Firmware | None:
        """Ask AUTOPILOT_VERSION and remember the firmware; None if the drone does not say."""
        try:
            msg = await self.commands.request_message("AUTOPILOT_VERSION", timeout_s=timeout_s)
        except VehicleError:
            return None
        if msg.flight_sw_version:
            self.firmware = Firmware.from_flight_sw_version(msg.flight_sw_version)
        return self.firmware

    def readiness(self, *, prearm: bool = True) -> list[str]:
        """What the drone still lacks before it can fly a mission, in words (empty when ready); with
        `prearm=False` only what its boot still owes (a booted drone whose checks fail has a real reason).

        ArduPilot's heartbeat starts long before it can fly: a freshly booted copter has no position, no
        home, a battery reading 0 V and failing pre-arm checks for seconds to tens of seconds, and refuses
        missions until its storage is up ("Only 0 items are supported"). Ready means all of: an absolute
        position estimate (EKF_STATUS_REPORT POS_HORIZ_ABS, not constant-position mode), home set, the
        battery reporting, and the pre-arm checks passing (SYS_STATUS MAV_SYS_STATUS_PREARM_CHECK, which
        ArduPilot computes only once setup is done, so it implies "ArduPilot Ready", the once-per-boot text a
        controller that connects later never hears).
        """
        s = self.state
        missing = []
        if not self.conn.link_up:
            missing.append("link")
        if not s.started and s.prearm_ok is not True:
            missing.append("startup ('ArduPilot Ready')")
        if not s.position_ok:
            missing.append("position estimate")
        if s.home is None:
            missing.append("home position")
        if not s.battery_voltage:
            missing.append("battery reading")
        if prearm and s.prearm_ok is not True:
            missing.append("pre-arm checks passing")
        return missing

    def prearm_reasons(self, since: float | None = None) -> list[str]:
        """The drone's latest distinct pre-arm texts ("PreArm: ...", "Arm: ...")."""
        texts = [
            t.text
            for t in self.telemetry.statustexts
            if (since is None or t.t >= since) and t.text.startswith(("PreArm:", "Arm:"))
        ]
        return list(dict.fromkeys(reversed(texts)))[:5]

    async def wait_ready(self, timeout_s: float = 60.0, *, prearm: bool = True) -> None:
        """Wait until `readiness(prearm=prearm)` is empty; NotReadyError naming what is missing (and the
        drone's pre-arm texts) after `timeout_s`. Home is asked for explicitly: its stream is slow."""
        started = time.monotonic()
        deadline = started + timeout_s
        while missing := self.readiness(prearm=prearm):
            left = deadline - time.monotonic()
            if left <= 0:
                raise NotReadyError(missing, self.prearm_reasons(), timeout_s, vehicle=self.vehicle_id)
            if self.state.home is None and self.state.position_ok:
                with contextlib.suppress(VehicleError):  # refused while home is not set yet
                    await self.commands.request_message("HOME_POSITION", timeout_s=min(1.0, left))
                    continue
            with contextlib.suppress(LinkError):
                await self.conn.wait_for(
                    ("SYS_STATUS", "GLOBAL_POSITION_INT", "EKF_STATUS_REPORT", "HOME_POSITION", "STATUSTEXT"),
                    timeout_s=min(1.0, max(left, 0.01)),
                )

    async def arm_for_mission(self, *, timeout_s: float = 60.0, booted_grace_s: float = 5.0) -> None:
        """GUIDED, then arm, retried as a ground station does while the drone is still booting.

        ArduCopter refuses GUIDED without a position and arming while any pre-arm check fails
        (AP_Arming_Copter.cpp, e.g. "Need Position Estimate"); during boot both pass by themselves once the
        EKF settles, so refusals are retried until `timeout_s`. A drone that has booted (position, home,
        battery) and still refuses for `booted_grace_s` (its checks report about once a second) has a reason
        that will not pass by itself, a low battery or a breached fence: PreArmError with its own texts then.
        """
        started = time.monotonic()
        deadline = started + timeout_s
        booted_at: float | None = None
        while True:
            try:
                await self.set_mode("GUIDED")
                await self.arm()
                return
            except (PreArmError, CommandError, LinkError) as exc:
                now = time.monotonic()
                if booted_at is None and not self.readiness(prearm=False):
                    booted_at = now
                gave_up = booted_at is not None and now - booted_at >= booted_grace_s
                if now >= deadline or gave_up or not self.conn.link_up:
                    if isinstance(exc, PreArmError):
                        reasons = self.prearm_reasons(started) or exc.reasons
                        raise PreArmError(exc.result, reasons, vehicle=self.vehicle_id) from exc
                    raise
            wait_s = max(0.01, min(1.0, deadline - time.monotonic()))
            with contextlib.suppress(LinkError):  # the next second of the drone's checks
                await self.conn.wait_for("SYS_STATUS", timeout_s=wait_s)

    async def close(self) -> None:
        if self._rates_task is not None:
            self._rates_task.cancel()
        await self.conn.close()


class DroneDriver:
    """Holds many drones on the running event loop; `async with DroneDriver() as d: await d.add(...)`."""

    def __init__(
        self,
        *,
        source_system: int = GCS_SYSID,
        source_component: int = GCS_COMPID,
        link_timeout_s: float = 3.0,
        connect_timeout_s: float = 10.0,
        heartbeat_period_s: float = 1.0,
    ) -> None:
        self.source_system = source_system
        self.source_component = source_component
        self.link_timeout_s = link_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.heartbeat_period_s = heartbeat_period_s  # shorten against sped-up simulators (FS_GCS_TIMEOUT)
        self.drones: dict[str, Drone] = {}

    async def add(
        self,
        vehicle_id: str,
        url: str | Link,
        *,
        target_system: int | None = None,
        signing_key: bytes | None = None,
        signing_state: SigningState | None = None,
        accept_unsigned: bool = False,
        rates_hz: Mapping[int, float] | None = None,
        set_rates: bool = True,
        probe: bool = True,
    ) -> Drone:
        """Connect to a drone, wait for its heartbeat, set stream rates; keep the handle as `vehicle_id`.

        With `signing_key`, every message is signed with it and only messages signed with it are believed:
        unsigned or wrongly signed ones are dropped and counted (`Drone.rejected`, `Drone.on_rejection`),
        so the drone must already hold the key (`lastmile keys provision`, `Drone.provision_signing`).
        `signing_state` keeps the signing clock across restarts (replays refused); `accept_unsigned` lets
        unsigned messages in too (a drone being provisioned), never for a drone in service. `probe=False`
        skips asking the firmware version and parameter names (the caller does it when it may).
        """
        if vehicle_id in self.drones:
            raise VehicleError("already added", vehicle=vehicle_id)
        conn = DroneConnection(
            url,
            vehicle_id=vehicle_id,
            source_system=self.source_system,
            source_component=self.source_component,
            target_system=target_system,
            link_timeout_s=self.link_timeout_s,
            heartbeat_period_s=self.heartbeat_period_s,
        )
        if signing_key is not None:
            use_signing(conn, signing_key, accept_unsigned=accept_unsigned, state=signing_state)
        drone = Drone(vehicle_id, conn)
        await conn.start()
        try:
            await conn.wait_connected(self.connect_timeout_s)
            if probe:
                await drone.read_firmware()
                await drone.resolve_names()
            if set_rates:
                await drone.set_rates(rates_hz)
        except BaseException:
            await conn.close()
            raise
        self.drones[vehicle_id] = drone
        return drone

    async def add_many(self, urls: Mapping[str, str], **kw: object) -> list[Drone]:
        """Connect to several drones at once."""
        return list(await asyncio.gather(*(self.add(vid, url, **kw) for vid, url in urls.items())))  # type: ignore[arg-type]

    def __getitem__(self, vehicle_id: str) -> Drone:
        return self.drones[vehicle_id]

    async def remove(self, vehicle_id: str) -> None:
        """Close and forget one drone."""
        drone = self.drones.pop(vehicle_id, None)
        if drone is not None:
            await drone.close()

    async def close(self) -> None:
        """Close every drone."""
        drones, self.drones = list(self.drones.values()), {}
        for drone in drones:
            with contextlib.suppress(Exception):
                await drone.close()

    async def __aenter__(self) -> DroneDriver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def provision_key(
    url: str | Link,
    key: bytes,
    *,
    vehicle_id: str = "",
    current_key: bytes | None = None,
    target_system: int | None = None,
    link_id: int = 1,
    connect_timeout_s: float = 10.0,
) -> dict[str, object]:
    """Give the drone at `url` the signing key `key` over that link, and check it signs with it.

    The link must be one where the drone takes SETUP_SIGNING: channel 0 (USB; SITL's SERIAL0), or any
    link while the drone holds no key yet; elsewhere `current_key` signs the request (rotation). A drone
    that is armed is refused before anything is sent: ArduPilot ignores SETUP_SIGNING while armed.
    `link_id` 1 keeps this tool's signed stream apart from the controller's (link 0), so the two never
    trip over each other's timestamps. Returns what was seen (system id, firmware, refused messages).
    """
    name = vehicle_id or str(url)
    async with DroneDriver(connect_timeout_s=connect_timeout_s) as driver:
        try:
            drone = await driver.add(
                name, url, target_system=target_system, signing_key=current_key, set_rates=False, probe=False
            )
        except LinkError as exc:
            hint = " (is --current-key the key the drone holds?)" if current_key is not None else ""
            raise LinkError(f"{exc}{hint}") from exc
        conn = drone.conn
        conn.mav.signing.link_id = link_id
        if drone.state.armed:
            raise ProtocolError("is armed; ArduPilot sets up signing only while disarmed", vehicle=name)
        if current_key is None and conn.vehicle_signs:
            # It holds a key already: only its trusted link (channel 0, USB) still takes unsigned messages.
            # One quick unsigned question tells which kind of link this is, before a long silent retry.
            ask = conn.mav.param_request_read_encode(conn.target_system, conn.target_component, b"", 0)
            try:
                await conn.request(ask, "PARAM_VALUE", timeout_s=1.0, retries=1)
            except LinkError:
                raise ProtocolError(
                    "holds a signing key and ignores unsigned messages on this link: use its trusted link "
                    "(USB, SITL's SERIAL0) or sign with the key it holds (--current-key)",
                    vehicle=name,
                ) from None
        await drone.read_firmware()
        await drone.resolve_names()
        await drone.provision_signing(key, link_id=link_id)
        return {
            "vehicle": name,
            "sysid": drone.sysid,
            "firmware": str(drone.firmware) if drone.firmware is not None else None,
            "refused": drone.rejected,
        }
