"""The station controller: intake, planning passes, missions, failures, and recovery after a restart.

One asyncio task runs the planning loop (on every arrival and every `tick_s`); one task per mission
follows a vehicle through its `Carrier`. Every state change goes to the store first (so a crash loses
nothing) and then to the event bus (so consoles see it). The store is synchronous SQLAlchemy and is
called through `asyncio.to_thread`, never on the event loop.

After a restart, `start()` reloads every unfinished mission: held ones are held again, started ones are
resumed through their carrier (which re-attaches to the vehicle and follows it), and packages that were
only planned are planned again. A package is moved with `expect=` its current state, so a late or
duplicate report can never deliver a package twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from controller.assignment import Decision, Planner
from controller.fleet import FleetVehicle
from controller.missions.results import DeliveryResult
from controller.packages import Package, PackageIn, PackageState
from controller.reasons import Reason
from controller.service.airspace import AirspaceBusy, ServiceAirspace
from controller.service.carriers import Assignment, Carrier, VehicleSnapshot
from controller.service.cycle import Cycles, PassOutcome
from controller.service.events import EventBus
from controller.service.waiting import WaitingPackages, all_in_state
from controller.station import StationConfig
from controller.store import Mission, Move, StateMismatch, Store, Submission, mission_row
from controller.store.faults import StoreFaults, StoreUnavailable, classify, retrying
from vehicles.spec import VehicleKind

log = logging.getLogger("lastmile.service")
T = TypeVar("T")

S = PackageState
WAITING_REREAD_S = 60.0
# Failures after which a second vehicle would fail the same way: straight to a van.
_NO_RETRY = {"mission_rejected"}
REFUSALS_PER_PAD = 2  # airspace refusals for drones on one pad before a pass stops trying that pad
REFUSALS_IN_A_ROW = 20  # refusals in a row, over all pads, before a pass stops booking drones at all
# Time one planning pass may spend searching the airspace (bookings and refusals). A booking costs about
# 4 ms, a refusal 1-5 ms; a column of air takes a launch every 20 s or so, so the few searches of a pass
# book what a station can launch now, and the drones left over wait as airspace_busy for the next pass
# (seconds later) instead of every drone of a big fleet costing a search in the same tick. The search that
# crosses the budget still ends, so a pass spends up to about budget + 5 ms (issue 16: the tick grows by no
# more than 20 ms; bench/assign.py).
AIRSPACE_PASS_BUDGET_S = 0.010
# ... but while every search of a pass has booked a flight, it books up to this many however slow the
# machine is today: the few drones a pass assigns to a station's handful of columns at once (issue 16's
# four drones from two pads) all go in that pass. Refusals are what the budget is for.
MIN_AIRSPACE_BOOKINGS = 4
# Times a trip's end reads the package again when it moved between the read and the write.
_END_TRIES = 3


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StationService:
    """Runs one station: use as `async with StationService(config, store, carriers=...) as service:`."""

    def __init__(
        self,
        config: StationConfig,
        store: Store,
        *,
        carriers: dict[str, Carrier] | None = None,
        clock: Callable[[], datetime] = _utcnow,
        drone_clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        # Kept, not copied: a carrier added to it later (a drone that answers after the start, see
        # `connect_fleet(keep_trying=True)`) is planned for from the next pass on.
        self.carriers: dict[str, Carrier] = carriers if carriers is not None else {}
        self.clock = clock
        self.bus = EventBus()
        self.grounded: str | None = None  # reason of the weather hold, None when flying
        # Every drone flight is booked here before it is released (pads, layers, 4D reservations).
        # `drone_clock`: simulated drones' own seconds, when they may slip behind `vehicle_speedup`.
        self.airspace = ServiceAirspace(
            config, epoch=clock(), speedup=config.vehicle_speedup, clock=drone_clock
        )
        self._airspace_busy: dict[str, datetime] = {}  # package id -> when the airspace frees for it
        self._planner: Planner | None = None
        self._queued: dict[str, Decision] = {}  # package id -> latest plan for a package still waiting
        self._busy: dict[str, tuple[str, datetime]] = {}  # vehicle id -> (mission id, expected free time)
        self._held: dict[str, Assignment] = {}  # mission id -> job awaiting an operator's launch
        self._running: dict[str, asyncio.Task[None]] = {}  # mission id -> task
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._en_route_moves: dict[str, asyncio.Task[None]] = {}  # mission id -> its move to en_route
        self._under_way: set[str] = set()  # missions moved to en_route, or whose trip is ending
        self._wake = asyncio.Event()
        # One thread for the store: SQLite has one writer anyway, and queueing calls here is cheaper and
        # fairer than threads fighting over its lock (busy waits add hundreds of ms under load). Made on
        # first use and ended by `stop()`, so a stopped service leaves no thread behind.
        self._db: ThreadPoolExecutor | None = None
        self.store_faults = StoreFaults()  # the store's last fault, for /healthz; logged once a minute
        self.waiting = WaitingPackages(store)  # every package write goes through it (store thread only)
        self._cycles = Cycles(
            check_in=lambda batch: self.io(self.store.check_in, batch), run_pass=self._plan_pass
        )
        self._loop_task: asyncio.Task[None] | None = None

    async def io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking store call on the store's own thread, never on the event loop.

        A connection cut under the call is retried once on a new one; a store that still fails (down,
        full, read-only) raises `StoreUnavailable` with the reason, noted in `store_faults` (`/healthz`).
        """
        if self._db is None:
            self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lastmile-store")
        call = functools.partial(retrying, functools.partial(fn, *args, **kwargs))
        try:
            out = await asyncio.get_running_loop().run_in_executor(self._db, call)
        except Exception as exc:
            reason = classify(exc)
            if reason is None:
                raise
            self.store_faults.record(reason, getattr(fn, "__name__", "a store call"))
            raise StoreUnavailable(reason) from exc
        self.store_faults.ok()
        return out

    # --- life ---------------------------------------------------------------------------------------------

    async def __aenter__(self) -> StationService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Resume what the store says is unfinished, then start planning."""
        await self._recover()
        self._loop_task = asyncio.create_task(self._loop(), name="lastmile.service.plan_loop")
        self.bus.publish("service", state="started", station=self.config.name)

    async def stop(self) -> None:
        """Stop planning and following; missions stay in the store and resume on the next start."""
        await self._cycles.close()
        tasks = [t for t in [self._loop_task, *self._running.values(), *self._side_tasks] if t is not None]
        for task in tasks:
            task.cancel()
        for task, outcome in zip(tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True):
            if isinstance(outcome, Exception):  # not lost: said here (the task is over either way)
                log.error("%s ended with an error while stopping", task.get_name(), exc_info=outcome)
        self._running.clear()
        self._en_route_moves.clear()
        if self._db is not None:  # let a store call under way finish, then end the thread
            db, self._db = self._db, None
            await asyncio.to_thread(db.shutdown, wait=True, cancel_futures=True)
        self.bus.publish("service", state="stopped", station=self.config.name)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        read_at = loop.time()
        while True:
            try:
                await self.plan_now()
            except StoreUnavailable:
                pass  # logged once a minute by `store_faults`; the next tick tries again
            except Exception:  # a bad pass must not stop the station; the next tick tries again
                log.exception("planning pass failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.tick_s):
                    await self._wake.wait()
            self._wake.clear()
            if loop.time() - read_at >= WAITING_REREAD_S:
                # Now and then the next pass reads the waiting packages from the store again, which picks up
                # packages another process wrote to a shared database. Not every tick: with a long queue
                # the read holds the store's thread (and so intake) for a while.
                await self.io(self.waiting.forget)
                read_at = loop.time()

    # --- intake -------------------------------------------------------------------------------------------

    async def submit(self, requests: Sequence[PackageIn]) -> list[tuple[Package, bool, dict[str, Any]]]:
        """Store packages (idempotently, all or none), plan at once, and say what became of each.

        The answer comes from the planning pass of the same cycle (it knows what it assigned or handed to
        vans); only a package that pass did not see is read from the store again.
        """
        stored, outcome = await self._cycles.submit(requests)
        known = [outcome.current(package) for package, _ in stored]
        unseen = [package.id for (package, _), now in zip(stored, known, strict=True) if now is None]
        reread = iter(await self.io(self.store.get_many, unseen) if unseen else [])
        current = [now if now is not None else next(reread) for now in known]
        return [
            (now, created, self.decision_of(now)) for now, (_, created) in zip(current, stored, strict=True)
        ]

    def decision_of(self, package: Package) -> dict[str, Any]:
        """What the controller means to do with a package, in the API's words (`DecisionOut`'s fields;
        `eta` a datetime)."""
        if package.state is S.VAN:
            return {"decision": "van", "reasons": package.reasons, "detail": package.detail}
        if package.state in (S.ASSIGNED, S.LAUNCHING, S.EN_ROUTE):
            return {
                "decision": package.mode,
                "vehicle_id": package.vehicle_id,
                "eta": package.eta,
            }
        if package.state is S.RECEIVED:
            waiting = self._queued.get(package.id)
            out: dict[str, Any] = {"decision": "queued"}
            if self.grounded:
                out["reason"] = f"fleet grounded: {self.grounded}"
            if waiting is not None:
                out.update(mode=waiting.mode, eta=waiting.eta)
                if waiting.mode == "drone" and self.airspace.closed is not None and not self.grounded:
                    out["reason"] = str(Reason.STATION_CLOSED)
            free_at = self._airspace_busy.get(package.id)
            if free_at is not None and not self.grounded:
                out.update(reason=str(Reason.AIRSPACE_BUSY), airspace_free_at=free_at)
            return out
        return {"decision": str(package.state)}

    # --- planning -----------------------------------------------------------------------------------------

    def poke(self) -> None:
        """Ask for a planning pass soon (after an arrival, a vehicle coming free, an unground)."""
        self._wake.set()

    async def plan_now(self) -> None:
        """Return once a planning pass that started after this call has finished.

        Callers at the same moment (a tick, a vehicle coming free, many submissions) share one pass.
        """
        await self._cycles.plan()

    async def _plan_pass(self, submission: Submission) -> PassOutcome:
        """Plan the waiting packages and the submission's new ones; store it all in one transaction."""
        if self.grounded:
            await self._record(submission)
            return PassOutcome(grounded=self.grounded)
        try:
            return await self._plan_waiting(submission)
        except StateMismatch:
            # The set of waiting packages was out of step with the store (another process moved one):
            # read it again and plan once more; the failed write changed nothing.
            log.warning("waiting packages out of step with the store; reading them again")
            await self.io(self.waiting.forget)
            return await self._plan_waiting(submission)

    async def _plan_waiting(self, submission: Submission) -> PassOutcome:
        received = await self.io(self.waiting.snapshot) + submission.new
        if not received:
            self._queued.clear()
            return PassOutcome()
        now = self.clock()
        self.airspace.tick()
        try:
            planner = Planner(self.config, at=now, previous=self._planner)
            self._planner = planner
            decisions = planner.plan(received, self._fleet(now))  # a `Package` is what the planner reads
        except Exception:  # a planning bug must not lose what was accepted: store it undecided, then fail
            await self._record(submission)
            raise
        moved = await self._apply(decisions, received, now, submission)
        return PassOutcome(moved={p.id: p for p in moved}, considered=frozenset(p.id for p in received))

    async def _record(
        self,
        submission: Submission,
        moves: list[Move] | None = None,
        missions: list[dict[str, Any]] | None = None,
    ) -> list[Package]:
        """Store a submission with what a pass decided, in one transaction; tell consoles what changed."""
        if not submission and not moves:
            return []
        moved = await self.io(self.waiting.record, submission, moves or [], missions or [])
        self.bus.publish_many("package", submission.new, _received_event)
        self.bus.publish_many("package", moved, _package_event)
        return moved

    def _fleet(self, now: datetime) -> list[FleetVehicle]:
        fleet = []
        for vehicle in self.config.fleet:
            if vehicle.kind is VehicleKind.VAN:
                continue
            carrier = self.carriers.get(vehicle.id)
            snap = carrier.snapshot() if carrier else None
            charge = snap.charge if snap and snap.charge is not None else vehicle.charge
            online = vehicle.online and snap is not None and snap.online
            free_in = 0.0
            if vehicle.id in self._busy:
                free_in = max(1.0, (self._busy[vehicle.id][1] - now).total_seconds())
                charge = 1.0  # planned after its return and battery swap
            lost = getattr(carrier, "broker_lost_for", lambda: None)()
            if lost is not None and vehicle.online:
                # The controller lost the broker, not the robot (it drives on and is back with the broker):
                # kept in the plan, busy for its grace or as long again as the outage so far, so a blip does
                # not send the robots' queue to the vans, and nothing is booked on it until it can be told.
                # An outage past the planning horizon (or a package's deadline) does send them, saying so.
                online, free_in = True, max(free_in, 1.0, getattr(carrier, "broker_grace_s", 0.0), lost)
            spec = vehicle.vehicle_spec()
            if vehicle.kind is VehicleKind.DRONE:  # it flies the station's layers and may hold
                spec = self.airspace.planning_spec(spec)
            fleet.append(
                FleetVehicle(
                    vehicle.id,
                    vehicle.kind,
                    spec,
                    charge=max(0.0, charge),
                    online=online,
                    free_in_s=free_in,
                )
            )
        return fleet

    async def _apply(
        self, decisions: list[Decision], planned: list[Package], now: datetime, submission: Submission
    ) -> list[Package]:
        """Store (with the submission) and start what a pass decided; returns the packages it moved."""
        moves: list[Move] = []
        launches: list[tuple[Assignment, Decision]] = []
        self._queued = {}
        self._airspace_busy = {}
        held = self.config.launch == "operator"
        van, waiting = S.VAN, S.RECEIVED  # once, not per decision: an enum member costs a lookup hook
        by_id: dict[str, Package] | None = None  # only an assignment needs the package itself
        # Pads -> (the last refusal, how many) in this pass: a pad's column takes a launch a minute or so, so
        # once it refused a couple of flights, the next drones on it would be refused too, each costing a
        # full search (ms); they wait as airspace_busy and are tried again next pass. The same after several
        # refusals in a row on any pads: the station's air is full for now.
        refused: dict[tuple[str, ...] | None, tuple[AirspaceBusy, int]] = {}
        last_refusal: AirspaceBusy | None = None
        in_a_row = 0  # refusals since the last booking, over all pads
        searching_s, searches = 0.0, 0  # airspace searches this pass: their time, and how many
        next_pass: AirspaceBusy | None = None  # the refusal of the drones left for the next pass
        for d in decisions:
            if d.status == "queued":
                self._queued[d.package_id] = d
            elif d.status == "van":
                moves.append(
                    Move(
                        d.package_id,
                        van,
                        "no drone or robot can carry it safely",
                        detail={"hints": d.hints},
                        expect=waiting,
                        fields={"reasons": [str(r) for r in d.reasons]},
                    )
                )
            elif d.status == "assigned" and d.vehicle_id is not None and d.vehicle_id not in self._busy:
                by_id = by_id if by_id is not None else {p.id: p for p in planned}
                if d.mode == "drone" and self.airspace.closed is not None:  # waits for the station to open
                    self._queued[d.package_id] = dataclasses.replace(d, status="queued")
                    continue
                booking_run = last_refusal is None and searches < MIN_AIRSPACE_BOOKINGS  # no refusal yet
                out_of_time = searching_s > AIRSPACE_PASS_BUDGET_S and not booking_run
                if d.mode == "drone" and not held and out_of_time:
                    # Out of search time: the drones left wait for the next pass, at no cost per drone.
                    next_pass = next_pass or self.airspace.next_pass()
                    self._queued[d.package_id] = dataclasses.replace(d, status="queued")
                    self._airspace_busy[d.package_id] = self.airspace.free_at(next_pass)
                    continue
                job = _job(self.config, by_id[d.package_id], d)
                if d.mode == "drone" and not held:  # held ones are booked when an operator launches them
                    pads = self._pads_of(job.vehicle_id)
                    busy = refused.get(pads)
                    if in_a_row >= REFUSALS_IN_A_ROW and last_refusal is not None:
                        busy = (last_refusal, REFUSALS_PER_PAD)  # the air is full this pass: no more searches
                    if busy is None or busy[1] < REFUSALS_PER_PAD:
                        started, searches = time.perf_counter(), searches + 1
                        try:
                            job = self._book(job, pads)
                        except AirspaceBusy as exc:
                            refused[pads] = (exc, (busy[1] if busy else 0) + 1)
                            busy, last_refusal, in_a_row = refused[pads], exc, in_a_row + 1
                        else:
                            busy, in_a_row = None, 0
                        finally:
                            searching_s += time.perf_counter() - started
                    if busy is not None:
                        self._queued[d.package_id] = dataclasses.replace(d, status="queued")
                        self._airspace_busy[d.package_id] = self.airspace.free_at(busy[0])
                        continue
                moves.append(
                    Move(
                        d.package_id,
                        S.ASSIGNED,
                        f"assigned to {d.mode} {d.vehicle_id}",
                        detail={"mission_id": job.mission_id, "route": job.route},
                        expect=S.RECEIVED,
                        fields={
                            "vehicle_id": d.vehicle_id,
                            "mode": d.mode,
                            "eta": d.eta,
                            "energy_margin_wh": d.margin_wh,
                        },
                    )
                )
                launches.append((job, d))
        state = "held" if held else "planned"
        # The missions, the packages' moves and the new packages go in one transaction: a crash leaves
        # either all of them or none, never a package assigned with no mission.
        missions = [
            mission_row(
                job.package_id,
                job.vehicle_id,
                d.mode,
                {"job": job.as_dict()},
                state=state,
                mission_id=job.mission_id,
            )
            for job, d in launches
        ]
        try:
            updated = await self._record(submission, moves, missions)
        except BaseException:  # nothing was released: free what was booked for it
            for job, _ in launches:
                self.airspace.finish(job.mission_id)
            raise
        for job, d in launches:
            self._busy[job.vehicle_id] = (job.mission_id, d.back_at or now)
            self.bus.publish(
                "mission",
                mission_id=job.mission_id,
                package_id=job.package_id,
                vehicle_id=job.vehicle_id,
                state=state,
            )
            if held:
                self._held[job.mission_id] = job
            else:
                self._start(job, resume=False)
        return updated

    def _pads_of(self, vehicle_id: str) -> tuple[str, ...] | None:
        """The pads a drone may take off from (the one it stands on; None: any)."""
        carrier = self.carriers.get(vehicle_id)
        snap = carrier.snapshot() if carrier is not None else None
        pads = self.airspace.pads_for((snap.lat, snap.lon) if snap is not None else (None, None))
        return tuple(pads) if pads is not None else None

    def _book(self, job: Assignment, pads: tuple[str, ...] | None = None) -> Assignment:
        """`job` with its flight booked in the station's airspace (raises `AirspaceBusy`)."""
        spec = next(v.vehicle_spec() for v in self.config.fleet if v.id == job.vehicle_id)
        plan = self.airspace.book(
            job.mission_id,
            job.vehicle_id,
            job.route,
            spec,
            pads=pads if pads is not None else self._pads_of(job.vehicle_id),
        )
        return dataclasses.replace(job, airspace=self.airspace.plan_dict(plan))

    # --- missions -----------------------------------------------------------------------------------------

    def _start(self, job: Assignment, *, resume: bool) -> None:
        task = asyncio.create_task(self._run(job, resume=resume), name=f"lastmile.mission[{job.mission_id}]")
        self._running[job.mission_id] = task

    async def _run(self, job: Assignment, *, resume: bool) -> None:
        carrier = self.carriers.get(job.vehicle_id)
        if carrier is not None and hasattr(carrier, "airspace"):
            carrier.airspace = self.airspace
        try:
            if carrier is None:
                result = DeliveryResult(
                    job.package_id,
                    job.vehicle_id,
                    delivered=False,
                    reason=f"vehicle {job.vehicle_id} has no link",
                    reason_code="link_lost",
                )
            else:
                if not resume:
                    await self._move(job.package_id, S.LAUNCHING, f"launching {job.vehicle_id}", S.ASSIGNED)
                    await self._mission_state(job, "launching")
                try:
                    run = carrier.resume if resume else carrier.deliver
                    result = await run(job, self._on_vehicle_event(job))
                except Exception as exc:  # a driver bug must not strand the package in `launching`
                    log.exception("mission %s on %s failed", job.mission_id, job.vehicle_id)
                    result = DeliveryResult(
                        job.package_id,
                        job.vehicle_id,
                        delivered=False,
                        reason=f"controller error: {exc!r}",
                        reason_code="vehicle_error",
                    )
            await self._finish(job, result)
        finally:
            self.airspace.finish(job.mission_id)
            self._under_way.discard(job.mission_id)
            self._running.pop(job.mission_id, None)
            self._busy.pop(job.vehicle_id, None)
            self.poke()

    def _on_vehicle_event(self, job: Assignment) -> Callable[[dict[str, Any]], None]:
        def sink(event: dict[str, Any]) -> None:
            # The bus's `seq` is its own: a vehicle's `seq` (the mission item reached) is `item` on the bus.
            # A new dict: the flight keeps `event` in its own record as the vehicle said it.
            data: dict[str, Any] = {"mission_id": job.mission_id, "vehicle_id": job.vehicle_id}
            for key, value in event.items():
                data.setdefault("item" if key == "seq" else key, value)
            self.bus.publish("vehicle", **data)
            # The drone mission reports phase "flying" once airborne; the robot mission "order_sent".
            under_way = event.get("phase") == "flying" or event.get("kind") in ("order_sent", "node_reached")
            # Not once the trip is ending (`_finish` adds it to `_under_way`) or over (no longer running): a
            # late report must not move a package that may be on its next trip already.
            if under_way and job.mission_id not in self._under_way and job.mission_id in self._running:
                self._under_way.add(job.mission_id)
                task = asyncio.get_running_loop().create_task(
                    self._en_route(job), name=f"lastmile.en_route[{job.mission_id}]"
                )
                self._side_tasks.add(task)  # the loop keeps only weak references to tasks
                self._en_route_moves[job.mission_id] = task
                task.add_done_callback(self._side_tasks.discard)

        return sink

    async def _en_route(self, job: Assignment) -> None:
        """The package is on its way; `_finish` waits for this, so the two never write in the wrong order."""
        package = await self.io(self.store.get, job.package_id)
        if package.state is S.LAUNCHING:
            with contextlib.suppress(StateMismatch):  # moved meanwhile (an operator): that move stands
                await self._move(job.package_id, S.EN_ROUTE, f"{job.vehicle_id} under way", S.LAUNCHING)
                await self._mission_state(job, "en_route")

    async def _finish(self, job: Assignment, result: DeliveryResult) -> None:
        """Record the trip's end: every move is compare-and-set on the state just read, read again when the
        package moved meanwhile, so a trip always ends in the right state, whatever ran in between.

        The move to en_route that the vehicle's "flying" report started lands first, and none starts after.
        """
        self._under_way.add(job.mission_id)
        side = self._en_route_moves.pop(job.mission_id, None)
        if side is not None:
            await asyncio.wait([side])  # not cancelled: its store call would run on regardless
            if not side.cancelled() and side.exception() is not None:
                log.error("mission %s: moving its package en route failed", job.mission_id,
                          exc_info=side.exception())  # fmt: skip
        detail = {
            "mission_id": job.mission_id,
            "energy_used_wh": result.energy_used_wh,
            "release_position": result.release_position,
            "returned": result.returned,
        }
        if result.delivered and result.proof is not None:  # stored with the delivered move (proofs table)
            detail["proof"] = result.proof.as_dict()
        reason = result.reason or result.reason_code or "failed"
        if not result.delivered:
            await self._mission_state(job, "aborted" if result.reason_code == "aborted" else "failed", result)
        failed_here = False  # this trip's failure is stored: the package is `failed` because of it
        for _ in range(_END_TRIES):
            state = (await self.io(self.store.get, job.package_id)).state
            try:
                if result.delivered:
                    await self._end_delivered(job, result, state, detail)
                    return
                never_left = state is S.LAUNCHING and result.reason_code == "not_launched"
                if state is S.ASSIGNED or never_left:  # never left: back to the queue, no attempt spent
                    not_launched = f"not launched: {reason}"
                    await self._move(job.package_id, S.RECEIVED, not_launched, state, detail)
                    return
                if state in (S.LAUNCHING, S.EN_ROUTE) and not failed_here:
                    detail_failed = {**detail, "reason_code": result.reason_code}
                    await self._move(job.package_id, S.FAILED, reason, state, detail_failed)
                    failed_here, state = True, S.FAILED
                if state is not S.FAILED or not failed_here:  # elsewhere already (an operator moved it)
                    return
                await self._after_failure(job, result, reason)
                return
            except StateMismatch as exc:  # it moved between the read and the write: decide again
                log.info("mission %s: package %s moved while the trip ended (%s); reading it again",
                         job.mission_id, job.package_id, exc)  # fmt: skip
        log.error("mission %s: package %s kept moving while the trip ended; its end is not recorded",
                  job.mission_id, job.package_id)  # fmt: skip

    async def _end_delivered(
        self, job: Assignment, result: DeliveryResult, state: PackageState, detail: dict[str, Any]
    ) -> None:
        """A delivered trip's moves from `state` (raises `StateMismatch` when the package moved meanwhile)."""
        if state is S.LAUNCHING:  # the "flying" report never came, or came late
            await self._move(job.package_id, S.EN_ROUTE, f"{job.vehicle_id} under way", S.LAUNCHING)
            state = S.EN_ROUTE
        if state is S.EN_ROUTE:
            by = f"delivered by {job.vehicle_id}"
            await self._move(job.package_id, S.DELIVERED, by, S.EN_ROUTE, detail)
        elif state is not S.DELIVERED:  # an operator gave it to the vans meanwhile; the store's record stands
            log.warning("mission %s delivered package %s, which is %s in the store; left so",
                        job.mission_id, job.package_id, state)  # fmt: skip
        await self._mission_state(job, "completed", result)

    async def _after_failure(self, job: Assignment, result: DeliveryResult, reason: str) -> None:
        """A failed package (this trip's failure stored) back to the queue or, past its attempts, to a van."""
        attempts = sum(1 for e in await self.io(self.store.history, job.package_id) if e.to_state is S.FAILED)
        await self._move_on_failed(job.package_id, attempts, reason, result.reason_code)
        if not result.returned and result.reason_code in ("connection_broken", "link_lost"):
            self.bus.publish("vehicle", vehicle_id=job.vehicle_id, state="unavailable", reason=reason)

    async def _requeue_failed(self, package_id: str) -> None:
        """After a restart: a package left `failed` (the process died before its next move) is moved on
        as `_after_failure` would have, from its stored failures."""
        failures = [e for e in await self.io(self.store.history, package_id) if e.to_state is S.FAILED]
        last = failures[-1] if failures else None
        code = (last.detail or {}).get("reason_code") if last else None
        reason = f"{last.reason if last else 'failed'} (moved on after a restart)"
        await self._move_on_failed(package_id, len(failures), reason, code)

    async def _move_on_failed(self, package_id: str, attempts: int, reason: str, code: str | None) -> None:
        """Back to the queue, or to a van past `max_attempts` (or after a failure no retry would fix)."""
        if attempts >= self.config.max_attempts or code in _NO_RETRY:
            await self._move(
                package_id,
                S.VAN,
                f"{attempts} attempt(s) failed; last: {reason}",
                S.FAILED,
                {"reason_code": code},
                reasons=[str(Reason.FLIGHT_FAILED)],
            )
        else:
            await self._move(package_id, S.RECEIVED, f"to be reassigned after: {reason}", S.FAILED)

    def _announce(self, package: Package, reason: str | None = None) -> None:
        """Tell consoles where a package is now."""
        self.bus.publish("package", **_package_event(package, reason))

    async def _move(
        self,
        package_id: str,
        to: PackageState,
        reason: str,
        expect: PackageState,
        detail: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Package:
        package = await self.io(
            self.waiting.transition, package_id, to, reason=reason, detail=detail, expect=expect, **fields
        )
        self._announce(package, reason)
        return package

    async def _mission_state(self, job: Assignment, state: str, result: DeliveryResult | None = None) -> None:
        plan: dict[str, Any] = {"job": job.as_dict()}
        if result is not None:
            plan["result"] = {
                "delivered": result.delivered,
                "reason": result.reason,
                "reason_code": result.reason_code,
                "energy_used_wh": result.energy_used_wh,
                "returned": result.returned,
            }
        await self.io(self.store.update_mission, job.mission_id, state=state, plan=plan)
        self.bus.publish(
            "mission",
            mission_id=job.mission_id,
            package_id=job.package_id,
            vehicle_id=job.vehicle_id,
            state=state,
            reason=result.reason if result is not None else None,
        )

    # --- operator actions ---------------------------------------------------------------------------------

    async def launch(self, mission_id: str) -> None:
        """Launch a mission held for an operator; a drone's flight is booked in the airspace now.

        Raises KeyError (no such held mission), PermissionError (the fleet is grounded, or the station is
        closed to drones) or `AirspaceBusy`
        (no launch slot within `max_delay_s`; `self.airspace.free_at(exc)` says when one may be).
        """
        job = self._held.pop(mission_id, None)
        if job is None:
            raise KeyError(mission_id)
        if self.grounded:
            self._held[mission_id] = job
            raise PermissionError(f"the fleet is grounded: {self.grounded}")
        if self.airspace.closed is not None and self._is_drone(job.vehicle_id):
            self._held[mission_id] = job
            raise PermissionError(f"the station is closed to drones: {self.airspace.closed}")
        if job.airspace is None and self._is_drone(job.vehicle_id):
            try:
                job = self._book(job)
            except AirspaceBusy:  # still held; the operator may try again when it frees (`free_at`)
                self._held[mission_id] = job
                raise
        await self._mission_state(job, "planned")
        self._start(job, resume=False)

    def _is_drone(self, vehicle_id: str) -> bool:
        return any(v.id == vehicle_id and v.kind is VehicleKind.DRONE for v in self.config.fleet)

    async def abort(self, mission_id: str) -> None:
        """Abort a mission: held ones are released back to the queue, flying ones return home."""
        job = self._held.pop(mission_id, None)
        if job is not None:
            await self._mission_state(job, "aborted")
            await self._move(
                job.package_id, S.RECEIVED, "mission aborted by an operator before launch", S.ASSIGNED
            )
            self._busy.pop(job.vehicle_id, None)
            self.poke()
            return
        if mission_id not in self._running:
            raise KeyError(mission_id)
        mission = await self.io(self.store.get_mission, mission_id)
        carrier = self.carriers.get(mission.vehicle_id)
        if carrier is not None:
            await carrier.abort()

    async def ground(self, reason: str = "weather hold") -> None:
        """Stop launching (held and planned missions wait; flying ones carry on)."""
        self.grounded = reason
        self.bus.publish("fleet", state="grounded", reason=reason)

    async def unground(self) -> None:
        self.grounded = None
        self.bus.publish("fleet", state="released")
        self.poke()

    @property
    def station_closed(self) -> str | None:
        """Why the station is closed to drones (None: open)."""
        return self.airspace.closed

    async def close_station(self, reason: str = "closed by an operator") -> None:
        """Close the station's pads and airspace to drones (docs/airspace.md, "Contingencies").

        No drone lifts off (missions waiting for their slot fail as `station_closed` and their packages are
        planned again; a package planned for a drone waits, `reason: station_closed`) and none is cleared
        to land: a drone on its way home is diverted to the nearest rally point of the station file, its
        way there booked. Every drone also gets RALLY_INCL_HOME 0, so an RTL of its own (a failsafe) goes
        to a rally point too. Robots carry on.
        """
        self.airspace.closed = reason
        self.bus.publish("station", state="closed", reason=reason)
        await self._tell_drones(station_open=False)

    async def open_station(self) -> None:
        """Open the station again: drones launch and land; RTL may come home again (RALLY_INCL_HOME 1)."""
        self.airspace.closed = None
        self.bus.publish("station", state="open")
        await self._tell_drones(station_open=True)
        self.poke()

    async def _tell_drones(self, *, station_open: bool) -> None:
        """Every drone that can hear it, at once; one that cannot is logged, not waited for."""
        drones = [
            c for v in self.config.fleet if v.kind is VehicleKind.DRONE and (c := self.carriers.get(v.id))
        ]
        results = await asyncio.gather(
            *(c.station_open(station_open) for c in drones if hasattr(c, "station_open")),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                log.warning("could not tell a drone the station is %s: %s",
                            "open" if station_open else "closed", result)  # fmt: skip

    async def hand_to_van(self, package_id: str, reason: str = "handed to vans by an operator") -> Package:
        """Take a waiting package off the drone/robot queue and give it to the vans."""
        package = await self.io(self.store.get, package_id)
        return await self._move(package_id, S.VAN, reason, package.state, reasons=["operator"])

    # --- views ----------------------------------------------------------------------------------------------

    def fleet_status(self) -> list[dict[str, Any]]:
        out = []
        for vehicle in self.config.fleet:
            carrier = self.carriers.get(vehicle.id)
            snap = carrier.snapshot() if carrier else VehicleSnapshot(vehicle.id, vehicle.kind, online=False)
            data = snap.as_dict()
            data["mission_id"] = self._busy.get(vehicle.id, (None,))[0]
            data["grounded"] = self.grounded is not None
            data["station_closed"] = self.airspace.closed is not None
            out.append(data)
        return out

    async def missions(self, *, unfinished_only: bool = True) -> list[Mission]:
        return await self.io(self.store.missions, unfinished_only)

    # --- recovery -------------------------------------------------------------------------------------------

    async def _recover(self) -> None:
        for mission in await self.io(self.store.missions, True):
            job = Assignment.from_dict(mission.plan["job"])
            package = await self.io(self.store.get, mission.package_id)
            self._busy[job.vehicle_id] = (job.mission_id, self.clock() + timedelta(minutes=30))
            if mission.state == "held":
                self._held[job.mission_id] = job
            elif package.state is S.ASSIGNED:
                if job.airspace is not None:  # its booking died with the last process: book it again
                    try:
                        job = self._book(dataclasses.replace(job, airspace=None))
                    except AirspaceBusy:
                        await self.io(self.store.update_mission, job.mission_id, state="failed")
                        self._busy.pop(job.vehicle_id, None)
                        continue  # its package is planned again below
                self._start(job, resume=False)
            elif package.state in (S.LAUNCHING, S.EN_ROUTE):
                self.bus.publish(
                    "mission", mission_id=job.mission_id, state="resuming", vehicle_id=job.vehicle_id
                )
                self._start(job, resume=True)
            else:  # the package moved on without the mission record: close it
                await self.io(self.store.update_mission, job.mission_id, state="failed")
                self._busy.pop(job.vehicle_id, None)
        # A package assigned by a mission that has since finished (or never got stored) is planned again.
        live = {m.package_id for m in await self.io(self.store.missions, True)}
        for package in await self.io(all_in_state, self.store, S.ASSIGNED):
            if package.id not in live:
                await self._move(
                    package.id, S.RECEIVED, "assignment lost in a restart; planned again", S.ASSIGNED
                )
        # A trip that failed just before the last process died: its package never got its next move.
        for package in await self.io(all_in_state, self.store, S.FAILED):
            if package.id not in live:
                await self._requeue_failed(package.id)


def _package_event(package: Package, reason: str | None = None) -> dict[str, Any]:
    """One shape for every package event."""
    return {
        "package_id": package.id,
        "key": package.key,
        "state": str(package.state),
        "reason": reason,
        "vehicle_id": package.vehicle_id,
        "mode": package.mode,
        "reasons": package.reasons,
        "eta": package.eta.isoformat() if package.eta else None,
    }


def _received_event(package: Package) -> dict[str, Any]:
    return _package_event(package, "received")


def _job(config: StationConfig, package: Package, decision: Decision) -> Assignment:
    import uuid

    route = [(lat, lon) for lon, lat in (decision.route or [])]
    if not route:
        route = [(config.lat, config.lon), (package.dest_lat, package.dest_lon)]
    return Assignment(
        mission_id=uuid.uuid4().hex,
        package_id=package.id,
        vehicle_id=decision.vehicle_id or "",
        station=(config.lat, config.lon),
        destination=(package.dest_lat, package.dest_lon),
        route=route,
        payload_kg=package.weight_kg,
        predicted_energy_wh=decision.energy_wh,
    )
