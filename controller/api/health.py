"""What `/healthz` answers: is the controller up, which role it plays, can it reach its store and vehicles.

A load balancer or supervisor follows it without a token: `role` says which controller of a leader/standby
pair takes writes (docs/operations.md), `status` is `ok` unless the store cannot be reached (then the answer
is 503, so a health check takes the controller out of rotation). The store is asked with one round trip per
request, at most one at a time and at most `STORE_TIMEOUT_S` long: a hanging database makes `/healthz`
slow by that much, never piles threads up.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from vehicles.spec import VehicleKind

if TYPE_CHECKING:
    from controller.api.standby import Role
    from controller.service import StationService

__all__ = ["STORE_TIMEOUT_S", "Health", "StoreProbe", "health"]

STORE_TIMEOUT_S = 2.0


class Health(BaseModel):
    """Liveness and role (no auth)."""

    status: str = Field(description="ok, or unavailable when the store cannot be reached (HTTP 503)")
    station: str
    grounded: bool
    last_event: int
    role: str = Field(description="leader (writes, commands vehicles), standby (reads only), or fenced "
                      "(another controller took over; this one is exiting)")  # fmt: skip
    epoch: int | None = Field(description="the lease epoch on PostgreSQL (null on SQLite)")
    store: str = Field(description="ok, or what is wrong with the store")
    broker: str = Field(description="connected, disconnected, none (no robots), or not linked (standby)")
    vehicles_linked: int = Field(description="vehicles whose link is up now")
    leader: str | None = Field(default=None, description="who leads, when this controller does not")


class StoreProbe:
    """One store round trip at a time for `/healthz`, bounded by `STORE_TIMEOUT_S`."""

    def __init__(self) -> None:
        self._running: asyncio.Future[None] | None = None

    async def check(self, service: StationService) -> str:
        """'ok', or what is wrong with the store (also what the service last saw fail, when it says)."""
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(asyncio.to_thread(service.store.ping))
        try:
            await asyncio.wait_for(asyncio.shield(self._running), STORE_TIMEOUT_S)
        except TimeoutError:
            return f"unreachable: no answer within {STORE_TIMEOUT_S:g} s"
        except Exception as exc:
            said = str(getattr(exc, "orig", None) or exc).strip()
            return f"unreachable: {said.splitlines()[0] if said else type(exc).__name__}"
        faults = getattr(service, "store_faults", None)  # what store calls last failed with, when recorded
        current = faults.current() if faults is not None else None
        return "ok" if current is None else str(current)


def _broker(service: StationService, linked: bool) -> str:
    if service.config.broker is None or not any(v.kind is VehicleKind.ROBOT for v in service.config.fleet):
        return "none"
    if not linked:
        return "not linked"
    for carrier in service.carriers.values():
        link = getattr(getattr(carrier, "robot", None), "link", None)
        if link is not None:
            return "connected" if link.connected.is_set() else "disconnected"
    return "not linked"


async def health(service: StationService, role: Role | None, probe: StoreProbe) -> tuple[int, Health]:
    """(HTTP status, body) of `/healthz`; `role` None: a controller without a lease (always the leader)."""
    store = await probe.check(service)
    fields: dict[str, Any] = {"role": "leader", "epoch": None}
    if role is not None:
        fields = role.health()
    leading = fields["role"] == "leader"
    linked = sum(1 for carrier in list(service.carriers.values()) if carrier.snapshot().online)
    body = Health(
        status="ok" if store == "ok" or not store.startswith("unreachable") else "unavailable",
        station=service.config.name,
        grounded=service.grounded is not None,
        last_event=service.bus.last_seq,
        store=store,
        broker=_broker(service, leading or bool(service.carriers)),
        vehicles_linked=linked,
        **fields,
    )
    return (503 if body.status == "unavailable" else 200), body
