"""Folding SQLite's write-ahead log back into the database file, on a thread of its own.

SQLite's default checkpoints inside whichever commit pushes the log past 1,000 pages, and with
`synchronous=NORMAL` a checkpoint syncs the file twice: measured here, that made one intake commit in a
hundred take 5 to 12 ms instead of under 1 ms, which is most of the API's p99. So the store's connections
turn automatic checkpoints off (`schema.open_engine`) and this thread runs a PASSIVE checkpoint every
`interval_s` on its own connection: PASSIVE never waits for readers or the writer, it copies what it can,
and the log stays small as long as the thread runs.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["Checkpointer"]

log = logging.getLogger("lastmile.store")


class Checkpointer:
    """`Checkpointer(path).start()` ... `.stop()`: a PASSIVE checkpoint of `path` every `interval_s`."""

    def __init__(self, path: str, interval_s: float = 0.5) -> None:
        self.path = path
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._rounds = 0
        self._round_done = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="lastmile-store-checkpoint", daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after one last checkpoint, so a closed store leaves little in the log."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def wait_for_round(self, timeout: float) -> bool:
        """Block until a checkpoint that starts after this call has finished; False on timeout."""
        with self._round_done:
            target = self._rounds + 2  # the round under way may have started before this call
            return self._round_done.wait_for(lambda: self._rounds >= target, timeout)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None  # opened at the first round, not while the store opens
        try:
            while True:
                stopping = self._stop.wait(self.interval_s)
                try:
                    conn = conn or sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # a busy or vanished file: the next round tries again
                    log.debug("checkpoint of %s skipped: %s", self.path, exc)
                with self._round_done:
                    self._rounds += 1
                    self._round_done.notify_all()
                if stopping:
                    return
        finally:
            if conn is not None:
                conn.close()
