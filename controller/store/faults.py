"""Store faults: the database is unreachable, its connection was cut, its disk is full or read-only.

These are not bugs of the controller but states of the world that pass: the API answers them 503 with
`Retry-After` (never 500, never a traceback per request), the planning loop tries again next tick, and a
connection cut under a running statement is retried once on a fresh one (`retrying`). `StoreFaults` keeps
the last one for `/healthz` and logs each kind at most once a minute, so a database down for an hour is
sixty lines in the log, not one traceback per request.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from controller.errors import ControllerError

__all__ = ["RETRY_AFTER_S", "StoreFaults", "StoreUnavailable", "classify", "retrying"]

log = logging.getLogger("lastmile.store")
T = TypeVar("T")

RETRY_AFTER_S = 5  # what a client is told to wait: a restarting PostgreSQL is back within seconds
LOG_EVERY_S = 60.0

# SQLite's words (sqlite3 error messages, as the library prints them) for states of its file.
_SQLITE_FAULTS = (
    ("database or disk is full", "the store's disk is full"),
    ("attempt to write a readonly database", "the store's database is read-only"),
    ("disk i/o error", "the store's disk failed to read or write"),
    ("unable to open database file", "the store's database file cannot be opened"),
    ("database is locked", "the store's database is locked by another process"),
)

_SQLITE_WRITE_REFUSED = frozenset({"SQLITE_IOERR_WRITE", "SQLITE_IOERR_FSYNC", "SQLITE_IOERR_TRUNCATE"})


class StoreUnavailable(ControllerError):
    """The store cannot be used right now (`reason` says why); nothing was changed by this call."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def classify(exc: BaseException) -> str | None:
    """Why the store failed, in words, when `exc` is a store fault rather than a bug; else None."""
    if isinstance(exc, StoreUnavailable):
        return exc.reason
    if isinstance(exc, PoolTimeout):
        return "no free database connection (the store is overloaded or hanging)"
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(original).lower()
    if isinstance(original, sqlite3.Error) or "sqlite" in type(original).__module__:
        # A write the kernel refused (ENOSPC past SQLite's own check, EFBIG past a file size limit) is an
        # I/O error to SQLite (os_unix.c `unixWrite`: only a short write is SQLITE_FULL); say which.
        if getattr(original, "sqlite_errorname", "") in _SQLITE_WRITE_REFUSED:
            return "the store's disk refused a write (is it full?)"
        return next((words for key, words in _SQLITE_FAULTS if key in text), None)
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "the database connection was lost"
    if isinstance(exc, OperationalError):  # PostgreSQL: server down, refused, terminated, out of space
        if "no space left" in text or "could not extend file" in text:
            return "the store's disk is full"
        if "read-only" in text:
            return "the store's database is read-only"
        return "the database is unreachable"
    return None


def retrying(fn: Callable[[], T]) -> T:
    """Run `fn`; once more on a fresh connection when the first one was cut under it.

    A connection killed under a statement (`pg_terminate_backend`, a PostgreSQL restart, a proxy timing out
    an idle connection) rolls its transaction back, so running the call again cannot apply it twice.
    """
    try:
        return fn()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.info("store connection lost (%s); retrying once on a new one", type(exc.orig).__name__)
        return fn()


@dataclass
class _Seen:
    reason: str
    at: float  # monotonic


class StoreFaults:
    """The store's last fault (for `/healthz`) and a log that says each kind of fault once a minute."""

    def __init__(self, log_every_s: float = LOG_EVERY_S) -> None:
        self.log_every_s = log_every_s
        self._lock = threading.Lock()  # the store runs on its own thread, the API on the loop
        self._last: _Seen | None = None
        self._logged: dict[str, float] = {}
        self.count = 0

    def record(self, reason: str, where: str) -> None:
        """A fault happened (`where`: what was being done); logged unless this kind was logged lately."""
        now = time.monotonic()
        with self._lock:
            self.count += 1
            self._last = _Seen(reason, now)
            due = now - self._logged.get(reason, -float("inf")) >= self.log_every_s
            if due:
                self._logged[reason] = now
        if due:
            log.error("store fault during %s: %s (said at most once a minute)", where, reason)

    def ok(self) -> None:
        """A store call succeeded: the store is healthy again."""
        with self._lock:
            self._last = None

    def current(self, within_s: float = 30.0) -> str | None:
        """What is wrong with the store now (a fault in the last `within_s` with no success since)."""
        with self._lock:
            last = self._last
        if last is None or time.monotonic() - last.at > within_s:
            return None
        return last.reason
