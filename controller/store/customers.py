"""What the store keeps for telling customers: tracking tokens, and where each webhook got to.

Tracking tokens are made at intake (`new_tracking_token`) and kept as they are, not hashed: the dispatcher
gets the tracking URL back on every read of the package, and a token opens one package's public view
(state, ETA, a pin), nothing else. 16 random bytes (`secrets.token_urlsafe`), so they cannot be guessed or
walked from one package to the next.

A webhook's cursor is the id of the last event its receiver acknowledged. It is written by the leader only:
through the store's fenced write transaction, so a controller that lost its lease cannot move it. A new
leader reads it and resumes from there (at-least-once: the event in flight when the old leader stopped is
sent again, with the same `X-Lastmile-Event` id, so a receiver drops the duplicate).

Mixed into `Store`, whose `_read`/`_write` transactions it uses.
"""

from __future__ import annotations

import hashlib
import secrets
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from controller.errors import InputError
from controller.packages import Package
from controller.store.models import package_events, packages, webhook_cursors

__all__ = ["CustomerStore", "new_tracking_token", "target_digest"]

TOKEN_BYTES = 16  # 128 bits: far beyond guessing, and 22 characters in a URL
_TOKEN_MAX = 64  # the column's width; anything longer is not one of ours


def new_tracking_token() -> str:
    """A fresh tracking token (URL-safe text)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def target_digest(url: str) -> str:
    """What a cursor row remembers of its webhook's URL: a changed URL is a new receiver, starting afresh."""
    return hashlib.sha256(url.encode()).hexdigest()


class CustomerStore:
    """Tracking tokens and webhook cursors; see the module docstring."""

    _read: Any
    _write: Any

    def by_tracking_token(self, token: str) -> Package | None:
        """The package this tracking token opens, or None (an unknown or malformed token alike)."""
        if not token or len(token) > _TOKEN_MAX:
            return None
        read: AbstractContextManager[Connection] = self._read()
        with read as conn:
            row = conn.execute(select(packages).where(packages.c.tracking_token == token)).first()
        return None if row is None else Package.model_validate(row._asdict())

    def last_event_id(self) -> int:
        """The id of the newest committed event (0 for none): the end of the log, for a new follower."""
        read: AbstractContextManager[Connection] = self._read()
        with read as conn:
            return int(conn.execute(select(func.max(package_events.c.id))).scalar() or 0)

    def webhook_cursor(self, station: str, name: str, url: str) -> int | None:
        """Where the webhook `name` of `station` got to for this `url`; None if it never delivered there."""
        read: AbstractContextManager[Connection] = self._read()
        with read as conn:
            row = conn.execute(
                select(webhook_cursors.c.cursor, webhook_cursors.c.target).where(
                    webhook_cursors.c.station == station, webhook_cursors.c.name == name
                )
            ).first()
        if row is None or row.target != target_digest(url):
            return None
        return int(row.cursor)

    def save_webhook_cursor(
        self, station: str, name: str, url: str, cursor: int, *, epoch: int | None = None
    ) -> None:
        """Store the webhook's cursor, in a fenced write (refused with `LeaseLost` for a deposed leader)."""
        if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
            raise InputError(f"must be a whole number >= 0, got {cursor!r}", field="cursor")
        values = {
            "station": station,
            "name": name,
            "target": target_digest(url),
            "cursor": cursor,
            "epoch": epoch,
            "updated_at": datetime.now(UTC),
        }
        write: AbstractContextManager[Connection] = self._write()
        with write as conn:
            upsert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(webhook_cursors)
            conn.execute(
                upsert.values(**values).on_conflict_do_update(
                    index_elements=["station", "name"],
                    set_={k: v for k, v in values.items() if k not in ("station", "name")},
                )
            )
