"""The role of one `lastmile serve` for its station: leader or hot standby, and the way from one to the other.

`Leadership` wraps the store's lease (`controller.store.lease`) for an asyncio controller:
- On PostgreSQL, `open()` asks for the lease once: the first controller of a station leads, a second one is
  a standby. A standby polls for the lease every `LEASE_POLL_S` (`wait_for_lease`); when the leader's lock
  session ends (the process died, or its host or network did), the standby gets the lock, bumps the epoch
  and leads. The caller then links the vehicles and starts the service (`lastmile serve`).
- The leader checks its lease every `WATCH_S` (`watch`), and every write checks it too (`fence`, installed
  as `Store.fence`). When either finds another controller took over, the leadership is lost for good:
  `lost` is set, writes are refused from then on, and `lastmile serve` stops commanding vehicles and exits
  (a supervisor restarts it, as a standby). Exiting rather than demoting in place: the service, its mission
  tasks and the vehicle links hold state of the old epoch, and a fresh process is the one sure way to
  drop it all.
- On SQLite the OS lock on the store file (`FileLock`) is the whole story: `open()` takes it or raises
  `StoreLocked` naming the pid that holds it; the holder leads, with no epoch.

Every call on the lease's own session runs on one thread of its own, one at a time, never on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from controller.store.lease import LEASE_POLL_S, FileLock, Lease, LeaseLost
from controller.store.schema import sqlite_file

__all__ = ["FENCED_EXIT_CODE", "FENCED_EXIT_S", "WATCH_S", "Leadership", "Role"]

log = logging.getLogger("lastmile.service.leadership")

Role = Literal["leader", "standby", "fenced"]
FENCED_EXIT_CODE = 3  # `lastmile serve`'s exit code when another controller took its station over
FENCED_EXIT_S = 10.0  # a fenced `lastmile serve` that has not stopped by then exits at once
WATCH_S = 0.5  # how often the leader reads its lease back (a takeover it missed shows within this)
_ERROR_LOG_S = 60.0  # a store that cannot be asked about the lease is said at most this often


class Leadership:
    """This controller's role for its station; see the module docstring."""

    def __init__(
        self,
        station: str,
        store_url: str,
        holder: str,
        *,
        poll_s: float = LEASE_POLL_S,
        watch_s: float = WATCH_S,
    ) -> None:
        self.station = station
        self.holder = holder
        self.poll_s = poll_s
        self.watch_s = watch_s
        self.role: Role = "standby"
        self.lost: LeaseLost | None = None
        self.became_leader = asyncio.Event()  # set once this controller serves as the leader
        self.lost_lease = asyncio.Event()  # set once another controller took over from this one
        self._url = store_url
        self._lease: Lease | None = None
        self._file_lock: FileLock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._logged_at = -float("inf")

    # --- views ----------------------------------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        """True while this controller serves as the leader (writes accepted)."""
        return self.role == "leader"

    @property
    def epoch(self) -> int | None:
        """Our epoch while we lead on PostgreSQL; else the epoch of the leader we know of (None on SQLite)."""
        lease = self._lease
        if lease is None:
            return None
        if lease.epoch is not None:
            return lease.epoch
        return lease.seen.epoch if lease.seen is not None else None

    def describe_leader(self) -> str:
        """Who leads, in words, for a standby's answers."""
        seen = self._lease.seen if self._lease is not None else None
        if self.lost is not None:
            return str(self.lost)
        if seen is None:
            return "no leader has taken the lease yet"
        return seen.describe()

    def health(self) -> dict[str, Any]:
        """The role fields of `/healthz`."""
        out: dict[str, Any] = {"role": self.role, "epoch": self.epoch}
        if not self.leading:
            out["leader"] = self.describe_leader()
        return out

    # --- life -----------------------------------------------------------------------------------------------

    async def open(self) -> bool:
        """Take the store's lock (SQLite: or raise `StoreLocked`) or the lease; True when we lead now."""
        self._loop = asyncio.get_running_loop()
        url = make_url(self._url)
        if url.get_backend_name() != "postgresql":
            database = sqlite_file(url)
            if database is not None:
                self._file_lock = await asyncio.to_thread(FileLock(database).acquire)
            self._take()
            return True
        self._lease = Lease(self._url, self.station, self.holder, on_lost=self._lost_from_thread)
        return await self._try()

    async def wait_for_lease(self) -> None:
        """As a standby: until the lease is ours (asked every `poll_s`; a store that is away is waited out).

        Polled: the lock lives in the database, which tells nobody when it frees.
        """
        while True:
            if await self._try():
                return
            await asyncio.sleep(self.poll_s)

    def serve_as_leader(self) -> None:
        """The service runs (vehicles linked, missions resumed): accept writes from now on."""
        if self.lost is None:
            self._take()

    async def watch(self) -> LeaseLost:
        """As the leader: read the lease back every `watch_s`; returns once it is lost (`lost_lease` set)."""
        lease = self._lease
        while lease is not None and self.lost is None:
            try:
                await self._on_thread(lease.verify)
            except LeaseLost:
                break
            except (SQLAlchemyError, OSError) as exc:  # the store is away: our writes fail too; keep asking
                self._say(f"cannot check the lease of station {self.station!r}: {_said(exc)}")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.watch_s):
                    await self.lost_lease.wait()
        await self.lost_lease.wait()
        assert self.lost is not None
        return self.lost

    async def close(self) -> None:
        """Give the lock up (a standby takes over at its next poll) and end the lease's session."""
        if self._lease is not None:
            with contextlib.suppress(Exception):
                await self._on_thread(self._lease.release)
        if self._file_lock is not None:
            self._file_lock.release()
        if self._thread is not None:
            self._thread.shutdown(wait=False, cancel_futures=True)
            self._thread = None

    # --- fencing --------------------------------------------------------------------------------------------

    def fence(self, conn: Connection) -> None:
        """`Store.fence`: on PostgreSQL, refuses a write unless our lease is current (raises)."""
        if self._lease is not None:
            self._lease.check(conn)

    # --- inside ---------------------------------------------------------------------------------------------

    def _take(self) -> None:
        self.role = "leader"
        self.became_leader.set()

    async def _try(self) -> bool:
        assert self._lease is not None
        try:
            return await self._on_thread(self._lease.try_acquire)
        except (SQLAlchemyError, OSError) as exc:
            self._say(f"cannot ask for the lease of station {self.station!r}: {_said(exc)}")
            return False

    async def _on_thread(self, fn: Any) -> Any:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lastmile-lease")
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    def _lost_from_thread(self, lost: LeaseLost) -> None:
        """`Lease.on_lost`, from whichever thread found it (a write's, or the lease's)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._lose, lost)

    def _lose(self, lost: LeaseLost) -> None:
        if self.lost is None:
            self.lost = lost
            self.role = "fenced"
            log.error("%s", lost)
            self.lost_lease.set()

    def _say(self, message: str) -> None:
        now = time.monotonic()
        if now - self._logged_at >= _ERROR_LOG_S:
            self._logged_at = now
            log.warning("%s (said at most once a minute)", message)


def _said(exc: BaseException) -> str:
    """What the database driver said, without SQLAlchemy's wrapping."""
    return str(getattr(exc, "orig", None) or exc)
