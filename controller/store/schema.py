"""Opening a database: the engine with the right per-backend settings, and the schema brought to head.

SQLite is the embedded default, so it gets the settings a shared file needs: WAL (readers never block the
writer), foreign keys on, a busy timeout, and `BEGIN IMMEDIATE` for writing transactions, which takes the
write lock up front; otherwise a transaction that read first and writes later can fail at once with
"database is locked" when another process wrote in between.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from controller.store.errors import StoreOpenError

__all__ = [
    "MIGRATIONS_DIR",
    "WRITE",
    "alembic_config",
    "current_revision",
    "head_revision",
    "open_engine",
    "sqlite_file",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
WRITE = "lastmile_write"  # execution option marking a connection whose transaction will write
_MIGRATION_LOCK = 0x6C6D_7374_6F72  # "lmstor": PostgreSQL advisory lock serialising schema upgrades
SQLITE_BUSY_TIMEOUT_S = 30.0


_EMPTY_JSON = {dict: "{}", list: "[]"}  # every new package's first event has an empty detail


def _json_dumps(value: Any) -> str:
    if not value:
        text = _EMPTY_JSON.get(type(value))
        if text is not None:
            return text
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns (reasons, details, mission plans) with orjson: every package write encodes three or four small
# JSON values, and the standard library's encoder was the largest single cost of a write.
_JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def _use_wal(cur: sqlite3.Cursor) -> None:
    """Put the file in WAL mode (once per file; it stays so).

    Switching needs the file to itself and SQLite does not wait for that (no busy handler), so when two
    stores or processes open a new file at the same moment, the one that finds it busy tries again.
    """
    if cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)  # the other opener holds the file for a few milliseconds


def sqlite_file(engine_url: URL) -> str | None:
    """The database file of a SQLite URL; None for an in-memory database or another backend."""
    if engine_url.get_backend_name() != "sqlite" or engine_url.database in (None, "", ":memory:"):
        return None
    return engine_url.database


def open_engine(url: str) -> Engine:
    """An engine for `url` with the settings each backend needs for the store's guarantees."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return create_engine(url, pool_pre_ping=True, **_JSON_CODEC)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreOpenError(
            f"not a usable database URL ({exc}); use e.g. sqlite:///lastmile.sqlite3 or "
            "postgresql+psycopg://user@host/dbname"
        ) from exc
    memory = sqlite_file(parsed) is None
    kwargs: dict[str, Any] = {
        "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        **_JSON_CODEC,
    }
    if memory:
        kwargs["poolclass"] = StaticPool  # one shared connection, or every connection gets its own database
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below), pysqlite must not
        cur = dbapi_conn.cursor()
        if not memory:
            _use_wal(cur)
            # With WAL, NORMAL keeps every commit across a crash of the controller (the promise we make);
            # only an OS crash or power loss can lose the last commits. FULL would fsync every commit.
            cur.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints run on a thread of their own (`checkpoint.Checkpointer`), not inside commits.
            cur.execute("PRAGMA wal_autocheckpoint=0")
            # 64 MiB of page cache instead of 2 MiB: a day's packages and their indexes stay in memory, so
            # an insert does not read index pages back from the file (the OS cache) one system call each.
            cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")

    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configured in code: the scripts ship inside this package, no alembic.ini is read."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest schema revision this release ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the schema to head, safely when several processes start at once on one database.

    PostgreSQL: a transaction-level advisory lock makes the second starter wait, then find the schema
    at head. SQLite: `BEGIN IMMEDIATE` does the same. DDL is transactional on both, so a failed
    upgrade leaves the previous schema intact.
    """
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(**{WRITE: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
                command.upgrade(alembic_config(conn), "head")
    except CommandError as exc:
        raise StoreOpenError(
            f"cannot upgrade the store's schema to {head_revision()}: {exc} "
            "(was the database written by a newer lastmile release?)"
        ) from exc
