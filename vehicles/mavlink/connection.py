"""One MAVLink conversation with one drone: codec, GCS heartbeat, target discovery, request/response.

pymavlink is used as a codec only (`parse_buffer` on bytes from a `Link`, `pack` on the way out); nothing
here blocks or polls. Each connection runs three named tasks: the receive loop, the 1 Hz GCS heartbeat
(ArduPilot's FS_GCS watches for it: ArduCopter/events.cpp `failsafe_gcs_check`), and a watchdog that turns
missing vehicle heartbeats into link-lost / link-restored notifications.

Replies are matched by waiters keyed by message type with a predicate, resolved from the receive loop, so a
request is "register a future, send, await with a timeout_s, resend on timeout_s" and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeAlias

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from vehicles.errors import LinkError
from vehicles.mavlink.link import Link, open_link
from vehicles.mavlink.signing import (
    Rejection,
    SigningState,
    VerifyingMAVLink,
    accept_all,
    signing_timestamp,
)

__all__ = ["DroneConnection", "MavMessage"]

log = logging.getLogger("lastmile.vehicles.mavlink")

MavMessage: TypeAlias = mavlink.MAVLink_message
Predicate = Callable[[Any], bool]

GCS_SYSID = 255
GCS_COMPID = mavlink.MAV_COMP_ID_MISSIONPLANNER  # 190


class DroneConnection:
    """The link, codec and conversation state for one drone (target sysid learnt from its heartbeat)."""

    def __init__(
        self,
        link: Link | str,
        *,
        vehicle_id: str = "",
        source_system: int = GCS_SYSID,
        source_component: int = GCS_COMPID,
        target_system: int | None = None,
        link_timeout_s: float = 3.0,
        heartbeat_period_s: float = 1.0,
    ) -> None:
        self.link: Link = open_link(link) if isinstance(link, str) else link
        self.vehicle_id = vehicle_id or str(self.link.address)
        self.mav = VerifyingMAVLink(None, srcSystem=source_system, srcComponent=source_component)
        self.mav.robust_parsing = True
        self.mav.on_reject = self._on_reject
        # Signing (`signing.use_signing`): what was refused, by reason, and who wants to hear about it.
        self.rejected: Counter[str] = Counter()
        self.last_rejection: Rejection | None = None
        self.signing_state: SigningState | None = None
        self._reject_listeners: list[Callable[[Rejection], None]] = []
        self.target_system = target_system or 0
        self.target_component = 0
        self._expected_target = target_system
        self.link_timeout_s = link_timeout_s
        self.heartbeat_period_s = heartbeat_period_s
        self.connected = asyncio.Event()  # set once the first vehicle heartbeat has arrived
        self.link_up = False
        self.last_heartbeat: float | None = None  # time.monotonic() of the last vehicle heartbeat
        self.vehicle_signs: bool | None = None  # its last heartbeat was signed (with whatever key)
        self.messages_in = 0
        self.messages_out = 0
        self._waiters: dict[str, list[tuple[Predicate | None, asyncio.Future[Any]]]] = defaultdict(list)
        self._listeners: list[Callable[[Any], None]] = []
        self._link_listeners: list[Callable[[bool, float], None]] = []
        self._heartbeat_seen = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._down_since: float | None = None
        self._log = logging.LoggerAdapter(log, {"vehicle": self.vehicle_id})

    # -- life cycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the link and start the receive, heartbeat and watchdog tasks."""
        await self.link.open()
        if hasattr(self.link, "hold_peer"):
            self.link.hold_peer = True  # the receive loop moves a UDP listener's peer (`accept_sender`)
        if hasattr(self.link, "on_drop"):
            self.link.on_drop = self._on_transport_drop
        name = f"mavlink[{self.vehicle_id}]"
        self._tasks = [
            asyncio.create_task(self._receive_loop(), name=f"{name}.receive_loop"),
            asyncio.create_task(self._heartbeat_loop(), name=f"{name}.heartbeat"),
            asyncio.create_task(self._watchdog(), name=f"{name}.watchdog"),
        ]
        if self.signing_state is not None:
            self._tasks.append(asyncio.create_task(self._save_signing_loop(), name=f"{name}.signing_state"))

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Wait for the first heartbeat of the vehicle, or raise LinkError."""
        try:
            async with asyncio.timeout(timeout_s):
                await self.connected.wait()
        except TimeoutError:
            raise LinkError(f"no heartbeat within {timeout_s:g} s", vehicle=self.vehicle_id) from None

    async def close(self) -> None:
        """Cancel the tasks, fail pending waiters with LinkError, close the link."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for waiters in self._waiters.values():
            for _, fut in waiters:
                if not fut.done():
                    fut.set_exception(LinkError("connection closed", vehicle=self.vehicle_id))
        self._waiters.clear()
        await self.link.close()
        if self.signing_state is not None and self.mav.signing.secret_key is not None:
            await asyncio.to_thread(self._save_signing, True)

    # -- sending ------------------------------------------------------------------------------------------

    def send(self, msg: MavMessage) -> None:
        """Pack (and sign, when signing is on) one message and hand it to the link.

        A signed message carries at least the wall clock's timestamp (the spec's rule; pymavlink only
        counts up by one per message), so a drone that restarts its streams accepts us as current.
        """
        signing = self.mav.signing
        if signing.sign_outgoing:
            signing.timestamp = max(signing.timestamp, signing_timestamp())
        buf = msg.pack(self.mav)
        self.mav.seq = (self.mav.seq + 1) % 256  # what MAVLink.send does after pack
        self.messages_out += 1
        self.link.send(buf)

    # -- receiving ----------------------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call `callback(msg)` for every message from the vehicle; returns a function that removes it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    async def messages(self) -> AsyncIterator[Any]:
        """Every message from the vehicle from now on, as an async iterator (parsed, in arrival order)."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        remove = self.add_listener(queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            remove()

    def add_rejection_listener(self, callback: Callable[[Rejection], None]) -> Callable[[], None]:
        """Call `callback(rejection)` for every message refused by signing; returns a remover."""
        self._reject_listeners.append(callback)
        return lambda: self._reject_listeners.remove(callback) if callback in self._reject_listeners else None

    @property
    def signing_required(self) -> bool:
        """True when this connection holds a key and refuses unsigned messages."""
        signing = self.mav.signing
        return signing.secret_key is not None and signing.allow_unsigned_callback is not accept_all

    def _on_reject(self, rejection: Rejection) -> None:
        """A message dropped by signing: counted, logged (the first of each reason), told to listeners.

        It goes no further: the parser turns it into BAD_DATA, which `_dispatch` ignores, so it changes no
        state, resolves no waiter and, on UDP, does not move where we send (see `_receive_loop`).
        """
        if not self.rejected[rejection.reason]:
            self._log.warning(
                "refused %s %s claiming to be %d/%d (further ones are counted, not logged)",
                rejection.reason,
                rejection.msg_type,
                rejection.src_system,
                rejection.src_component,
            )
        self.rejected[rejection.reason] += 1
        self.last_rejection = rejection
        for listener in list(self._reject_listeners):
            try:
                listener(rejection)
            except Exception:
                self._log.exception("rejection listener failed")

    def add_link_listener(self, callback: Callable[[bool, float], None]) -> None:
        """Call `callback(up, seconds)` when the link goes down (seconds since last heartbeat) or comes back
        (seconds it was down)."""
        self._link_listeners.append(callback)

    def expect(self, types: str | Iterable[str], predicate: Predicate | None = None) -> asyncio.Future[Any]:
        """A future resolved by the next message of one of `types` that satisfies `predicate`.

        Register it *before* sending the request so a fast reply cannot be missed; cancel it (or use
        `discard`) when giving up.
        """
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        for t in [types] if isinstance(types, str) else types:
            waiters = self._waiters[t]
            if len(waiters) > 32:  # forget abandoned waiters for types that rarely arrive
                waiters[:] = [w for w in waiters if not w[1].done()]
            waiters.append((predicate, fut))
        return fut

    @staticmethod
    async def wait_for_future(fut: asyncio.Future[Any], timeout_s: float) -> Any:
        """Await a future from `expect` for at most `timeout_s` (TimeoutError); forget it either way."""
        try:
            async with asyncio.timeout(timeout_s):
                return await fut
        finally:
            fut.cancel()

    async def wait_for(
        self, types: str | Iterable[str], predicate: Predicate | None = None, *, timeout_s: float = 1.0
    ) -> Any:
        """Wait for a matching message, or raise LinkError naming what was awaited."""
        fut = self.expect(types, predicate)
        try:
            async with asyncio.timeout(timeout_s):
                return await fut
        except TimeoutError:
            raise LinkError(
                f"timed out after {timeout_s:g} s waiting for {types}", vehicle=self.vehicle_id
            ) from None
        finally:
            fut.cancel()

    async def request(
        self,
        msg: MavMessage | Callable[[], MavMessage],
        types: str | Iterable[str],
        predicate: Predicate | None = None,
        *,
        timeout_s: float = 1.0,
        retries: int = 3,
    ) -> Any:
        """Send `msg` and wait for the reply; resend up to `retries` times on timeout_s, then raise LinkError.

        `msg` may be a callable building a fresh message per attempt (COMMAND_LONG bumps `confirmation`).
        """
        for attempt in range(retries + 1):
            fut = self.expect(types, predicate)
            try:
                self.send(msg() if callable(msg) else msg)
                async with asyncio.timeout(timeout_s):
                    return await fut
            except TimeoutError:
                self._log.debug("no %s after attempt %d", types, attempt + 1)
            finally:
                fut.cancel()
        what = "request" if callable(msg) else msg.get_type()
        raise LinkError(
            f"no {types} reply to {what} after {retries + 1} attempts ({timeout_s:g} s each)",
            vehicle=self.vehicle_id,
        )

    def heartbeat_age(self) -> float | None:
        """Seconds since the last vehicle heartbeat (None before the first)."""
        return None if self.last_heartbeat is None else time.monotonic() - self.last_heartbeat

    def _is_vehicle_heartbeat(self, msg: Any) -> bool:
        if msg.type == mavlink.MAV_TYPE_GCS or msg.autopilot == mavlink.MAV_AUTOPILOT_INVALID:
            return False
        return self._expected_target is None or msg.get_srcSystem() == self._expected_target

    def _dispatch(self, msg: Any) -> None:
        mtype = msg.get_type()
        if mtype == "BAD_DATA":
            return
        src = msg.get_srcSystem()
        if mtype == "HEARTBEAT":
            if not self.target_component and self._is_vehicle_heartbeat(msg):
                self.target_system = src
                self.target_component = msg.get_srcComponent()
            if src == self.target_system and msg.get_srcComponent() == self.target_component:
                self.last_heartbeat = time.monotonic()
                buf = msg.get_msgbuf()
                self.vehicle_signs = buf[0] == mavlink.PROTOCOL_MARKER_V2 and bool(
                    buf[2] & mavlink.MAVLINK_IFLAG_SIGNED
                )
                self._heartbeat_seen.set()
                if not self.connected.is_set():
                    self.connected.set()
                    self._set_link(True)
        if src != self.target_system:
            return  # other GCSs and other vehicles on a shared link
        self.messages_in += 1
        # Listeners first: telemetry state is then current when waiters' predicates look at it.
        for listener in list(self._listeners):
            try:
                listener(msg)
            except Exception:
                self._log.exception("listener failed on %s", mtype)
        waiters = self._waiters.get(mtype)
        if waiters:
            keep = []
            for predicate, fut in waiters:
                if fut.done():
                    continue
                try:
                    ok = predicate is None or predicate(msg)
                except Exception as exc:  # a broken predicate must not kill the receive loop
                    fut.set_exception(exc)
                    continue
                if ok:
                    fut.set_result(msg)
                else:
                    keep.append((predicate, fut))
            self._waiters[mtype] = keep

    async def _receive_loop(self) -> None:
        while True:
            data = await self.link.recv()
            try:
                msgs = self.mav.parse_buffer(data)
            except mavlink.MAVError as exc:  # robust_parsing makes this rare; resync on the next chunk
                self._log.debug("parse error: %s", exc)
                continue
            verified = False
            for msg in msgs or ():
                self._dispatch(msg)
                if self.signing_required and msg.get_signed() and msg.get_srcSystem() == self.target_system:
                    verified = True  # BAD_DATA (a refused packet) is never signed
            # A UDP listener answers whoever spoke last; under signing only a verified sender may move it
            # (else one spoofed datagram would divert our heartbeats and commands to the spoofer).
            accept = getattr(self.link, "accept_sender", None)
            if accept is not None and (verified or not self.signing_required):
                accept()

    def _save_signing(self, clean: bool = False) -> None:
        if self.signing_state is not None and self.mav.signing.secret_key is not None:
            try:
                self.signing_state.save(self.mav.signing.secret_key, self.mav.signing, clean=clean)
            except OSError as exc:
                self._log.warning("cannot save signing state %s: %s", self.signing_state.path, exc)

    async def _save_signing_loop(self) -> None:
        """Keep the stored signing clock at most `save_period_s` behind (GCS_Signing.cpp saves every 30 s)."""
        assert self.signing_state is not None
        while True:
            await asyncio.sleep(self.signing_state.save_period_s)
            await asyncio.to_thread(self._save_signing)

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            self.send(
                self.mav.heartbeat_encode(
                    mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, mavlink.MAV_STATE_ACTIVE
                )
            )
            next_at += self.heartbeat_period_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def _watchdog(self) -> None:
        await self.connected.wait()
        while True:
            self._heartbeat_seen.clear()
            try:
                async with asyncio.timeout(self.link_timeout_s):
                    await self._heartbeat_seen.wait()
                if not self.link_up:
                    self._set_link(True)
            except TimeoutError:
                if self.link_up:
                    self._set_link(False)

    def _on_transport_drop(self) -> None:
        """A TCP drop is a lost link now, not after the heartbeat timeout (the link reconnects by itself)."""
        if self.link_up:
            self._set_link(False)

    def _set_link(self, up: bool) -> None:
        now = time.monotonic()
        if up:
            seconds = 0.0 if self._down_since is None else now - self._down_since
            self._down_since = None
        else:
            seconds = self.heartbeat_age() or 0.0
            self._down_since = now
        self.link_up = up
        self._log.info("link %s", "up" if up else f"lost ({seconds:.1f} s without heartbeat)")
        for cb in list(self._link_listeners):
            try:
                cb(up, seconds)
            except Exception:
                self._log.exception("link listener failed")
