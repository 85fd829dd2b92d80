"""One leader per station: who may write a station's store, and how an older leader is kept out.

PostgreSQL (a store shared by a leader and a hot standby, possibly on two hosts):
- The leader holds a session-level advisory lock keyed by the station (and the store's schema, so two
  stores in one database never share a key), on a connection of its own. PostgreSQL frees the lock the
  moment that session ends: at once when the process dies (the kernel closes its socket), within about
  ten seconds when its host or network does (the session asks the server for TCP keepalives and a user
  timeout, see `_SESSION`).
- Whoever gets the lock bumps the `lease` row's epoch (1 for the first leader of the station) in the same
  breath, and remembers it. Every write transaction of the leader starts by reading that row `FOR SHARE`
  (`Lease.check`, installed as `Store.fence`): a different epoch means another controller has taken over
  since, and the write is refused with `LeaseLost` before anything is written. The share lock also orders
  the takeover: the new leader's epoch bump waits for the old leader's write transactions under way, so
  those commit before the new leader reads the store, and every later one sees the new epoch.
- So an old leader that wakes up after a pause (its lock connection dropped meanwhile, and a standby took
  over) cannot write: its first write raises `LeaseLost`, and `lastmile serve` then stops commanding
  vehicles and exits (docs/operations.md).

SQLite (one machine): the file is the store, so an OS lock on a file beside it (`FileLock`,
`<store>.lock`, holding the pid) keeps a second controller out; the second `lastmile serve` refuses to
start and names the process that holds it. There is no standby on SQLite: use PostgreSQL for that.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from controller.errors import ControllerError, InputError

__all__ = [
    "LEASE_POLL_S",
    "FileLock",
    "Lease",
    "LeaseLost",
    "LeaseRow",
    "NotLeader",
    "StoreLocked",
    "lock_file",
    "lock_key",
]

LEASE_POLL_S = 0.25  # how often a standby asks for the lock (the bound: a takeover starts <= 250 ms)
RELOCK_S = 2.0  # how long a leader whose lock session broke waits for the old session's lock to go
MAX_STATION_LEN = 128  # the lease table's key column

# The lock session asks the server to notice a vanished client within about ten seconds (keepalive after
# 5 s idle, every 2 s, 3 misses; unacknowledged data for 10 s), so a leader whose host or network dies
# frees the lock then, not after the kernel's default two hours. These settings are the client's to set.
_SESSION = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 10000",
)
_TAKE = text(
    "INSERT INTO lease (station, epoch, holder, since) VALUES (:station, 1, :holder, now()) "
    "ON CONFLICT (station) DO UPDATE SET epoch = lease.epoch + 1, holder = EXCLUDED.holder, "
    "since = EXCLUDED.since RETURNING epoch, since"
)
_READ = text("SELECT epoch, holder, since FROM lease WHERE station = :station")
# What every fenced write transaction runs first (see the module docstring); one round trip.
_FENCE = text("SELECT epoch FROM lease WHERE station = :station FOR SHARE")


class NotLeader(ControllerError):
    """A write asked of a controller that does not lead its station (a standby): nothing was written."""

    def __init__(self, station: str, leader: str) -> None:
        self.station = station
        super().__init__(f"this controller is a standby for station {station!r}, not its leader; {leader}")


class LeaseLost(ControllerError):
    """Another controller took over the station since this one became its leader: nothing was written.

    Whoever holds a `LeaseLost` must stop writing and commanding vehicles (`lastmile serve` exits).
    """

    def __init__(self, station: str, epoch: int, current: int | None, holder: str | None) -> None:
        self.station = station
        self.epoch = epoch
        self.current = current
        self.holder = holder
        now = "no lease row" if current is None else f"the lease is at epoch {current}, held by {holder}"
        super().__init__(
            f"station {station!r}: this controller led at epoch {epoch}, but {now}; "
            "its writes are refused (fenced) and it must stop commanding vehicles"
        )


class StoreLocked(ControllerError):
    """A SQLite store already in use by another controller process."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        who = f"process {pid}" if pid is not None else "another process (its pid is not recorded)"
        super().__init__(
            f"the store {path.with_suffix('')} is in use by {who} (lock file {path}); one controller per "
            "SQLite store: stop that one first, or use a PostgreSQL store for a leader and a standby"
        )


@dataclass(frozen=True)
class LeaseRow:
    """The lease of a station as stored: the epoch, who holds it, since when (UTC)."""

    epoch: int
    holder: str
    since: datetime

    def describe(self) -> str:
        return f"the leader is {self.holder} (epoch {self.epoch}, since {self.since.isoformat()})"


def lock_key(scope: str, station: str) -> int:
    """The 64-bit advisory lock key of a station within a schema (`scope`): stable across processes."""
    digest = hashlib.blake2b(f"lastmile.lease\0{scope}\0{station}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Lease:
    """The leadership of one station on a PostgreSQL store; see the module docstring.

    Not thread-safe: the lock connection is used by one caller at a time (the controller's leadership task),
    except `check`, which uses the writer's own connection and only reads `epoch` and `lost`.
    """

    def __init__(
        self,
        url: str,
        station: str,
        holder: str,
        *,
        on_lost: Callable[[LeaseLost], None] | None = None,
    ) -> None:
        if not station or len(station) > MAX_STATION_LEN:
            raise InputError(f"must be 1 to {MAX_STATION_LEN} characters for a lease", field="name")
        if make_url(url).get_backend_name() != "postgresql":
            raise InputError(
                f"a lease needs a PostgreSQL store, got {url.split(':', 1)[0]}", field="store_url"
            )
        self.station = station
        self.holder = holder[:200]
        self.epoch: int | None = None  # ours while we lead
        self.lost: LeaseLost | None = None
        self.seen: LeaseRow | None = None  # the lease row as last read (for a standby's answers)
        self._on_lost = on_lost
        self._engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._conn: Connection | None = None
        self._key: int | None = None

    # --- the lock session ---------------------------------------------------------------------------------

    def _session(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect()
            try:
                for statement in _SESSION:
                    with contextlib.suppress(ProgrammingError):  # a server too old for the setting
                        conn.exec_driver_sql(statement)
                scope = conn.execute(text("SELECT current_schema()")).scalar() or "public"
            except BaseException:
                conn.close()
                raise
            self._conn, self._key = conn, lock_key(scope, self.station)
        return self._conn

    def _drop_session(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()  # never back to a pool: a session holding the lock must end
                conn.close()

    def try_acquire(self) -> bool:
        """Take the lock if it is free, and the lease with a new epoch; False (and `seen` updated) if not."""
        conn = self._session()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar()
            if not got:
                self.seen = self._read(conn)
                return False
            row = conn.execute(_TAKE, {"station": self.station, "holder": self.holder}).one()
        except SQLAlchemyError:
            self._drop_session()  # a broken session holds nothing; the next try opens a new one
            raise
        self.epoch, self.lost = int(row.epoch), None
        self.seen = LeaseRow(self.epoch, self.holder, row.since)
        return True

    def verify(self) -> LeaseRow:
        """For the leader, now and then: the lease is still ours. Raises `LeaseLost` when it is not.

        A lock session that broke (the server restarted, the connection was killed) is opened again and the
        lock taken again: if nobody took the lease meanwhile (same epoch), we still lead.
        """
        if self.epoch is None:
            raise RuntimeError("verify() is for the leader")
        try:
            row = self._read(self._session())
        except SQLAlchemyError:
            self._drop_session()
            row = self._relock()
        if row is None or row.epoch != self.epoch:
            raise self._lose(None if row is None else row.epoch, None if row is None else row.holder)
        self.seen = row
        return row

    def _relock(self) -> LeaseRow | None:
        """Take the lock again on a new session after ours broke; raises `LeaseLost` if someone else has it.

        Our old session may still hold the lock for a moment (the server ends it when it notices), so a lock
        held by another session while the epoch is still ours is asked again for up to `RELOCK_S`; a standby
        that took it bumps the epoch at once.
        """
        conn = self._session()  # an error here (the server is still away) goes to the caller
        deadline = time.monotonic() + RELOCK_S
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar():
            row = self._read(conn)
            if row is None or row.epoch != self.epoch or time.monotonic() > deadline:
                raise self._lose(None if row is None else row.epoch, None if row is None else row.holder)
            time.sleep(0.05)
        return self._read(conn)

    def _read(self, conn: Connection) -> LeaseRow | None:
        row = conn.execute(_READ, {"station": self.station}).first()
        return None if row is None else LeaseRow(int(row.epoch), row.holder, row.since)

    def read(self) -> LeaseRow | None:
        """The lease row now (None before any leader), on the lock session."""
        try:
            self.seen = self._read(self._session())
        except SQLAlchemyError:
            self._drop_session()
            raise
        return self.seen

    def release(self) -> None:
        """Free the lock and end the session; the lease row stays, for the next leader to bump.

        Unlocking first lets a standby in at its next poll; closing alone would too, but only once the
        server has noticed the closed socket.
        """
        self.epoch = None
        if self._conn is not None:
            with contextlib.suppress(Exception):  # a broken session frees its lock when it ends
                self._conn.execute(text("SELECT pg_advisory_unlock_all()"))
        self._drop_session()
        self._engine.dispose()

    # --- fencing --------------------------------------------------------------------------------------------

    def check(self, conn: Connection) -> None:
        """The fence, first in every write transaction (`Store.fence`): raises unless we still lead."""
        epoch, lost = self.epoch, self.lost
        if lost is not None:  # a new exception each time: one raised again and again grows its traceback
            raise LeaseLost(lost.station, lost.epoch, lost.current, lost.holder)
        if epoch is None:
            seen = self.seen
            raise NotLeader(self.station, seen.describe() if seen else "no leader has taken the lease yet")
        current = conn.execute(_FENCE, {"station": self.station}).scalar()
        if current != epoch:
            raise self._lose(None if current is None else int(current), None)

    def _lose(self, current: int | None, holder: str | None) -> LeaseLost:
        """Remember (and tell `on_lost`, once) that the lease is no longer ours."""
        lost = LeaseLost(self.station, self.epoch or 0, current, holder or "another controller")
        first = self.lost is None
        self.lost = lost
        if first and self._on_lost is not None:
            self._on_lost(lost)
        return lost


def lock_file(store_file: str | os.PathLike[str]) -> Path:
    """The lock file of a SQLite store: beside it, its name plus `.lock`."""
    path = Path(store_file)
    return path.with_name(path.name + ".lock")


class FileLock:
    """An exclusive OS lock (flock) on `<store>.lock`, with the holder's pid in the file.

    The kernel releases it when the process ends however it ends, so a crashed controller never leaves the
    store locked; the pid left in the file is only read while someone holds the lock.
    """

    def __init__(self, store_file: str | os.PathLike[str]) -> None:
        self.path = lock_file(store_file)
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        """Take the lock or raise `StoreLocked` naming the holder's pid."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise StoreLocked(self.path, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
