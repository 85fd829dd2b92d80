"""The lease in-process: one leader per station on PostgreSQL, epochs that fence an older leader's writes, and
the SQLite lock file that keeps a second controller off a store file."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from controller.packages import PackageIn, PackageState
from controller.store import Store
from controller.store.lease import LEASE_POLL_S, FileLock, Lease, LeaseLost, NotLeader, StoreLocked, lock_file


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    """The store, opened (so its schema is at head) before any lease."""
    s = Store(postgres_url)
    yield s
    s.close()


def acquired(lease: Lease, within_s: float = 5.0) -> bool:
    """Poll for the lock as a standby does: a dropped session frees it once the server has noticed."""
    deadline = time.monotonic() + within_s
    while not lease.try_acquire():
        if time.monotonic() > deadline:
            return False
        time.sleep(LEASE_POLL_S)
    return True


def backend_pid(lease: Lease) -> int:
    """The server process of the lease's lock session."""
    return int(lease._session().exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def pkg(key: str) -> PackageIn:
    return PackageIn(key=key, weight=1.0, dest_lat=33.45, dest_lon=-112.25)


@pytest.mark.postgres
def test_one_leader_per_station_and_each_takeover_bumps_the_epoch(postgres_url: str, store: Store) -> None:
    first, second = Lease(postgres_url, "s1", "first"), Lease(postgres_url, "s1", "second")
    other_station = Lease(postgres_url, "s2", "other")
    try:
        assert first.try_acquire() and first.epoch == 1
        assert not second.try_acquire() and second.epoch is None
        assert second.seen is not None and (second.seen.epoch, second.seen.holder) == (1, "first")
        assert other_station.try_acquire() and other_station.epoch == 1  # stations do not share a lock
        first.release()  # the session ends: the lock is free
        assert second.try_acquire() and second.epoch == 2
        assert second.verify().holder == "second"
    finally:
        for lease in (first, second, other_station):
            lease.release()


@pytest.mark.postgres
def test_an_old_leader_cannot_write_after_a_takeover(postgres_url: str) -> None:
    lost: list[LeaseLost] = []
    old_store, new_store = Store(postgres_url), Store(postgres_url)
    old = Lease(postgres_url, "s1", "old", on_lost=lost.append)
    new = Lease(postgres_url, "s1", "new")
    try:
        assert old.try_acquire()
        old_store.fence, new_store.fence = old.check, new.check
        created, _ = old_store.submit(pkg("before"))  # the leader writes
        assert not new.try_acquire()  # a standby, which has seen who leads
        with pytest.raises(NotLeader, match=r"standby.*the leader is old \(epoch 1"):
            new_store.submit(pkg("standby"))  # a standby does not
        # The old leader's lock session drops (a network cut while it was paused): the standby takes over.
        old._drop_session()
        assert acquired(new) and new.epoch == 2
        with pytest.raises(LeaseLost, match="led at epoch 1, but the lease is at epoch 2") as caught:
            old_store.transition(created.id, PackageState.VAN, reason="late write of a paused leader")
        assert lost == [caught.value]  # told once, so the controller stops
        with pytest.raises(LeaseLost):  # and every later write is refused without asking the database
            old_store.submit(pkg("after"))
        assert new_store.get(created.id).state is PackageState.RECEIVED  # nothing of the late write landed
        assert new_store.get_by_key("after") is None
        new_store.transition(created.id, PackageState.VAN, reason="the new leader writes")
        with pytest.raises(LeaseLost):  # the old one's own check of its lease says so too
            old.verify()
    finally:
        old.release()
        new.release()
        old_store.close()
        new_store.close()


@pytest.mark.postgres
def test_a_takeover_waits_for_the_old_leaders_write_under_way(postgres_url: str, store: Store) -> None:
    """The epoch bump waits for a write transaction that already passed the fence: that write lands before
    the new leader reads anything, and none passes after."""
    old = Lease(postgres_url, "s1", "old")
    new = Lease(postgres_url, "s1", "new")
    in_write, finish = threading.Event(), threading.Event()
    try:
        assert old.try_acquire()

        def slow_fence(conn: object) -> None:
            old.check(conn)  # type: ignore[arg-type]
            in_write.set()
            assert finish.wait(10)

        store.fence = slow_fence
        writer = threading.Thread(target=store.submit, args=(pkg("in-flight"),))
        writer.start()
        assert in_write.wait(10)
        old.release()  # its lock is free at once (its write's session is another one)
        taken = threading.Thread(target=new.try_acquire)
        taken.start()
        taken.join(0.5)
        assert taken.is_alive()  # blocked on the old leader's share lock of the lease row
        finish.set()
        writer.join(10)
        taken.join(10)
        assert new.epoch == 2
        assert store.get_by_key("in-flight") is not None
    finally:
        finish.set()
        old.release()
        new.release()


@pytest.mark.postgres
def test_the_lock_frees_when_the_leaders_session_is_killed(postgres_url: str, store: Store) -> None:
    leader, standby = Lease(postgres_url, "s1", "leader"), Lease(postgres_url, "s1", "standby")
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        assert leader.try_acquire()
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend_pid(leader)})
        assert acquired(standby) and standby.epoch == 2
        with pytest.raises(LeaseLost, match="held by standby"):
            leader.verify()  # its session is gone and the lock is someone else's: it no longer leads
    finally:
        leader.release()
        standby.release()
        admin.dispose()


@pytest.mark.postgres
def test_a_leader_whose_session_dropped_keeps_the_lease_when_nobody_took_it(
    postgres_url: str, store: Store
) -> None:
    leader = Lease(postgres_url, "s1", "leader")
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        assert leader.try_acquire()
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend_pid(leader)})
        assert leader.verify().epoch == 1  # locked again, same epoch: still the leader
    finally:
        leader.release()
        admin.dispose()


@pytest.mark.postgres
def test_bad_lease_arguments_name_the_field(postgres_url: str, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="field 'name'"):
        Lease(postgres_url, "x" * 129, "h")
    with pytest.raises(Exception, match=r"field 'store_url'.*PostgreSQL"):
        Lease(f"sqlite:///{tmp_path / 's.sqlite3'}", "s1", "h")


def test_sqlite_lock_file_names_the_holders_pid(tmp_path: Path) -> None:
    store_file = tmp_path / "station.sqlite3"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from controller.store.lease import FileLock; FileLock(sys.argv[1]).acquire(); "
         "print('locked', flush=True); time.sleep(60)", str(store_file)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        with pytest.raises(StoreLocked, match=f"in use by process {holder.pid}") as caught:
            FileLock(store_file).acquire()
        assert caught.value.pid == holder.pid and caught.value.path == lock_file(store_file)
    finally:
        holder.kill()
        holder.wait(10)
    with FileLock(store_file):  # the kernel released it with the process
        assert lock_file(store_file).read_text() == f"{os.getpid()}\n"


@pytest.mark.postgres
async def test_a_fenced_write_ends_the_leadership(postgres_url: str, store: Store) -> None:
    """The write path alone (no lease check in between) tells the controller to stop: role `fenced`."""
    from controller.service.leadership import Leadership

    leader = Leadership("s1", postgres_url, "leader", watch_s=60)  # its own checks are far apart here
    standby = Leadership("s1", postgres_url, "standby")
    try:
        assert await leader.open() and leader.epoch == 1
        assert not leader.leading  # the lease is ours; writes from the API wait until the service runs
        leader.serve_as_leader()
        assert leader.leading and leader.health() == {"role": "leader", "epoch": 1}
        assert not await standby.open() and standby.health() == {
            "role": "standby",
            "epoch": 1,
            "leader": standby.describe_leader(),
        }
        store.fence = leader.fence
        store.submit(pkg("while-leading"))
        assert leader._lease is not None
        await asyncio.to_thread(leader._lease._drop_session)  # its lock session is cut
        async with asyncio.timeout(10):
            await standby.wait_for_lease()
        assert standby.epoch == 2
        with pytest.raises(LeaseLost):
            await asyncio.to_thread(store.submit, pkg("stale"))
        async with asyncio.timeout(5):
            await leader.lost_lease.wait()
        assert leader.role == "fenced" and not leader.leading
        assert await leader.watch() is leader.lost
    finally:
        await leader.close()
        await standby.close()
