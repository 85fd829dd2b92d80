"""Persistence for packages, their history and missions (SQLite embedded, PostgreSQL shared).

    from controller.store import Store
    store = Store("sqlite:///lastmile.sqlite3")        # or "postgresql+psycopg://user@host/db"
    pkg, created = store.submit(PackageIn(...))
    store.transition(pkg.id, PackageState.ASSIGNED, reason="assigned", vehicle_id="drone-1", mode="drone")

The schema is created and upgraded by Alembic when a Store opens; the migration scripts ship in
`controller/store/migrations` and need no alembic.ini.
"""

from __future__ import annotations

from controller.packages import InvalidTransition, StateMismatch
from controller.store.errors import (
    IdempotencyConflict,
    KeysTaken,
    StoreOpenError,
    UnknownMission,
    UnknownPackage,
)
from controller.store.missions import mission_row
from controller.store.moves import Move
from controller.store.records import MISSION_TERMINAL_STATES, Mission
from controller.store.schema import alembic_config, current_revision, head_revision
from controller.store.store import DEFAULT_URL, Store
from controller.store.submission import Submission

__all__ = [
    "DEFAULT_URL",
    "MISSION_TERMINAL_STATES",
    "IdempotencyConflict",
    "InvalidTransition",
    "KeysTaken",
    "Mission",
    "Move",
    "StateMismatch",
    "Store",
    "StoreOpenError",
    "Submission",
    "UnknownMission",
    "UnknownPackage",
    "alembic_config",
    "current_revision",
    "head_revision",
    "mission_row",
]
