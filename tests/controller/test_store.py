"""The store, on a real SQLite file and a real PostgreSQL schema (`store_url` runs each test on both)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from controller.errors import ControllerError, InputError
from controller.packages import PackageIn, PackageState
from controller.store import (
    IdempotencyConflict,
    InvalidTransition,
    KeysTaken,
    Move,
    StateMismatch,
    Store,
    StoreOpenError,
    UnknownMission,
    UnknownPackage,
    current_revision,
    head_revision,
    mission_row,
)
from controller.store.models import metadata, packages

S = PackageState


def pkg(key: str = "k-1", **changes: Any) -> PackageIn:
    data: dict[str, Any] = {"key": key, "weight": 1.5, "dest_lat": 52.52, "dest_lon": 13.405, **changes}
    return PackageIn(**data)


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], Store]]:
    """Open more Store instances on the same database (another process, or after a restart)."""
    opened: list[Store] = []

    def make() -> Store:
        s = Store(store_url)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


def row_counts(store: Store) -> tuple[int, int]:
    events, _ = store.events_since(0, limit=10_000)
    return sum(store.count_by_state().values()), len(events)


# --- schema -------------------------------------------------------------------------------------------------


def test_migrations_create_the_tables_at_head(store: Store, store_url: str) -> None:
    assert current_revision(store._engine) == head_revision() == "0004"
    tables = set(inspect(store._engine).get_table_names())
    assert {"packages", "package_events", "missions", "lease", "delivery_proofs", "alembic_version"} <= tables
    # The Core table definitions the code uses agree with what the migrations built.
    with store._engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), metadata)
    assert diffs == []


def test_reopening_does_not_migrate_again_and_keeps_data(
    store: Store, open_store: Callable[[], Store]
) -> None:
    created, _ = store.submit(pkg())
    again = open_store()
    assert again.get(created.id) == created
    assert current_revision(again._engine) == head_revision()


# --- intake -------------------------------------------------------------------------------------------------


def test_submit_stores_a_received_package_in_si_units(store: Store) -> None:
    deadline = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
    p, created = store.submit(pkg(weight=4, weight_unit="lb", deadline=deadline, recipient="A. Lovelace"))
    assert created
    assert p.state is S.RECEIVED
    assert p.weight_kg == pytest.approx(4 * 0.45359237)
    got = store.get(p.id)
    assert got == p
    assert got.deadline == deadline and got.deadline.tzinfo is not None
    assert got.created_at.utcoffset() == timedelta(0)
    assert abs(got.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    [event] = store.history(p.id)
    assert (event.from_state, event.to_state, event.reason) == (None, S.RECEIVED, "received")
    assert store.get_by_key("k-1") == p
    assert store.get_by_key("nope") is None


def test_resubmitting_the_same_content_returns_the_same_package(store: Store) -> None:
    first, created = store.submit(pkg(weight=2, weight_unit="lb"))
    again, created_again = store.submit(pkg(weight=2 * 0.45359237))  # a retry that converted first
    assert created and not created_again
    assert again.id == first.id
    assert row_counts(store) == (1, 1)


def test_same_key_other_content_is_a_conflict_and_changes_nothing(store: Store) -> None:
    first, _ = store.submit(pkg())
    with pytest.raises(IdempotencyConflict) as info:
        store.submit(pkg(weight=9.0))
    err = info.value
    assert isinstance(err, InputError)
    assert err.key == "k-1" and err.package_id == first.id and err.field == "key"
    assert store.get(first.id).weight_kg == 1.5
    assert row_counts(store) == (1, 1)


def test_batch_is_stored_whole(store: Store) -> None:
    results = store.submit_many([pkg("a"), pkg("b"), pkg("a")])
    assert [created for _, created in results] == [True, True, False]
    assert results[0][0].id == results[2][0].id
    assert [p.key for p in store.list()] == ["a", "b"]  # submission order is kept


def test_batch_with_a_conflicting_item_stores_nothing(store: Store) -> None:
    store.submit(pkg("taken"))
    with pytest.raises(IdempotencyConflict) as info:
        store.submit_many([pkg("new-1"), pkg("new-2"), pkg("taken", weight=3.0), pkg("new-3")])
    assert info.value.row == 2
    assert [p.key for p in store.list()] == ["taken"]
    assert row_counts(store) == (1, 1)


def test_batch_with_an_invalid_item_names_row_and_field_and_stores_nothing(store: Store) -> None:
    good = {"key": "x", "weight": 1, "dest_lat": 48.85, "dest_lon": 2.35}
    with pytest.raises(InputError) as info:
        store.submit_many([good, {**good, "key": "y", "weight": float("nan")}])
    assert (info.value.row, info.value.field) == (1, "weight")
    assert "finite" in str(info.value)
    assert store.list() == []


def test_same_key_from_two_stores_at_once_gives_one_package(open_store: Callable[[], Store]) -> None:
    a, b = open_store(), open_store()
    rounds = 8
    for i in range(rounds):
        barrier = threading.Barrier(2)

        def go(s: Store, i: int = i, barrier: threading.Barrier = barrier) -> tuple[str, bool]:
            barrier.wait(timeout=10)
            p, created = s.submit(pkg(f"race-{i}"))
            return p.id, created

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(go, [a, b]))
        assert results[0][0] == results[1][0]
        assert sorted(created for _, created in results) == [False, True]
    assert row_counts(a) == (rounds, rounds)


def test_same_key_different_content_from_two_stores_at_once(open_store: Callable[[], Store]) -> None:
    a, b = open_store(), open_store()
    barrier = threading.Barrier(2)

    def go(args: tuple[Store, float]) -> str:
        s, weight = args
        barrier.wait(timeout=10)
        try:
            s.submit(pkg("contested", weight=weight))
        except IdempotencyConflict:
            return "conflict"
        return "stored"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(go, [(a, 1.0), (b, 2.0)]))
    assert outcomes == ["conflict", "stored"]
    assert row_counts(a) == (1, 1)


@pytest.mark.postgres
def test_lost_insert_race_rereads_and_compares(postgres_url: str) -> None:
    """Drive the unique-violation path for certain: another transaction holds the key uncommitted."""
    store = Store(postgres_url)
    other = create_engine(postgres_url)
    try:
        probe = pkg("held")
        row = Store._new_row(probe, probe.content_hash(), datetime.now(UTC))
        with other.connect() as conn:
            tx = conn.begin()
            conn.execute(packages.insert().values(**row))
            with ThreadPoolExecutor(1) as pool:
                future = pool.submit(store.submit, probe)
                # Wait (polling, bounded) until the store's INSERT is blocked on our uncommitted row.
                with other.connect() as watch:
                    deadline = datetime.now(UTC) + timedelta(seconds=10)
                    while not watch.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND query ILIKE 'INSERT INTO packages%'"
                        )
                    ).scalar():
                        assert datetime.now(UTC) < deadline, "the store never waited on the held key"
                        watch.rollback()
                tx.commit()
                got, created = future.result(timeout=10)
        assert (got.id, created) == (row["id"], False)
    finally:
        other.dispose()
        store.close()


# --- reading ------------------------------------------------------------------------------------------------


def test_unknown_ids(store: Store) -> None:
    with pytest.raises(UnknownPackage) as info:
        store.get("0" * 32)
    assert info.value.package_id == "0" * 32 and isinstance(info.value, ControllerError)
    with pytest.raises(UnknownPackage):
        store.history("0" * 32)
    with pytest.raises(UnknownPackage):
        store.transition("0" * 32, S.ASSIGNED, reason="x")


def test_pages_cover_everything_once_in_order(store: Store) -> None:
    store.submit_many([pkg(f"p{i:02d}") for i in range(25)])
    seen: list[str] = []
    after = None
    pages = []
    while True:
        page = store.list(limit=10, after=after)
        if not page:
            break
        pages.append(len(page))
        seen += [p.key for p in page]
        after = page[-1].id
        if len(seen) == 20:
            store.submit(pkg("late"))  # arrives while a client is paging: shows up at the end
    assert pages == [10, 10, 6]
    assert seen == [f"p{i:02d}" for i in range(25)] + ["late"]


def test_list_filters_by_state(store: Store) -> None:
    ps = [p for p, _ in store.submit_many([pkg(f"s{i}") for i in range(4)])]
    store.transition(ps[1].id, S.ASSIGNED, reason="assigned", vehicle_id="d1", mode="drone")
    store.transition(ps[2].id, S.VAN, reason="overweight", reasons=["overweight"])
    assert [p.key for p in store.list(state=S.RECEIVED)] == ["s0", "s3"]
    assert [p.key for p in store.list(state=["assigned", S.VAN])] == ["s1", "s2"]
    assert [p.key for p in store.list(state="received", limit=1, after=ps[0].id)] == ["s3"]
    counts = store.count_by_state()
    assert counts[S.RECEIVED] == 2 and counts[S.ASSIGNED] == 1 and counts[S.VAN] == 1
    assert counts[S.DELIVERED] == 0 and set(counts) == set(S)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"after": "nope"}, "after"),
        ({"state": "lost"}, "state"),
    ],
)
def test_bad_list_arguments_name_the_argument(store: Store, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as info:
        store.list(**kwargs)
    assert info.value.field == field


# --- transitions --------------------------------------------------------------------------------------------


def test_a_delivery_is_recorded_step_by_step(store: Store) -> None:
    p, _ = store.submit(pkg())
    eta = datetime.now(UTC) + timedelta(minutes=12)
    assigned = store.transition(
        p.id,
        S.ASSIGNED,
        reason="assigned",
        vehicle_id="drone-7",
        mode="drone",
        eta=eta,
        energy_margin_wh=31.5,
        reasons=[],
        detail={"score": 0.8},
    )
    assert (assigned.vehicle_id, assigned.mode, assigned.energy_margin_wh) == ("drone-7", "drone", 31.5)
    assert assigned.eta == eta
    store.transition(p.id, S.LAUNCHING, reason="operator launch", expect=S.ASSIGNED)
    store.transition(p.id, S.EN_ROUTE, reason="airborne")
    done = store.transition(p.id, S.DELIVERED, reason="released at destination", detail={"error_m": 1.2})
    assert done.state is S.DELIVERED and done.vehicle_id == "drone-7"
    assert store.get(p.id) == done
    history = store.history(p.id)
    assert [(e.from_state, e.to_state) for e in history] == [
        (None, S.RECEIVED),
        (S.RECEIVED, S.ASSIGNED),
        (S.ASSIGNED, S.LAUNCHING),
        (S.LAUNCHING, S.EN_ROUTE),
        (S.EN_ROUTE, S.DELIVERED),
    ]
    assert [e.reason for e in history] == [
        "received",
        "assigned",
        "operator launch",
        "airborne",
        "released at destination",
    ]
    assert history[1].detail == {"score": 0.8} and history[-1].detail == {"error_m": 1.2}
    assert [e.id for e in history] == sorted(e.id for e in history)
    assert all(a.at <= b.at for a, b in itertools.pairwise(history))
    assert p.id not in {u.id for u in store.unfinished()}


def test_refused_transition_changes_nothing(store: Store) -> None:
    p, _ = store.submit(pkg())
    with pytest.raises(InvalidTransition) as info:
        store.transition(p.id, S.DELIVERED, reason="teleported")
    assert "cannot go from received to delivered" in str(info.value)
    store.transition(p.id, S.CANCELLED, reason="customer cancelled")
    with pytest.raises(InvalidTransition):
        store.transition(p.id, S.RECEIVED, reason="undo")
    assert store.get(p.id).state is S.CANCELLED
    assert [e.to_state for e in store.history(p.id)] == [S.RECEIVED, S.CANCELLED]


def test_expect_guards_against_a_stale_decision(store: Store) -> None:
    p, _ = store.submit(pkg())
    store.transition(p.id, S.ASSIGNED, reason="assigned", vehicle_id="robot-2", mode="robot")
    with pytest.raises(StateMismatch) as info:
        store.transition(p.id, S.VAN, reason="no vehicle", expect=S.RECEIVED)
    assert (info.value.expected, info.value.actual) == (S.RECEIVED, S.ASSIGNED)
    assert store.get(p.id).state is S.ASSIGNED and len(store.history(p.id)) == 2


def test_unassign_clears_the_assignment_and_van_says_why(store: Store) -> None:
    p, _ = store.submit(pkg())
    store.transition(
        p.id,
        S.ASSIGNED,
        reason="assigned",
        vehicle_id="d1",
        mode="drone",
        eta=datetime.now(UTC),
        energy_margin_wh=10.0,
    )
    back = store.transition(p.id, S.RECEIVED, reason="re-plan")
    assert (back.vehicle_id, back.mode, back.eta, back.energy_margin_wh) == (None, None, None, None)
    why = {"overweight": "0.8 lb over the drone limit"}
    van = store.transition(p.id, S.VAN, reason="no eligible vehicle", reasons=["overweight"], detail=why)
    assert store.get(p.id) == van
    assert (van.mode, van.reasons, van.detail) == ("van", ["overweight"], why)


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"mode": "boat"}, "mode"),
        ({"eta": datetime(2026, 11, 22, 12, 0)}, "eta"),
        ({"energy_margin_wh": float("nan")}, "energy_margin_wh"),
        ({"reasons": "overweight"}, "reasons"),
        ({"detail": {"t": datetime.now(UTC)}}, "detail"),
        ({"detail": {"hints": {"drone": [1.0, {"x": float("inf")}]}}}, "detail"),
        ({"detail": {"codes": {"too_far", "wind"}}}, "detail"),
        ({"detail": {"by_hour": {7: "late"}}}, "detail"),  # JSON keys are strings: 7 would come back "7"
        ({"detail": {"loop": _circular()}}, "detail"),
        ({"reason": ""}, "reason"),
        ({"to_state": "teleported"}, "to_state"),
    ],
)
def test_bad_transition_arguments_change_nothing(store: Store, fields: dict[str, Any], field: str) -> None:
    p, _ = store.submit(pkg())
    args: dict[str, Any] = {"to_state": S.ASSIGNED, "reason": "assigned", **fields}
    with pytest.raises(InputError) as info:
        store.transition(p.id, **args)
    assert info.value.field == field
    assert store.get(p.id) == p and len(store.history(p.id)) == 1


def test_detail_json_can_hold_is_accepted_beyond_the_plain_shapes(store: Store) -> None:
    """Tuples and str subclasses are not the common shape, but JSON holds them."""
    p, _ = store.submit(pkg())
    detail = {"pair": (1, 2), "state": S.RECEIVED, "nested": [{"ok": True, "x": None}]}
    store.transition(p.id, S.ASSIGNED, reason="assigned", detail=detail)
    stored = {"pair": [1, 2], "state": "received", "nested": [{"ok": True, "x": None}]}
    assert store.get(p.id).detail == stored and store.history(p.id)[-1].detail == stored


def test_concurrent_transitions_of_one_package_let_exactly_one_win(open_store: Callable[[], Store]) -> None:
    a, b = open_store(), open_store()
    p, _ = a.submit(pkg())
    barrier = threading.Barrier(2)

    def go(args: tuple[Store, str]) -> str:
        s, vehicle = args
        barrier.wait(timeout=10)
        try:
            s.transition(p.id, S.ASSIGNED, reason="assigned", vehicle_id=vehicle, mode="drone")
        except InvalidTransition:
            return "refused"
        return vehicle

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(go, [(a, "d1"), (b, "d2")]))
    assert outcomes.count("refused") == 1
    winner = next(o for o in outcomes if o != "refused")
    assert a.get(p.id).vehicle_id == winner
    assert [e.to_state for e in a.history(p.id)] == [S.RECEIVED, S.ASSIGNED]


def test_many_moves_are_one_all_or_nothing_commit(store: Store) -> None:
    a, b, c = (p for p, _ in store.submit_many([pkg("m1"), pkg("m2"), pkg("m3")]))
    done = store.transition_many(
        [
            Move(a.id, S.ASSIGNED, "assigned", fields={"vehicle_id": "d1", "mode": "drone"}),
            Move(
                b.id,
                S.VAN,
                "overweight",
                detail={"overweight": "3 kg over"},
                fields={"reasons": ["overweight"]},
            ),
            Move(a.id, S.LAUNCHING, "auto launch", expect=S.ASSIGNED),  # the same package twice, in order
        ]
    )
    assert [(p.id, p.state) for p in done] == [(a.id, S.ASSIGNED), (b.id, S.VAN), (a.id, S.LAUNCHING)]
    assert store.get(a.id).vehicle_id == "d1" and store.get(b.id).reasons == ["overweight"]
    assert store.get(a.id).state is S.LAUNCHING  # the later move of the same package is the one kept
    before = row_counts(store)
    with pytest.raises(InvalidTransition):
        store.transition_many([Move(c.id, S.ASSIGNED, "assigned"), Move(b.id, S.RECEIVED, "undo van")])
    with pytest.raises(InputError) as info:
        store.transition_many([Move(c.id, S.ASSIGNED, "assigned"), Move(c.id, S.LAUNCHING, "")])
    assert (info.value.row, info.value.field) == (1, "reason")
    assert store.get(c.id).state is S.RECEIVED and row_counts(store) == before


def test_a_tick_of_hand_overs_stores_each_package_its_own_values(store: Store) -> None:
    ps = [p for p, _ in store.submit_many([pkg(f"v{i}") for i in range(60)])]
    moves = [
        Move(p.id, S.VAN, f"reason {i}", fields={"reasons": [f"r{i}"]})
        if i % 3
        else Move(p.id, S.ASSIGNED, "assigned", fields={"vehicle_id": f"d{i}", "mode": "drone"})
        for i, p in enumerate(ps)
    ]
    store.transition_many(moves)
    for i, p in enumerate(ps):
        got = store.get(p.id)
        if i % 3:
            assert (got.state, got.reasons, got.mode) == (S.VAN, [f"r{i}"], "van")
        else:
            assert (got.state, got.vehicle_id) == (S.ASSIGNED, f"d{i}")
        assert store.history(p.id)[-1].reason == (f"reason {i}" if i % 3 else "assigned")


# --- the fallback feed and restarts -------------------------------------------------------------------------


def test_event_feed_with_cursor_and_filter(store: Store) -> None:
    ps = [p for p, _ in store.submit_many([pkg(f"f{i}") for i in range(3)])]
    events, cursor = store.events_since(0)
    assert [e.package_id for e in events] == [p.id for p in ps] and cursor == events[-1].id
    assert store.events_since(cursor) == ([], cursor)

    store.transition(ps[0].id, S.VAN, reason="too far", reasons=["out_of_range"])
    store.transition(ps[1].id, S.ASSIGNED, reason="assigned", vehicle_id="r1", mode="robot")
    store.transition(ps[2].id, S.VAN, reason="overweight", reasons=["overweight"])
    vans, van_cursor = store.events_since(cursor, to_state=S.VAN)
    assert [(e.package_id, e.reason) for e in vans] == [(ps[0].id, "too far"), (ps[2].id, "overweight")]
    assert van_cursor == vans[-1].id
    # A filtered feed moves past what it skipped, and pages with `limit`.
    store.transition(ps[1].id, S.RECEIVED, reason="robot fault")
    empty, skipped_to = store.events_since(van_cursor, to_state="van")
    assert empty == [] and skipped_to > van_cursor
    first, c1 = store.events_since(0, limit=4)
    rest, c2 = store.events_since(c1, limit=4)
    assert len(first) == 4 and len(rest) == 3 and c2 == rest[-1].id
    with pytest.raises(InputError) as info:
        store.events_since(-1)
    assert info.value.field == "cursor"


def test_a_restarted_store_resumes_unfinished_packages_and_missions(
    store: Store, open_store: Callable[[], Store]
) -> None:
    ps = [p for p, _ in store.submit_many([pkg(f"r{i}") for i in range(4)])]
    store.transition(ps[0].id, S.ASSIGNED, reason="assigned", vehicle_id="d1", mode="drone")
    store.transition(ps[0].id, S.LAUNCHING, reason="launch")
    store.transition(ps[1].id, S.VAN, reason="overweight", reasons=["overweight"])
    store.transition(ps[2].id, S.CANCELLED, reason="customer")
    m1 = store.create_mission(ps[0].id, "d1", "drone", {"items": [[52.52, 13.405, 40.0]]})
    m2 = store.create_mission(ps[3].id, "r1", "robot", {"nodes": ["n1"]})
    store.update_mission(m2.id, state="completed")
    store.close()

    restarted = open_store()
    assert [(p.key, p.state) for p in restarted.unfinished()] == [("r0", S.LAUNCHING), ("r3", S.RECEIVED)]
    [mission] = restarted.missions()
    assert mission == m1 and mission.plan == {"items": [[52.52, 13.405, 40.0]]}
    assert {m.id for m in restarted.missions(unfinished_only=False)} == {m1.id, m2.id}
    updated = restarted.update_mission(m1.id, state="active", plan={"items": []})
    assert restarted.get_mission(m1.id) == updated and updated.updated_at >= m1.updated_at
    assert restarted.missions(package_id=ps[3].id, unfinished_only=False)[0].state == "completed"


def test_bad_mission_calls(store: Store) -> None:
    p, _ = store.submit(pkg())
    with pytest.raises(UnknownPackage):
        store.create_mission("f" * 32, "d1", "drone", {})
    with pytest.raises(InputError) as info:
        store.create_mission(p.id, "d1", "submarine", {})
    assert info.value.field == "kind"
    with pytest.raises(UnknownMission):
        store.update_mission("f" * 32, state="active")
    assert store.missions(unfinished_only=False) == []


def test_two_stores_opening_a_new_database_at_once(open_store: Callable[[], Store]) -> None:
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: open_store(), range(2))
    p, _ = a.submit(pkg())
    assert b.get(p.id) == p


def test_unreachable_database_is_a_clear_error_without_the_password(tmp_path: Any) -> None:
    with pytest.raises(StoreOpenError) as info:
        Store("postgresql+psycopg://fleet:s3cret@127.0.0.1:1/none?connect_timeout=2")
    assert "cannot open the store" in str(info.value) and "s3cret" not in str(info.value)
    with pytest.raises(StoreOpenError):
        Store(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.sqlite3'}")
    for bad in ("lastmile.sqlite3", "oracle+nosuchdriver://x/y"):
        with pytest.raises(StoreOpenError) as info:
            Store(bad)
        assert "not a usable database URL" in str(info.value)


def test_a_database_from_a_newer_release_is_refused(store: Store, store_url: str) -> None:
    p, _ = store.submit(pkg())
    with store._engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreOpenError) as info:
        Store(store_url)
    assert "newer" in str(info.value)
    with store._engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()})
    assert Store(store_url).get(p.id) == p


def test_get_many_keeps_order_and_names_a_missing_id(store: Store) -> None:
    made = [store.submit(PackageIn(key=k, weight=1.0, dest_lat=33.4, dest_lon=-112.2))[0] for k in "abc"]
    ids = [made[2].id, made[0].id, made[1].id]
    assert [p.id for p in store.get_many(ids)] == ids
    with pytest.raises(UnknownPackage) as err:
        store.get_many([made[0].id, "nope"])
    assert err.value.package_id == "nope"


def test_sqlite_log_is_folded_into_the_file_while_the_store_runs(tmp_path: Any) -> None:
    """Commits never checkpoint inline (that was the API's tail latency); the checkpointer's thread does,
    so the database file keeps up with the log while the store is open."""
    import sqlite3

    path = tmp_path / "ckpt.sqlite3"
    store = Store(f"sqlite:///{path}")
    try:
        with store._engine.connect() as conn:  # the store's connections never checkpoint inside a commit
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        store.submit_many([pkg(f"c{i}") for i in range(3000)])
        assert store.checkpointer is not None and store.checkpointer.wait_for_round(timeout=10)
        file_only = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # ignores the log
        try:
            assert file_only.execute("SELECT count(*) FROM packages").fetchone() == (3000,)
        finally:
            file_only.close()
    finally:
        store.close()


# --- one transaction for a pass -----------------------------------------------------------------------------


def test_check_in_writes_nothing_and_record_stores_new_packages_already_moved(store: Store) -> None:
    ((old, _),) = store.submit_many([pkg("old")])
    submission = store.check_in([pkg("old"), pkg("new"), pkg("new")])
    assert [created for _, created in submission.stored] == [False, True, False]
    assert submission.stored[1][0].id == submission.stored[2][0].id  # a repeated key names one package
    assert store.get_by_key("new") is None and row_counts(store) == (1, 1)
    new = submission.new[0]
    mission = mission_row(new.id, "d1", "drone", {"job": {}}, mission_id="m-new")
    moved = store.record(
        submission,
        [
            Move(
                new.id,
                S.ASSIGNED,
                "assigned to drone d1",
                expect=S.RECEIVED,
                fields={
                    "vehicle_id": "d1",
                    "mode": "drone",
                    "eta": datetime(2027, 1, 1, 12, tzinfo=UTC),
                    "energy_margin_wh": 12,
                },
                detail={"route": [[1.0, 2.0]]},
            ),
            Move(old.id, S.VAN, "too far", expect=S.RECEIVED, fields={"reasons": ["too_far"]}),
        ],
        [mission],
    )
    assert [(p.key, p.state) for p in moved] == [("new", S.ASSIGNED), ("old", S.VAN)]
    assert moved == [store.get(new.id), store.get(old.id)]  # what record returns is what it stored
    assert store.get(new.id).vehicle_id == "d1" and store.get_mission("m-new").package_id == new.id
    history = store.history(new.id)
    assert [e.to_state for e in history] == [S.RECEIVED, S.ASSIGNED] and history[0].at < history[1].at


def test_a_pass_that_cannot_be_recorded_stores_none_of_it(store: Store) -> None:
    ((old, _),) = store.submit_many([pkg("old")])
    store.transition(old.id, S.VAN, reason="handed over", reasons=["operator"])
    submission = store.check_in([pkg("n1"), pkg("n2")])
    n1 = submission.new[0]
    before = row_counts(store)
    with pytest.raises(StateMismatch):  # the old package moved since the pass read it
        store.record(
            submission,
            [
                Move(n1.id, S.VAN, "too far", expect=S.RECEIVED),
                Move(old.id, S.VAN, "again", expect=S.RECEIVED),
            ],
            [mission_row(n1.id, "d1", "drone", mission_id="m-1")],
        )
    assert row_counts(store) == before and store.get_by_key("n1") is None and store.missions() == []
    store.record(submission)  # the same check-in, recorded alone, still goes in
    assert store.get(n1.id).state is S.RECEIVED


def test_a_key_stored_by_another_writer_since_check_in_is_reported_not_half_stored(store: Store) -> None:
    submission = store.check_in([pkg("a"), pkg("raced")])
    other = Store(store.url)
    try:
        other.submit(pkg("raced"))
    finally:
        other.close()
    with pytest.raises(KeysTaken):
        store.record(submission)
    assert store.get_by_key("a") is None
    again = store.check_in([pkg("a"), pkg("raced")])
    assert [created for _, created in again.stored] == [True, False]


def test_sqlite_datetimes_are_written_exactly_as_sqlalchemy_writes_them() -> None:
    from sqlalchemy.dialects import sqlite

    from controller.store.models import UTCDateTime

    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    theirs = sqlite.DATETIME().bind_processor(dialect)
    plus_two = timezone(timedelta(hours=2))
    for moment in (
        datetime(2026, 11, 22, 5, 0, tzinfo=UTC),  # no microseconds: still written with six digits
        datetime(2026, 11, 22, 5, 0, 1, 7, tzinfo=UTC),
        datetime(2026, 11, 22, 5, 0, 1, 999999, tzinfo=UTC),  # the same second again, other microseconds
        datetime(2026, 11, 23, 5, 0, 1, 7, tzinfo=UTC),  # the same time of day, another day
        datetime(2026, 1, 1, 0, 30, 0, 999999, tzinfo=plus_two),  # another zone: stored as UTC
        datetime(999, 3, 4, 5, 6, 7, 8, tzinfo=UTC),  # a short year: padded, so the text is still fixed width
    ):
        expected = theirs(moment.astimezone(UTC).replace(tzinfo=None))
        assert ours(moment) == expected
        assert ours(moment) == expected  # the same object twice in a row: the kept text
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours(datetime(2026, 11, 22, 5, 0))


def test_empty_columns_left_out_of_a_batch_insert_read_back_as_empty(store: Store) -> None:
    """A column None in every row is not sent at all; one set in some rows only is sent for all."""
    deadline = datetime(2027, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    plain = [pkg(f"plain-{i}") for i in range(3)]
    mixed = [pkg("m-0"), pkg("m-1", note="back door", deadline=deadline, height_m=0.3), pkg("m-2")]
    stored = store.submit_many(plain) + store.submit_many(mixed)
    for package, _ in stored:
        got = store.get(package.id)
        assert got == package
        if got.key == "m-1":
            assert (got.note, got.deadline, got.height_m) == ("back door", deadline, 0.3)
        else:
            assert (got.note, got.deadline, got.height_m, got.vehicle_id, got.eta) == (None,) * 5
    assert [e.from_state for e in store.history(stored[0][0].id)] == [None]
