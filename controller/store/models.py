"""The store's tables, in SQLAlchemy Core: one place that says what is on disk.

The schema itself is created by the Alembic revisions in `migrations/`, never by `create_all`, so that a
database made by an older release is upgraded in place. These definitions must match the latest revision;
`tests/controller/test_store.py` checks that they do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Json",
    "UTCDateTime",
    "delivery_proofs",
    "lease",
    "metadata",
    "missions",
    "package_events",
    "packages",
    "webhook_cursors",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on every backend.

    PostgreSQL keeps `timestamptz` natively. SQLite has no time zones: we store UTC wall time and put UTC
    back on read, so callers never meet a naive datetime (which would compare wrongly with aware ones).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store; use an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Any:
        """On SQLite, the check and SQLAlchemy's text format in one step.

        The generic chain (`process_bind_param`, then the SQLite DATETIME formatter) cost about 2 µs a
        value, and intake writes four datetimes a package. SQLAlchemy's storage format is
        `YYYY-MM-DD HH:MM:SS.ffffff` of naive UTC (a test holds `_sqlite_text` to it).
        """
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not UTC:  # the controller's own times are in UTC already
                if value.tzinfo is None or value.utcoffset() is None:
                    raise ValueError(
                        f"naive datetime {value.isoformat()} given to the store; use an aware UTC time"
                    )
                value = value.astimezone(UTC)
            return _sqlite_text(value)

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_last_second: tuple[tuple[int, ...], str] = ((), "")
_last_value: tuple[datetime | None, str] = (None, "")


def _sqlite_text(value: datetime) -> str:
    """`value` (UTC) as `YYYY-MM-DD HH:MM:SS.ffffff`, the date and time to the second formatted once a second.

    The times written together (a batch's packages and events) fall within the same second, and
    `isoformat` formats through C printf, which made datetimes a tenth of a package row's cost. The last
    second's text is kept as one tuple, so threads writing at once never see a half-updated pair. The last
    value's text is kept too: a planning pass stamps every move with one `now`, which half of a package's
    datetimes (its row's `updated_at`, its move's event) are; the tuple holds that object, so its identity
    cannot pass to another.
    """
    global _last_second, _last_value
    seen = _last_value
    if seen[0] is value:
        return seen[1]
    key = (value.year, value.month, value.day, value.hour, value.minute, value.second)
    last = _last_second
    if last[0] != key:
        year, month, day, hour, minute, second = key
        last = _last_second = (key, f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}.")
    text = f"{last[1]}{value.microsecond:06d}"
    _last_value = (value, text)
    return text


Json: Any = JSON().with_variant(JSONB(), "postgresql")
# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
EventId: Any = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

packages = Table(
    "packages",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("key", String(128), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("weight_kg", Float, nullable=False),
    Column("dest_lat", Float, nullable=False),
    Column("dest_lon", Float, nullable=False),
    Column("length_m", Float),
    Column("width_m", Float),
    Column("height_m", Float),
    Column("deadline", UTCDateTime),
    Column("earliest", UTCDateTime),
    Column("priority", Integer, nullable=False),
    Column("recipient", String(200)),
    Column("note", Text),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("vehicle_id", String(64)),
    Column("mode", String(8)),
    Column("eta", UTCDateTime),
    Column("energy_margin_wh", Float),
    Column("reasons", Json, nullable=False),
    Column("detail", Json, nullable=False),
    # The read-only token of the package's tracking page (`/track/{token}`), made at intake (revision 0003).
    Column("tracking_token", String(64)),
    UniqueConstraint("key", name="uq_packages_key"),  # the idempotency guarantee, across processes
    Index("ix_packages_state", "state"),
    Index("ix_packages_created_id", "created_at", "id"),
    Index("ux_packages_tracking_token", "tracking_token", unique=True),
)

package_events = Table(
    "package_events",
    metadata,
    Column("id", EventId, primary_key=True, autoincrement=True),
    Column("package_id", String(32), ForeignKey("packages.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("detail", Json, nullable=False),
    Column("eta", UTCDateTime),  # the package's ETA as of this event (revision 0003)
    Index("ix_package_events_package", "package_id", "id"),
    sqlite_autoincrement=True,  # never reuse an id: the fallback feed's cursor relies on it
)

missions = Table(
    "missions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("package_id", String(32), ForeignKey("packages.id"), nullable=False),
    Column("vehicle_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("state", String(32), nullable=False),
    Column("plan", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_missions_state", "state"),
    Index("ix_missions_package", "package_id"),
)

# Who leads each station on a shared (PostgreSQL) store: the epoch grows by one at every takeover, and every
# write of the leader checks it is still its own (`controller.store.lease`). Unused on SQLite, where an OS
# lock on the file keeps a second controller out.
lease = Table(
    "lease",
    metadata,
    Column("station", String(128), primary_key=True),
    Column("epoch", BigInteger, nullable=False),
    Column("holder", String(200), nullable=False),
    Column("since", UTCDateTime, nullable=False),
)

# Where each webhook of a station got to (revision 0003): the id of the last event its receiver acknowledged,
# for the URL whose digest is `target`; written by the leader only (`epoch`: the lease it wrote under), read
# by the next leader to resume there (`controller.service.webhook`).
webhook_cursors = Table(
    "webhook_cursors",
    metadata,
    Column("station", String(128), primary_key=True),
    Column("name", String(32), primary_key=True),
    Column("target", String(64), nullable=False),
    Column("cursor", BigInteger, nullable=False),
    Column("epoch", BigInteger),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Proof of delivery (revision 0004): one row per delivered package, written with its move to delivered
# (`Store.record`); a photo URL may be attached afterwards (`Store.attach_photo`).
delivery_proofs = Table(
    "delivery_proofs",
    metadata,
    Column("package_id", String(32), ForeignKey("packages.id"), primary_key=True),
    Column("vehicle_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("lat", Float),
    Column("lon", Float),
    Column("alt_amsl_m", Float),
    Column("alt_agl_m", Float),
    Column("confirmed_by", String(16), nullable=False),
    Column("event", String(200), nullable=False),
    Column("method", String(32), nullable=False),
    Column("photo_url", String(2048)),
    Column("photo_at", UTCDateTime),
    Index("ix_delivery_proofs_at", "at"),  # the console's latest proofs (`Store.recent_proofs`)
)
