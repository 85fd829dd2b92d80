"""Parameters: read and set by name, each set confirmed by the PARAM_VALUE the vehicle sends back.

MAVLink parameter protocol (https://mavlink.io/en/services/parameter.html): PARAM_SET is answered with
PARAM_VALUE carrying the value now in force. A lost reply is retried; a reply with another value means the
vehicle refused or clamped it, and after the retries that is a `ParamError` naming the parameter. ArduPilot
stays silent for names it does not have (GCS_Param.cpp `handle_param_set`), which surfaces as a ParamError
"no such parameter or no reply".
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from vehicles.errors import LinkError
from vehicles.mavlink.connection import DroneConnection
from vehicles.mavlink.errors import ParamError

__all__ = ["Params"]

_INT_TYPES = {
    mavlink.MAV_PARAM_TYPE_UINT8, mavlink.MAV_PARAM_TYPE_INT8, mavlink.MAV_PARAM_TYPE_UINT16,
    mavlink.MAV_PARAM_TYPE_INT16, mavlink.MAV_PARAM_TYPE_UINT32, mavlink.MAV_PARAM_TYPE_INT32,
}  # fmt: skip


def _close(a: float, b: float, param_type: int) -> bool:
    if param_type in _INT_TYPES:
        return round(a) == round(b)
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))  # float32 on the wire


class Params:
    """Parameter access for one drone; `cache` holds every value heard (name -> value)."""

    def __init__(self, conn: DroneConnection) -> None:
        self.conn = conn
        self.cache: dict[str, float] = {}
        self.types: dict[str, int] = {}
        conn.add_listener(self._on_message)

    def _on_message(self, msg: Any) -> None:
        if msg.get_type() == "PARAM_VALUE":
            self.cache[msg.param_id] = msg.param_value
            self.types[msg.param_id] = msg.param_type

    async def get(self, name: str, *, timeout_s: float = 1.0, retries: int = 3) -> float:
        """Read one parameter by name."""
        conn = self.conn
        msg = conn.mav.param_request_read_encode(conn.target_system, conn.target_component, name.encode(), -1)
        try:
            reply = await conn.request(
                msg, "PARAM_VALUE", lambda m: m.param_id == name, timeout_s=timeout_s, retries=retries
            )
        except LinkError:
            raise ParamError(name, "no such parameter or no reply", vehicle=conn.vehicle_id) from None
        return float(reply.param_value)

    async def set(self, name: str, value: float, *, timeout_s: float = 1.0, retries: int = 3) -> float:
        """Set one parameter and return the value the vehicle confirmed; ParamError if it keeps another."""
        conn = self.conn
        if len(name) > 16:
            raise ParamError(name, "names are at most 16 characters", vehicle=conn.vehicle_id)
        ptype = self.types.get(name, mavlink.MAV_PARAM_TYPE_REAL32)
        got: float | None = None
        for _ in range(retries + 1):
            msg = conn.mav.param_set_encode(
                conn.target_system, conn.target_component, name.encode(), value, ptype
            )
            try:
                reply = await conn.request(
                    msg, "PARAM_VALUE", lambda m: m.param_id == name, timeout_s=timeout_s, retries=0
                )
            except LinkError:
                continue
            got = float(reply.param_value)
            if _close(got, value, reply.param_type):
                return got
        if got is None:
            raise ParamError(name, "no such parameter or no reply", wanted=value, vehicle=conn.vehicle_id)
        raise ParamError(
            name, f"vehicle kept {got:g} instead of {value:g}", wanted=value, got=got, vehicle=conn.vehicle_id
        )

    async def set_many(
        self, values: Mapping[str, float], *, concurrency: int = 8, **kw: Any
    ) -> dict[str, float]:
        """Set several parameters (a few in flight at once); returns the confirmed values."""
        sem = asyncio.Semaphore(concurrency)

        async def one(name: str, value: float) -> tuple[str, float]:
            async with sem:
                return name, await self.set(name, value, **kw)

        return dict(await asyncio.gather(*(one(n, v) for n, v in values.items())))
