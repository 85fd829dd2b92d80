"""Mission records: just enough for the mission layer to find its unfinished work again after a restart.

Kept apart from the package methods because missions have their own life (owned by `controller.missions`);
the store only remembers them. Mixed into `Store`, whose `_read`/`_write` transactions it uses.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from controller.errors import InputError
from controller.store import checks
from controller.store.errors import UnknownMission, UnknownPackage
from controller.store.models import missions, packages
from controller.store.records import MISSION_KINDS, MISSION_TERMINAL_STATES, Mission

__all__ = ["MissionStore", "mission_row"]


def _mission(row: Row[Any]) -> Mission:
    return Mission.model_validate(dict(row._mapping))


def mission_row(
    package_id: str,
    vehicle_id: str,
    kind: str,
    plan: Mapping[str, Any] | None = None,
    *,
    state: str = "planned",
    mission_id: str | None = None,
) -> dict[str, Any]:
    """A checked row for the missions table (see `MissionStore.create_mission` for the arguments)."""
    checks.text("vehicle_id", vehicle_id, limit=64)
    checks.text("state", state, limit=32)
    if kind not in MISSION_KINDS:
        raise InputError(f"must be one of {', '.join(sorted(MISSION_KINDS))}; got {kind!r}", field="kind")
    now = datetime.now(UTC)
    return {
        "id": mission_id or uuid.uuid4().hex,
        "package_id": package_id,
        "vehicle_id": vehicle_id,
        "kind": kind,
        "state": state,
        "plan": checks.json_dict("plan", plan),
        "created_at": now,
        "updated_at": now,
    }


class MissionStore:
    """The mission half of `Store`."""

    def _read(self) -> AbstractContextManager[Connection]:  # provided by Store
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Connection]:  # provided by Store
        raise NotImplementedError

    def create_mission(
        self,
        package_id: str,
        vehicle_id: str,
        kind: str,
        plan: Mapping[str, Any] | None = None,
        *,
        state: str = "planned",
        mission_id: str | None = None,
    ) -> Mission:
        """Record a mission for a package, so it can be found again after a restart.

        `mission_id` lets the caller name the mission before it is stored (the package's assignment event
        refers to it); by default a new uuid. `Store.record` stores missions with other writes at once.
        """
        values = mission_row(package_id, vehicle_id, kind, plan, state=state, mission_id=mission_id)
        with self._write() as conn:
            if conn.execute(select(packages.c.id).where(packages.c.id == package_id)).first() is None:
                raise UnknownPackage(package_id)
            conn.execute(insert(missions).values(**values))
        return Mission.model_validate(values)

    def update_mission(
        self, mission_id: str, *, state: str | None = None, plan: Mapping[str, Any] | None = None
    ) -> Mission:
        """Change a mission's state and/or plan; returns the updated mission."""
        values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
        if state is not None:
            values["state"] = checks.text("state", state, limit=32)
        if plan is not None:
            values["plan"] = checks.json_dict("plan", plan)
        with self._write() as conn:
            done = conn.execute(update(missions).where(missions.c.id == mission_id).values(**values))
            if done.rowcount == 0:
                raise UnknownMission(mission_id)
            row = conn.execute(select(missions).where(missions.c.id == mission_id)).one()
        return _mission(row)

    def get_mission(self, mission_id: str) -> Mission:
        """The mission with this id; `UnknownMission` if there is none."""
        with self._read() as conn:
            row = conn.execute(select(missions).where(missions.c.id == mission_id)).first()
        if row is None:
            raise UnknownMission(mission_id)
        return _mission(row)

    def missions(
        self, unfinished_only: bool = True, *, package_id: str | None = None
    ) -> builtins.list[Mission]:
        """Missions oldest first; by default only those not in `MISSION_TERMINAL_STATES`."""
        query = select(missions).order_by(missions.c.created_at, missions.c.id)
        if unfinished_only:
            query = query.where(missions.c.state.not_in(sorted(MISSION_TERMINAL_STATES)))
        if package_id is not None:
            query = query.where(missions.c.package_id == package_id)
        with self._read() as conn:
            return [_mission(r) for r in conn.execute(query)]
