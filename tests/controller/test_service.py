"""The station service without vehicles: intake, van fallback, weather hold, and recovery from the store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.packages import PackageIn, PackageState
from controller.service import StationService
from controller.station import StationConfig
from controller.store import Store

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


async def test_concurrent_submissions_share_commits_and_passes_not_errors(store: Store) -> None:
    import asyncio

    from controller.service.cycle import Cycles, PassOutcome
    from controller.store import IdempotencyConflict

    commits: list[int] = []
    passes: list[int] = []
    heard: list[str] = []

    async def commit(batch: list[PackageIn]) -> list:
        commits.append(len(batch))
        return await asyncio.to_thread(store.submit_many, batch)

    async def plan() -> PassOutcome:
        passes.append(store.count_by_state()[PackageState.RECEIVED])  # what the pass would see
        return PassOutcome()

    cycles = Cycles(commit, plan, on_stored=lambda stored: heard.extend(p.key for p, _ in stored))
    await cycles.submit([request("x")])
    conflicting = PackageIn(key="x", weight=2.0, dest_lat=33.45, dest_lon=-112.25)
    jobs = [cycles.submit([request(f"k{i}")]) for i in range(10)] + [cycles.submit([conflicting])]
    jobs.append(cycles.plan())
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert isinstance(results[-2], IdempotencyConflict)
    assert [r[0][0][0].key for r in results[:10]] == [f"k{i}" for i in range(10)]
    assert all(r[0][0][1] for r in results[:10])  # each created once
    assert max(commits) > 1  # concurrent submissions were merged into one commit
    assert len(passes) == 2 and passes[-1] == 11  # one pass for them all, after every commit
    assert heard == ["x"] + [f"k{i}" for i in range(10)]  # told of each stored package once
    assert store.count_by_state()[PackageState.RECEIVED] == 11


async def test_stopping_tells_waiting_submitters(store: Store) -> None:
    import asyncio

    from controller.service.cycle import Cycles, PassOutcome

    planning, release = asyncio.Event(), asyncio.Event()

    async def slow_plan() -> PassOutcome:
        planning.set()
        await release.wait()  # never released: the station stops while this pass runs
        return PassOutcome()

    async def commit(batch: list[PackageIn]) -> list:
        return await asyncio.to_thread(store.submit_many, batch)

    cycles = Cycles(commit, slow_plan, on_stored=lambda stored: None)
    first = asyncio.create_task(cycles.submit([request("a")]))
    await planning.wait()
    second = asyncio.create_task(cycles.submit([request("b")]))
    await asyncio.sleep(0)  # let it queue for the next cycle
    await cycles.close()
    for task in (first, second):
        with pytest.raises(RuntimeError, match="stopped"):
            await task
    assert store.get_by_key("a") is not None and store.get_by_key("b") is None
