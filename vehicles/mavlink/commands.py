"""Commands: COMMAND_LONG with COMMAND_ACK matching, and the flight commands built on it.

A command is resent with `confirmation` incremented when no ACK comes (MAVLink command protocol,
https://mavlink.io/en/services/command.html); MAV_RESULT_IN_PROGRESS extends the wait; anything but
ACCEPTED raises `CommandError` carrying the command id and result. Arming failures also carry the
vehicle's reasons: ArduPilot sends "PreArm: ..." / "Arm: ..." STATUSTEXTs *before* its COMMAND_ACK
(libraries/AP_Arming/AP_Arming.cpp `check_failed`), so the texts heard while waiting are the reasons.
"""

from __future__ import annotations

import time
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from vehicles.errors import LinkError
from vehicles.mavlink.connection import DroneConnection
from vehicles.mavlink.errors import CommandError, PreArmError
from vehicles.mavlink.telemetry import Telemetry, mode_number

__all__ = ["Commands"]

_PREARM_PREFIXES = ("PreArm:", "Arm:")
_FORCE_ARM_MAGIC = 21196  # MAV_CMD_COMPONENT_ARM_DISARM param2 that skips checks (ArduPilot GCS_Common.cpp)


class Commands:
    """Flight commands for one drone."""

    def __init__(self, conn: DroneConnection, telemetry: Telemetry) -> None:
        self.conn = conn
        self.telemetry = telemetry

    async def command_long(
        self,
        command: int,
        *params: float,
        timeout_s: float = 1.0,
        retries: int = 3,
        in_progress_timeout: float = 10.0,
    ) -> Any:
        """Send COMMAND_LONG and return the ACCEPTED COMMAND_ACK; raise CommandError or LinkError."""
        conn = self.conn
        p = [*params, *[0.0] * (7 - len(params))]
        confirmation = -1

        def build() -> Any:
            nonlocal confirmation
            confirmation = min(confirmation + 1, 255)
            return conn.mav.command_long_encode(
                conn.target_system, conn.target_component, command, confirmation, *p[:7]
            )

        ack = await conn.request(
            build, "COMMAND_ACK", lambda m: m.command == command, timeout_s=timeout_s, retries=retries
        )
        if ack.result == mavlink.MAV_RESULT_IN_PROGRESS:
            ack = await conn.wait_for(
                "COMMAND_ACK",
                lambda m: m.command == command and m.result != mavlink.MAV_RESULT_IN_PROGRESS,
                timeout_s=in_progress_timeout,
            )
        if ack.result != mavlink.MAV_RESULT_ACCEPTED:
            raise CommandError(command, ack.result, vehicle=conn.vehicle_id)
        return ack

    async def arm(self, *, force: bool = False, timeout_s: float = 2.0) -> None:
        """Arm; on refusal raise PreArmError with the vehicle's "PreArm: ..." reasons."""
        started = time.monotonic()
        try:
            await self.command_long(
                mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1, _FORCE_ARM_MAGIC if force else 0, timeout_s=timeout_s
            )
        except CommandError as exc:
            # Texts sent with the refusal, plus the periodic ones from just before (ArduPilot repeats them).
            reasons = [
                t.text
                for t in self.telemetry.statustexts
                if t.t >= started - 2.0 and t.text.startswith(_PREARM_PREFIXES)
            ]
            raise PreArmError(exc.result, list(dict.fromkeys(reasons)), vehicle=self.conn.vehicle_id) from exc
        await self._wait_state(lambda s: s.armed, "armed", timeout_s)

    async def disarm(self, *, force: bool = False, timeout_s: float = 2.0) -> None:
        """Disarm (ArduCopter refuses in flight unless forced)."""
        await self.command_long(
            mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 0, _FORCE_ARM_MAGIC if force else 0, timeout_s=timeout_s
        )
        await self._wait_state(lambda s: not s.armed, "disarmed", timeout_s)

    async def set_mode(self, mode: str | int, *, timeout_s: float = 2.0) -> None:
        """Change flight mode with MAV_CMD_DO_SET_MODE and wait until the heartbeat shows it."""
        number = mode_number(mode) if isinstance(mode, str) else mode
        await self.command_long(
            mavlink.MAV_CMD_DO_SET_MODE,
            mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
            number,
            timeout_s=timeout_s,
        )
        await self._wait_state(lambda s: s.custom_mode == number, f"mode {mode}", timeout_s)

    async def mission_start(self, first: int = 0, last: int = 0) -> None:
        """MAV_CMD_MISSION_START (ArduCopter needs AUTO mode and armed; it starts from `first`)."""
        await self.command_long(mavlink.MAV_CMD_MISSION_START, first, last)

    async def set_mission_current(self, seq: int) -> None:
        """Jump to mission item `seq` (MAV_CMD_DO_SET_MISSION_CURRENT; MISSION_SET_CURRENT if unsupported)."""
        try:
            await self.command_long(mavlink.MAV_CMD_DO_SET_MISSION_CURRENT, seq)
        except CommandError as exc:
            if exc.result != mavlink.MAV_RESULT_UNSUPPORTED:
                raise
            conn = self.conn
            await conn.request(
                conn.mav.mission_set_current_encode(conn.target_system, conn.target_component, seq),
                "MISSION_CURRENT",
                lambda m: m.seq == seq,
            )

    async def return_to_launch(self) -> None:
        """RTL mode: fly home at RTL_ALT and land."""
        await self.set_mode("RTL")

    async def land(self) -> None:
        """LAND mode: descend where it is."""
        await self.set_mode("LAND")

    async def pause(self, *, mode: str = "BRAKE") -> None:
        """Stop and hold position (BRAKE, or LOITER); resume with set_mode("AUTO")."""
        await self.set_mode(mode)

    async def gripper(self, release: bool = True, instance: int = 1) -> None:
        """MAV_CMD_DO_GRIPPER: param2 0 = release, 1 = grab."""
        await self.command_long(mavlink.MAV_CMD_DO_GRIPPER, instance, 0 if release else 1)

    async def winch(
        self, *, length_m: float | None = None, rate_ms: float | None = None, instance: int = 1
    ) -> None:
        """MAV_CMD_DO_WINCH: relax (no args), to a relative length, or at a rate (m/s)."""
        if length_m is not None:
            action, length, rate = mavlink.WINCH_RELATIVE_LENGTH_CONTROL, length_m, 0.0
        elif rate_ms is not None:
            action, length, rate = mavlink.WINCH_RATE_CONTROL, 0.0, rate_ms
        else:
            action, length, rate = mavlink.WINCH_RELAXED, 0.0, 0.0
        await self.command_long(mavlink.MAV_CMD_DO_WINCH, instance, action, length, rate)

    async def request_message(self, message: str, *, timeout_s: float = 1.0) -> Any:
        """Ask for one message now (MAV_CMD_REQUEST_MESSAGE) and return it, e.g. "MISSION_CURRENT"."""
        msg_id = getattr(mavlink, f"MAVLINK_MSG_ID_{message}")
        fut = self.conn.expect(message)
        try:
            await self.command_long(mavlink.MAV_CMD_REQUEST_MESSAGE, msg_id, timeout_s=timeout_s)
            return await self.conn.wait_for_future(fut, timeout_s)
        except TimeoutError:
            raise LinkError(f"no {message} after requesting it", vehicle=self.conn.vehicle_id) from None
        finally:
            fut.cancel()

    async def goto(self, lat: float, lon: float, alt_m: float) -> None:
        """GUIDED-mode position target (relative altitude); the caller must be in GUIDED."""
        conn = self.conn
        type_mask = 0b0000_1111_1111_1000  # position only
        conn.send(
            conn.mav.set_position_target_global_int_encode(
                0, conn.target_system, conn.target_component, mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
                type_mask, int(lat * 1e7), int(lon * 1e7), alt_m, 0, 0, 0, 0, 0, 0, 0, 0,
            )
        )  # fmt: skip

    async def _wait_state(self, check: Any, what: str, timeout_s: float) -> None:
        """Wait until a heartbeat makes `check(state)` true (event-driven: one check per heartbeat)."""
        if check(self.telemetry.state):
            return
        try:
            await self.conn.wait_for("HEARTBEAT", lambda _m: check(self.telemetry.state), timeout_s=timeout_s)
        except LinkError:
            if not check(self.telemetry.state):
                raise LinkError(
                    f"command accepted but not {what} within {timeout_s:g} s", vehicle=self.conn.vehicle_id
                ) from None
