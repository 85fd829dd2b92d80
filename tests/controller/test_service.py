"""The station service without vehicles: intake, van fallback, weather hold, and recovery from the store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.packages import PackageIn, PackageState
from controller.service import StationService
from controller.station import StationConfig
from controller.store import Store, Submission

ROOT = Path(__file__).resolve().parents[2]


def config(**kw: object) -> StationConfig:
    return StationConfig(
        name="t",
        lat=33.44,
        lon=-112.256,
        tick_s=60.0,
        fleet=[{"id": "d1", "kind": "drone"}, {"id": "r1", "kind": "robot"}],
        **kw,
    )


def request(key: str, kg: float = 1.0) -> PackageIn:
    return PackageIn(key=key, weight=kg, dest_lat=33.45, dest_lon=-112.25)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'station.sqlite3'}")
    yield s
    s.close()


async def test_without_any_vehicle_online_packages_go_to_vans_with_a_reason(store: Store) -> None:
    async with StationService(config(), store) as service:
        seen = service.bus.last_seq
        ((package, created, decision),) = await service.submit([request("a")])
        assert created and package.state is PackageState.VAN
        assert decision["decision"] == "van" and decision["reasons"] == ["no_vehicle_available"]
        events = [e for e in service.bus.recent(seen) if e["type"] == "package"]
        assert [e["state"] for e in events] == ["received", "van"]


async def test_resubmission_is_idempotent(store: Store) -> None:
    async with StationService(config(), store) as service:
        ((first, created1, _),) = await service.submit([request("a")])
        ((again, created2, _),) = await service.submit([request("a")])
        assert created1 and not created2 and again.id == first.id
        assert len(store.history(first.id)) == 2  # received, van: nothing new on the repeat


async def test_grounded_fleet_plans_nothing_until_released(store: Store) -> None:
    async with StationService(config(), store) as service:
        await service.ground("thunderstorm")
        ((package, _, decision),) = await service.submit([request("a")])
        assert package.state is PackageState.RECEIVED
        assert decision == {"decision": "queued", "reason": "fleet grounded: thunderstorm"}
        await service.unground()
        await service.plan_now()
        assert store.get(package.id).state is PackageState.VAN


async def test_restart_replans_a_package_whose_assignment_was_lost(store: Store) -> None:
    package, _ = store.submit(request("a"))
    store.transition(
        package.id,
        PackageState.ASSIGNED,
        reason="assigned",
        vehicle_id="d1",
        mode="drone",
        eta=datetime.now(UTC),
    )
    async with StationService(config(), store) as service:
        await service.plan_now()
        history = [e.to_state for e in store.history(package.id)]
        assert history[:3] == [PackageState.RECEIVED, PackageState.ASSIGNED, PackageState.RECEIVED]
        assert service.store.get(package.id).state is PackageState.VAN


@pytest.mark.parametrize(("failures", "then"), [(1, PackageState.RECEIVED), (2, PackageState.VAN)])
async def test_restart_moves_on_a_package_left_failed(
    store: Store, failures: int, then: PackageState
) -> None:
    """The process died between a trip's failure and the package's next move: the restart finishes it."""
    package, _ = store.submit(request("a"))
    trip = (PackageState.ASSIGNED, PackageState.LAUNCHING, PackageState.EN_ROUTE, PackageState.FAILED)
    for n in range(failures):
        for to in trip:
            detail = {"reason_code": "link_lost"} if to is PackageState.FAILED else None
            store.transition(package.id, to, reason=f"{to} {n}", vehicle_id="d1", mode="drone", detail=detail)
        if n < failures - 1:
            store.transition(package.id, PackageState.RECEIVED, reason="to be reassigned")
    async with StationService(config(), store):
        history = [e.to_state for e in store.history(package.id)]
        last_failure = len(history) - 1 - history[::-1].index(PackageState.FAILED)
        assert history[last_failure + 1] is then  # moved on by the restart, not left failed
        if then is PackageState.VAN:
            assert store.get(package.id).reasons == ["flight_failed"]


async def test_operator_hands_a_waiting_package_to_vans(store: Store) -> None:
    async with StationService(config(), store) as service:
        await service.ground()
        ((package, _, _),) = await service.submit([request("a")])
        moved = await service.hand_to_van(package.id)
        assert moved.state is PackageState.VAN and moved.reasons == ["operator"]


async def test_a_package_moved_by_another_writer_is_not_moved_again(store: Store) -> None:
    """The waiting packages live in memory beside the store; when another process (a second controller on
    a shared database, a repair script) moves one behind its back, the next pass notices, reads the store
    again and plans the rest, instead of failing every pass."""
    async with StationService(config(), store) as service:
        await service.plan_now()  # the service now knows the waiting packages (none)
        await service.ground()  # keep both waiting
        ((a, _, _), (b, _, _)) = await service.submit([request("a"), request("b")])
        other = Store(store.url)  # another writer, not through this service
        try:
            other.transition(a.id, PackageState.VAN, reason="taken by the other depot", reasons=["operator"])
        finally:
            other.close()
        await service.unground()
        await service.plan_now()
        assert [e.reason for e in store.history(a.id)] == ["received", "taken by the other depot"]
        later = store.get(b.id)
        assert later.state is PackageState.VAN and later.reasons == ["no_vehicle_available"]


async def test_a_new_package_is_stored_already_decided_with_its_whole_history(store: Store) -> None:
    async with StationService(config(), store) as service:  # no vehicle online: a van, at once
        ((package, created, decision),) = await service.submit([request("v")])
    assert created and package.state is PackageState.VAN and decision["decision"] == "van"
    history = store.history(package.id)
    assert [(e.from_state, e.to_state) for e in history] == [
        (None, PackageState.RECEIVED),
        (PackageState.RECEIVED, PackageState.VAN),
    ]
    assert history[0].at < history[1].at  # received before it was decided, as the feed reads it
    assert store.get(package.id).reasons == package.reasons


async def test_a_planning_failure_still_stores_what_was_accepted(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controller.service import core

    def broken(self: object, *args: object) -> None:
        raise RuntimeError("planner bug")

    async with StationService(config(), store) as service:
        monkeypatch.setattr(core.Planner, "plan", broken)
        with pytest.raises(RuntimeError, match="planner bug"):
            await service.submit([request("kept")])
        assert store.get_by_key("kept").state is PackageState.RECEIVED  # the next pass plans it
        monkeypatch.undo()
        await service.plan_now()
    assert store.get_by_key("kept").state is PackageState.VAN


def _recording_pass(store: Store, seen: list[int] | None = None):
    """A pass that plans nothing and stores the submission, as the service's pass does."""
    from controller.service.cycle import PassOutcome

    async def run_pass(submission: Submission) -> PassOutcome:
        if seen is not None:
            seen.append(store.count_by_state()[PackageState.RECEIVED] + len(submission.new))
        await asyncio.to_thread(store.record, submission)
        return PassOutcome()

    return run_pass


async def test_concurrent_submissions_share_check_ins_and_passes_not_errors(store: Store) -> None:
    from controller.service.cycle import Cycles
    from controller.store import IdempotencyConflict

    check_ins: list[int] = []
    passes: list[int] = []

    async def check_in(batch: list[PackageIn]) -> Submission:
        check_ins.append(len(batch))
        return await asyncio.to_thread(store.check_in, batch)

    cycles = Cycles(check_in, _recording_pass(store, passes))
    await cycles.submit([request("x")])
    conflicting = PackageIn(key="x", weight=2.0, dest_lat=33.45, dest_lon=-112.25)
    jobs = [cycles.submit([request(f"k{i}")]) for i in range(10)] + [cycles.submit([conflicting])]
    jobs.append(cycles.plan())
    results = await asyncio.gather(*jobs, return_exceptions=True)
    await cycles.close()  # as the service's stop() does: no cycle left running when the loop ends
    assert isinstance(results[-2], IdempotencyConflict)
    assert [r[0][0][0].key for r in results[:10]] == [f"k{i}" for i in range(10)]
    assert all(r[0][0][1] for r in results[:10])  # each created once
    assert max(check_ins) > 1  # concurrent submissions were checked in together
    assert passes == [1, 11]  # one pass for them all, which saw every new package
    assert store.count_by_state()[PackageState.RECEIVED] == 11
    assert store.get_by_key("x").weight_kg == 1.0  # the conflicting one changed nothing


async def test_one_new_key_with_two_contents_in_one_cycle_is_created_once_and_refused_once(
    store: Store,
) -> None:
    from controller.service.cycle import Cycles
    from controller.store import IdempotencyConflict

    cycles = Cycles(lambda batch: asyncio.to_thread(store.check_in, batch), _recording_pass(store))
    other = PackageIn(key="same", weight=3.0, dest_lat=33.45, dest_lon=-112.25)
    jobs = [cycles.submit([request("a")]), cycles.submit([request("same")]), cycles.submit([other])]
    first, created, refused = await asyncio.gather(*jobs, return_exceptions=True)
    await cycles.close()  # the last cycle answered its caller at check-in and may still run a pass
    assert first[0][0][1] and created[0][0][1]
    assert isinstance(refused, IdempotencyConflict) and refused.package_id == created[0][0][0].id
    assert store.get_by_key("same").weight_kg == 1.0


async def test_a_key_stored_by_another_writer_during_the_pass_is_answered_as_a_retry(store: Store) -> None:
    from controller.service.cycle import Cycles, PassOutcome

    raced: list[str] = []

    async def run_pass(submission: Submission) -> PassOutcome:
        if not raced:  # another controller stores the same key between our check-in and our write
            other = Store(store.url)
            try:
                raced.append(other.submit(request("race"))[0].id)
            finally:
                other.close()
        await asyncio.to_thread(store.record, submission)
        return PassOutcome()

    cycles = Cycles(lambda batch: asyncio.to_thread(store.check_in, batch), run_pass)
    ((package, created),), _ = await cycles.submit([request("race")])
    await cycles.close()
    assert package.id == raced[0] and not created  # the other's package, like any faithful retry
    assert len(store.history(package.id)) == 1


async def test_stopping_tells_waiting_submitters(store: Store) -> None:
    from controller.service.cycle import Cycles, PassOutcome

    planning, release = asyncio.Event(), asyncio.Event()

    async def slow_pass(submission: Submission) -> PassOutcome:
        planning.set()
        await release.wait()  # never released: the station stops while this pass runs
        return PassOutcome()

    cycles = Cycles(lambda batch: asyncio.to_thread(store.check_in, batch), slow_pass)
    first = asyncio.create_task(cycles.submit([request("a")]))
    await planning.wait()
    second = asyncio.create_task(cycles.submit([request("b")]))
    await asyncio.sleep(0)  # let it queue for the next cycle
    await cycles.close()
    for task in (first, second):
        with pytest.raises(RuntimeError, match="stopped"):
            await task
    assert store.get_by_key("a") is None and store.get_by_key("b") is None  # told, and nothing half-stored


async def test_events_of_one_commit_reach_subscribers_in_order_with_one_time() -> None:
    from controller.service.events import EventBus

    bus = EventBus(queue_size=3, clock_us=lambda: 0)  # numbered from 1
    stream = bus.subscribe()
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # subscribed
    bus.publish("service", state="started")
    assert (await first)["state"] == "started"
    bus.publish_many("package", [{"package_id": f"p{i}"} for i in range(5)])
    seen = [await anext(stream) for _ in range(3)]  # a slow console loses the oldest, never the newest
    assert [e["package_id"] for e in seen] == ["p2", "p3", "p4"]
    assert [e["seq"] for e in seen] == [4, 5, 6] and len({e["at"] for e in seen}) == 1
    assert [e["package_id"] for e in bus.recent(1)] == [f"p{i}" for i in range(5)]
    await stream.aclose()


def test_events_nobody_hears_are_only_built_for_the_history() -> None:
    from controller.service.events import EventBus

    bus = EventBus(history=500, clock_us=lambda: 0)
    shaped: list[int] = []

    def shape(i: int) -> dict[str, str]:
        shaped.append(i)
        return {"package_id": f"p{i}"}

    bus.publish("service", state="started")
    bus.publish_many("package", range(700), shape)
    assert bus.last_seq == 701 and len(shaped) == 500
    kept = bus.recent(0)
    assert [e["seq"] for e in kept] == list(range(202, 702))
    assert kept[0]["package_id"] == "p200" and kept[-1]["package_id"] == "p699"


async def test_a_stopped_service_leaves_no_store_thread_behind(store: Store) -> None:
    import threading

    def store_threads() -> int:
        return sum(t.name.startswith("lastmile-store_") for t in threading.enumerate())

    before = store_threads()
    for i in range(3):  # a station started and stopped again, as the tests and `lastmile demo` do
        async with StationService(config(), store) as service:
            await service.submit([request(f"t{i}")])
            assert store_threads() == before + 1
    assert store_threads() == before
