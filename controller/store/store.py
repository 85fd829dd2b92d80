"""The store: packages, their event history, and missions, on SQLite (embedded) or PostgreSQL (shared).

Sync SQLAlchemy Core on purpose: each method is one short transaction, and the asyncio controller calls
it through `asyncio.to_thread`, which keeps the database driver out of the event loop entirely.

Guarantees a caller can rely on:
- Idempotent intake: a key names one package forever, even with two processes submitting it at once
  (unique constraint; the loser of the race re-reads and compares content).
- Every state change is checked against `ALLOWED_TRANSITIONS`, with the row locked, and recorded as an
  event in the same transaction: the history is never behind the state.
- Event ids increase in commit order, so a reader polling `events_since(cursor)` never skips an event
  (on PostgreSQL, event writers serialise on a table lock; SQLite has a single writer anyway).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import uuid_utils
from sqlalchemy import Connection, Row, and_, func, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError

from controller.errors import InputError
from controller.packages import TERMINAL_STATES, Package, PackageEvent, PackageIn, PackageState
from controller.store import checks
from controller.store.bulk import insert_rows, update_rows
from controller.store.checkpoint import Checkpointer
from controller.store.customers import CustomerStore, new_tracking_token
from controller.store.errors import IdempotencyConflict, KeysTaken, StoreOpenError, UnknownPackage
from controller.store.missions import MissionStore
from controller.store.models import delivery_proofs, package_events, packages
from controller.store.models import missions as missions_table
from controller.store.moves import Move, Prepared, prepare
from controller.store.proofs import ProofStore, proof_row
from controller.store.schema import WRITE, open_engine, sqlite_file, upgrade
from controller.store.submission import Submission

__all__ = ["DEFAULT_URL", "Store"]

DEFAULT_URL = "sqlite:///lastmile.sqlite3"
MAX_PAGE = 1000
_KEYS_PER_QUERY = 500  # bound parameters per IN (...): far below SQLite's and PostgreSQL's limits
_RECEIVED = PackageState.RECEIVED.value  # once: enum's `.value` is a Python-level property
_SUBMIT_ATTEMPTS = 3  # a lost key race is retried; a third loss in a row means something else is wrong


def _now() -> datetime:
    return datetime.now(UTC)


def _package(row: Row[Any] | Mapping[str, Any]) -> Package:
    data = row._asdict() if isinstance(row, Row) else dict(row)
    return Package.model_validate(data)


def _event(row: Row[Any]) -> PackageEvent:
    return PackageEvent.model_validate(dict(row._mapping))


class Store(MissionStore, CustomerStore, ProofStore):
    """Packages, events and missions in one database; see the module docstring for the guarantees."""

    def __init__(self, url: str = DEFAULT_URL) -> None:
        self.url = url
        self._engine = open_engine(url)
        try:
            upgrade(self._engine)
        except OperationalError as exc:
            self._engine.dispose()
            raise StoreOpenError(f"cannot open the store at {self._safe_url()}: {exc.orig}") from exc
        except BaseException:
            self._engine.dispose()
            raise
        # Called first in every write transaction with its connection; raising refuses the write. A leader's
        # lease check goes here (`controller.store.lease.Lease.check`): see docs/operations.md.
        self.fence: Callable[[Connection], None] | None = None
        database = sqlite_file(self._engine.url)
        self.checkpointer = Checkpointer(database).start() if database is not None else None

    def _safe_url(self) -> str:
        return self._engine.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Store({self._safe_url()!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release every connection; the Store must not be used afterwards."""
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self._engine.dispose()

    def ping(self) -> None:
        """One round trip to the database (`/healthz`); raises what the driver raises when it cannot."""
        with self._engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    # --- transactions ------------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                if self.fence is not None:
                    self.fence(conn)
                yield conn

    def _add_events(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert events last in a transaction, so ids are handed out in commit order (see module doc)."""
        if conn.dialect.name == "postgresql":
            # EXCLUSIVE still lets plain readers through; it only serialises the writers of events.
            conn.exec_driver_sql("LOCK TABLE package_events IN EXCLUSIVE MODE")
        insert_rows(conn, package_events, rows)

    # --- intake ------------------------------------------------------------------------------------------

    def submit(self, pkg: PackageIn) -> tuple[Package, bool]:
        """Store a new package, or return the one this key already names: (package, created).

        Raises `IdempotencyConflict` when the key is taken by different content.
        """
        return self._submit([checks.as_package_in(pkg, None)], batch=False)[0]

    def submit_many(self, pkgs: Sequence[PackageIn | Mapping[str, Any]]) -> list[tuple[Package, bool]]:
        """Submit a batch in one transaction: all stored, or (on any bad item) none.

        Mappings are validated as `PackageIn`; a bad one raises `InputError` naming its row (0-based) and
        field. A key repeated within the batch is treated like a retry of the first occurrence.
        """
        items = [checks.as_package_in(p, i) for i, p in enumerate(pkgs)]
        return self._submit(items, batch=True) if items else []

    def _submit(self, items: list[PackageIn], *, batch: bool) -> list[tuple[Package, bool]]:
        for attempt in range(_SUBMIT_ATTEMPTS):
            submission = self.check_in(items, batch=batch)
            try:
                self.record(submission)
            except KeysTaken:
                # Another process inserted one of our keys between our read and our insert. Our
                # transaction is rolled back; the next check-in sees its row and compares content.
                if attempt == _SUBMIT_ATTEMPTS - 1:
                    raise
                continue
            return submission.stored
        raise AssertionError("unreachable")

    def check_in(self, pkgs: Sequence[PackageIn | Mapping[str, Any]], *, batch: bool = True) -> Submission:
        """Match packages against the keys already stored, writing nothing; `record` stores the new ones.

        Raises `IdempotencyConflict` for a key taken by different content (naming its row when `batch`),
        `InputError` for a bad mapping. Half of `submit_many`, for a caller that decides what to do with
        new packages before storing them, then stores them with that decision in one transaction.
        """
        items = [checks.as_package_in(p, i if batch else None) for i, p in enumerate(pkgs)]
        hashes = [p.content_hash() for p in items]
        keys = sorted({p.key for p in items})
        found: dict[str, Mapping[str, Any]] = {}
        with self._read() as conn:
            for start in range(0, len(keys), _KEYS_PER_QUERY):
                chunk = keys[start : start + _KEYS_PER_QUERY]
                for r in conn.execute(select(packages).where(packages.c.key.in_(chunk))):
                    found[r.key] = r._mapping
        now = _now()
        submission = Submission()
        for i, (pkg, h) in enumerate(zip(items, hashes, strict=True)):
            existing = found.get(pkg.key)
            if existing is not None:
                if existing["content_hash"] != h:
                    raise IdempotencyConflict(pkg.key, package_id=existing["id"], row=i if batch else None)
                submission.stored.append((_package(existing), False))
                continue
            values = self._new_row(pkg, h, now + timedelta(microseconds=len(submission.new_rows)))
            found[pkg.key] = values
            submission.new_rows.append(values)
            submission.stored.append((Package.model_validate(values), True))  # a plain dict: no copy
        return submission

    def record(
        self,
        submission: Submission | None = None,
        moves: Sequence[Move] = (),
        missions: Sequence[Mapping[str, Any]] = (),
    ) -> builtins.list[Package]:
        """Store a checked-in submission, missions and state changes in one transaction, all or none.

        Moves may name packages of `submission`: those are inserted already moved, with both events
        (received, then the move). `missions` are rows from `mission_row`, for packages stored or in the
        submission. Returns the moved packages as stored, in move order. Raises like `transition_many`
        for a move that cannot be made, `KeysTaken` when another writer stored one of the submission's
        keys since `check_in` (check in again); then nothing is changed.
        """
        prepared = _prepare_all(moves)
        # The submission's rows are not changed (a pass that fails plans the same submission again): a new
        # package that moves gets a moved copy below.
        new_rows = {row["id"]: row for row in submission.new_rows} if submission else {}
        now = _now()
        if new_rows:  # a move is never recorded before the package it moves was received
            now = max(now, max(row["created_at"] for row in new_rows.values()) + timedelta(microseconds=1))
        wanted = {p.package_id for p in prepared} | {m["package_id"] for m in missions}
        with self._write() as conn:
            rows = self._lock(conn, sorted(wanted.difference(new_rows)))
            rows.update(new_rows)
            for mission in missions:
                if mission["package_id"] not in rows:
                    raise UnknownPackage(mission["package_id"])
            events: builtins.list[dict[str, Any]] = [_received(row) for row in new_rows.values()]
            # New packages were validated into `Package`s at check-in; a move of one is applied to that copy
            # (its values were checked and normalised by `prepare`), not validated from the row again.
            as_checked_in = {p.id: p for p in submission.new} if submission else {}
            result: builtins.list[Package] = []
            batch = _UpdateBatch(conn)
            for p in prepared:
                row = rows.get(p.package_id)
                if row is None:
                    raise UnknownPackage(p.package_id)
                values, event = p.apply(PackageState(row["state"]), now)
                if p.package_id in new_rows:
                    rows[p.package_id] = new_rows[p.package_id] = {**row, **values}
                else:
                    row.update(values)
                    batch.add(p.package_id, values)
                event["eta"] = rows[p.package_id].get("eta")  # the ETA as of this event (for webhooks)
                events.append(event)
                checked_in = as_checked_in.get(p.package_id)
                if checked_in is None:
                    result.append(_package(row))
                else:
                    moved = checked_in.model_copy(update={**values, "state": p.target})
                    as_checked_in[p.package_id] = moved  # a second move in the pass starts from the first
                    result.append(moved)
            if new_rows:
                try:
                    insert_rows(conn, packages, builtins.list(new_rows.values()))
                except IntegrityError as exc:
                    raise KeysTaken() from exc
            if missions:
                insert_rows(conn, missions_table, missions)
            batch.flush()
            # A delivered move carries its proof of delivery (the service puts it in the detail): stored
            # with the move, so the one is never without the other, even across a crash.
            proofs = [
                proof_row(p.package_id, p.event_detail["proof"])
                for p in prepared
                if p.target is PackageState.DELIVERED and isinstance(p.event_detail.get("proof"), Mapping)
            ]
            if proofs:
                insert_rows(conn, delivery_proofs, proofs)
            if events:
                self._add_events(conn, events)
        return result

    @staticmethod
    def _lock(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The rows of these packages, locked for update in id order (so two writers cannot deadlock)."""
        rows: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), _KEYS_PER_QUERY):
            query = (
                select(packages)
                .where(packages.c.id.in_(ids[start : start + _KEYS_PER_QUERY]))
                .order_by(packages.c.id)
                .with_for_update()
            )
            rows.update((r.id, r._asdict()) for r in conn.execute(query))
        return rows

    @staticmethod
    def _new_row(pkg: PackageIn, content_hash: str, created: datetime) -> dict[str, Any]:
        return {
            # Time-ordered ids (UUIDv7: a millisecond clock, then 74 random bits): new packages land at the
            # end of the id indexes instead of all over them. With random ids every intake commit touched
            # more index pages as the table grew (per-package write cost rose by half over 40,000 rows).
            "id": uuid_utils.uuid7().hex,
            "key": pkg.key,
            "content_hash": content_hash,
            "weight_kg": pkg.weight_kg,
            "dest_lat": pkg.dest_lat,
            "dest_lon": pkg.dest_lon,
            "length_m": pkg.length_m,
            "width_m": pkg.width_m,
            "height_m": pkg.height_m,
            "deadline": pkg.deadline,
            "earliest": pkg.earliest,
            "priority": pkg.priority,
            "recipient": pkg.recipient,
            "note": pkg.note,
            "state": _RECEIVED,
            "created_at": created,
            "updated_at": created,
            "vehicle_id": None,
            "mode": None,
            "eta": None,
            "energy_margin_wh": None,
            "reasons": [],
            "detail": {},
            "tracking_token": new_tracking_token(),
        }

    # --- reading -----------------------------------------------------------------------------------------

    def get(self, package_id: str) -> Package:
        """The package with this id; `UnknownPackage` if there is none."""
        with self._read() as conn:
            row = conn.execute(select(packages).where(packages.c.id == package_id)).first()
        if row is None:
            raise UnknownPackage(package_id)
        return _package(row)

    def get_many(self, package_ids: Sequence[str]) -> builtins.list[Package]:
        """The packages with these ids, in order, in one query; `UnknownPackage` for a missing one."""
        found: dict[str, Package] = {}
        with self._read() as conn:
            for start in range(0, len(package_ids), 500):  # stay under SQLite's bound-parameter limit
                chunk = package_ids[start : start + 500]
                for row in conn.execute(select(packages).where(packages.c.id.in_(chunk))):
                    package = _package(row)
                    found[package.id] = package
        missing = [pid for pid in package_ids if pid not in found]
        if missing:
            raise UnknownPackage(missing[0])
        return [found[pid] for pid in package_ids]

    def get_by_key(self, key: str) -> Package | None:
        """The package the client's key names, or None."""
        with self._read() as conn:
            row = conn.execute(select(packages).where(packages.c.key == key)).first()
        return None if row is None else _package(row)

    def history(self, package_id: str) -> list[PackageEvent]:
        """Every transition of the package, oldest first (the first is always `None -> received`)."""
        with self._read() as conn:
            rows = conn.execute(
                select(package_events)
                .where(package_events.c.package_id == package_id)
                .order_by(package_events.c.id)
            ).all()
        if not rows:
            raise UnknownPackage(package_id)
        return [_event(r) for r in rows]

    def list(
        self,
        *,
        state: PackageState | str | Sequence[PackageState | str] | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> list[Package]:
        """Packages oldest first, a page at a time: pass the last id of a page as `after` for the next.

        Keyset pagination by (created_at, id), so pages stay correct while packages keep arriving.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InputError(f"must be a whole number from 1 to {MAX_PAGE}, got {limit!r}", field="limit")
        wanted = checks.states(state)
        query = select(packages).order_by(packages.c.created_at, packages.c.id).limit(limit)
        if wanted is not None:
            query = query.where(packages.c.state.in_([s.value for s in wanted]))
        with self._read() as conn:
            if after is not None:
                created = conn.execute(select(packages.c.created_at).where(packages.c.id == after)).scalar()
                if created is None:
                    raise InputError(
                        f"unknown package id {after!r}; pass the id of the last package of the previous page",
                        field="after",
                    )
                query = query.where(
                    or_(
                        packages.c.created_at > created,
                        and_(packages.c.created_at == created, packages.c.id > after),
                    )
                )
            return [_package(r) for r in conn.execute(query)]

    def unfinished(self) -> builtins.list[Package]:
        """Every package not in a terminal state, oldest first: what a restarted controller picks up."""
        query = (
            select(packages)
            .where(packages.c.state.not_in([s.value for s in TERMINAL_STATES]))
            .order_by(packages.c.created_at, packages.c.id)
        )
        with self._read() as conn:
            return [_package(r) for r in conn.execute(query)]

    def count_by_state(self) -> dict[PackageState, int]:
        """How many packages are in each state (every state present, zero included)."""
        counts = dict.fromkeys(PackageState, 0)
        with self._read() as conn:
            for st, n in conn.execute(select(packages.c.state, func.count()).group_by(packages.c.state)):
                counts[PackageState(st)] = int(n)
        return counts

    def events_since(
        self, cursor: int, *, to_state: PackageState | str | None = None, limit: int = 1000
    ) -> tuple[builtins.list[PackageEvent], int]:
        """Events with id > cursor, oldest first, and the cursor to pass next time.

        The new cursor moves past events that the `to_state` filter skipped, so a filtered feed does not
        rescan them; it never moves past an event that was not yet committed.
        """
        if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
            raise InputError(f"must be a whole number >= 0, got {cursor!r}", field="cursor")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10 * MAX_PAGE:
            raise InputError(
                f"must be a whole number from 1 to {10 * MAX_PAGE}, got {limit!r}", field="limit"
            )
        wanted = None if to_state is None else checks.state("to_state", to_state)
        with self._read() as conn:
            top = conn.execute(select(func.max(package_events.c.id))).scalar() or 0
            query = (
                select(package_events)
                .where(package_events.c.id > cursor, package_events.c.id <= top)
                .order_by(package_events.c.id)
                .limit(limit)
            )
            if wanted is not None:
                query = query.where(package_events.c.to_state == wanted.value)
            events = [_event(r) for r in conn.execute(query)]
        if len(events) == limit:
            return events, events[-1].id
        return events, max(cursor, top)

    # --- state changes -----------------------------------------------------------------------------------

    def transition(
        self,
        package_id: str,
        to_state: PackageState | str,
        *,
        reason: str,
        detail: Mapping[str, Any] | None = None,
        expect: PackageState | str | None = None,
        **fields: Any,
    ) -> Package:
        """Move a package to `to_state` and record why, atomically; returns the updated package.

        `fields` may set vehicle_id, mode, eta, energy_margin_wh and reasons; `detail` becomes both the
        event's detail and the package's last-decision detail. Fields not given keep their value, except:
        going back to RECEIVED clears the assignment (vehicle_id, mode, eta, energy_margin_wh), and going
        to VAN sets mode "van" and clears vehicle_id. `expect` makes the move conditional on the current
        state (`StateMismatch` otherwise), for callers that decided on a snapshot.
        """
        move = Move(package_id, to_state, reason, detail, expect, fields)
        return self.transition_many([move])[0]

    def transition_many(self, moves: Sequence[Move]) -> builtins.list[Package]:
        """Several transitions in one transaction, all or none: one assignment tick is one commit.

        Raises like `transition` for the first move that cannot be made; then nothing is changed. Rows are
        locked in id order, so two batches touching the same packages cannot deadlock.
        """
        return self.record(moves=moves) if moves else []


def _prepare_all(moves: Sequence[Move]) -> builtins.list[Prepared]:
    """Check every move before anything is read; a bad one names its row when there are several."""
    prepared: builtins.list[Prepared] = []
    for i, move in enumerate(moves):
        try:
            prepared.append(prepare(move))
        except InputError as exc:
            if len(moves) == 1:
                raise
            raise InputError(exc.reason, field=exc.field, row=i) from exc
    return prepared


def _received(row: Mapping[str, Any]) -> dict[str, Any]:
    """The first event of every package."""
    return {
        "package_id": row["id"],
        "at": row["created_at"],
        "from_state": None,
        "to_state": _RECEIVED,
        "reason": "received",
        "detail": {},
        "eta": None,
    }


class _UpdateBatch:
    """Package row updates sent as one executemany per shape of update, not one statement per package.

    A tick's van hand-overs all set the same columns, so they go in one round trip. A package updated twice
    flushes what came before, so its updates land in the order they were asked for.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._pending: dict[tuple[str, ...], builtins.list[dict[str, Any]]] = {}
        self._ids: set[str] = set()

    def add(self, package_id: str, values: Mapping[str, Any]) -> None:
        if package_id in self._ids:
            self.flush()
        self._ids.add(package_id)
        self._pending.setdefault(tuple(sorted(values)), []).append({**values, "id": package_id})

    def flush(self) -> None:
        for rows in self._pending.values():
            update_rows(self._conn, packages, "id", rows)
        self._pending.clear()
        self._ids.clear()
