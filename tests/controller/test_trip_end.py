"""A trip's end against the move to en_route that the vehicle's "flying" report starts.

The service moves a package `launching -> en_route` in a side task when the vehicle says it is under way,
while the mission's own task records the trip's end. Both write the same package; whatever order they run
in, a failed trip must end with the package back in the queue (or with a van once its attempts are spent)
and the vehicle free, a delivered one with the package delivered: never a package left `en_route` with its
vehicle planned for again, never an exception nobody retrieves (tests/conftest.py fails the test on one).

The carrier here is a stand-in on purpose: what is under test is the service's state machine, and the
orderings are chosen by how many times the carrier yields to the loop between its report and its result.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from controller.missions.results import DeliveryResult
from controller.packages import PackageIn, PackageState
from controller.service import StationService
from controller.service.carriers import Assignment, EventSink, VehicleSnapshot
from controller.station import StationConfig
from controller.store import Store
from vehicles.spec import VehicleKind

S = PackageState
STATION = (33.44, -112.256)
YIELDS = 6  # orderings tried: 0 .. 5 passes of the loop between the "flying" report and the result


class RacingCarrier:
    """A robot whose every trip reports "under way" and ends a few loop passes later (0: at once)."""

    kind = VehicleKind.ROBOT

    def __init__(self, vehicle_id: str, *, deliver_every: int = 0) -> None:
        self.vehicle_id = vehicle_id
        self.deliver_every = deliver_every  # every n-th trip succeeds (0: none)
        self.trips = 0

    def snapshot(self) -> VehicleSnapshot:
        return VehicleSnapshot(
            self.vehicle_id, self.kind, online=True, charge=1.0, lat=STATION[0], lon=STATION[1]
        )

    async def deliver(self, job: Assignment, on_event: EventSink) -> DeliveryResult:
        trip, self.trips = self.trips, self.trips + 1
        yields = trip % YIELDS
        on_event({"event": "phase", "phase": "flying", "trip": trip})
        for _ in range(yields):
            await asyncio.sleep(0)
        delivered = bool(self.deliver_every) and trip % self.deliver_every == self.deliver_every - 1
        if delivered:
            return DeliveryResult(job.package_id, self.vehicle_id, delivered=True, returned=True)
        return DeliveryResult(
            job.package_id, self.vehicle_id, delivered=False, reason="stand-in failure",
            reason_code="battery_failsafe", returned=True,
        )  # fmt: skip

    resume = deliver

    async def abort(self) -> None:
        return None


def _config(max_attempts: int) -> StationConfig:
    return StationConfig(
        name="race", lat=STATION[0], lon=STATION[1], tick_s=0.2, max_attempts=max_attempts,
        fleet=[{"id": "r1", "kind": "robot"}, {"id": "v1", "kind": "van"}],
    )  # fmt: skip


def _request(key: str) -> PackageIn:
    return PackageIn(key=key, weight=1.0, dest_lat=33.445, dest_lon=-112.252)  # 700 m: a robot's trip


async def _settled(service: StationService, ids: list[str], final: set[PackageState], wait_s: float) -> list:
    """The packages once every one is in a final state (and nothing is running), or AssertionError."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        packages = await service.io(service.store.get_many, ids)
        if all(p.state in final for p in packages) and not service._running and not service._busy:
            return packages
        if asyncio.get_running_loop().time() > deadline:
            states = {p.key: str(p.state) for p in packages}
            raise AssertionError(f"not settled: {states}; running {list(service._running)}")
        await asyncio.sleep(0.02)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(f"sqlite:///{tmp_path / 'race.sqlite3'}")
    yield s
    s.close()


async def test_failed_trips_end_requeued_then_with_a_van_whatever_the_order(store: Store) -> None:
    carrier = RacingCarrier("r1")
    attempts = 3
    async with StationService(_config(attempts), store, carriers={"r1": carrier}) as service:
        stored = await service.submit([_request(f"race-{i}") for i in range(8)])
        ids = [p.id for p, _, _ in stored]
        packages = await _settled(service, ids, {S.VAN}, wait_s=60)
    assert carrier.trips == 8 * attempts  # every orderings tried several times
    for package in packages:
        moves = [e.to_state for e in store.history(package.id)]
        assert moves.count(S.FAILED) == attempts, moves
        # Each failure was followed by the queue (then a new trip) or, the last, by a van: none stuck.
        after = [moves[i + 1] for i, m in enumerate(moves) if m is S.FAILED]
        assert after == [S.RECEIVED] * (attempts - 1) + [S.VAN], moves
    assert store.missions(True) == []  # every mission closed
    assert {m.state for m in store.missions(False)} == {"failed"}


async def test_mixed_trips_end_delivered_or_requeued_never_stuck(store: Store) -> None:
    carrier = RacingCarrier("r1", deliver_every=3)
    async with StationService(_config(4), store, carriers={"r1": carrier}) as service:
        stored = await service.submit([_request(f"mix-{i}") for i in range(10)])
        ids = [p.id for p, _, _ in stored]
        packages = await _settled(service, ids, {S.DELIVERED, S.VAN}, wait_s=60)
        seen = service.bus.recent(0)
    assert any(p.state is S.DELIVERED for p in packages) and carrier.trips >= 10
    for package in packages:
        moves = [e.to_state for e in store.history(package.id)]
        assert moves.count(S.EN_ROUTE) == moves.count(S.LAUNCHING), moves  # under way once per trip
        if package.state is S.DELIVERED:
            assert moves[-2:] == [S.EN_ROUTE, S.DELIVERED], moves
    assert store.missions(True) == []
    # The vehicle was never booked twice: its missions never overlapped (one "launching" at a time).
    open_missions = 0
    for event in seen:
        if event["type"] == "mission" and event["state"] == "launching":
            open_missions += 1
            assert open_missions == 1
        elif event["type"] == "mission" and event["state"] in ("completed", "failed", "aborted"):
            open_missions -= 1


async def test_stop_ends_a_move_to_en_route_under_way(store: Store) -> None:
    """`stop()` cancels and awaits the side tasks too: none is left pending when the loop ends."""
    gate = asyncio.Event()

    class StuckCarrier(RacingCarrier):
        async def deliver(self, job: Assignment, on_event: EventSink) -> DeliveryResult:
            on_event({"event": "phase", "phase": "flying"})
            gate.set()
            await asyncio.sleep(3600)
            raise AssertionError("not reached")

    service = StationService(_config(2), store, carriers={"r1": StuckCarrier("r1")})
    await service.start()
    try:
        await service.submit([_request("stuck")])
        await asyncio.wait_for(gate.wait(), 10)
    finally:
        await service.stop()
    assert not service._side_tasks and not service._running
