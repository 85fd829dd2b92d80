"""Intake and planning as one cycle: commit what arrived, plan once, answer every submission from that pass.

A store commit and a planning pass each cost about a millisecond whatever they carry. The first design ran
them as two eager stages (a group commit as soon as the store was free, a pass as soon as the last one
ended), and under steady load that meant many small commits and passes, a saturated core at half the load
the same code handles in bigger batches. Here one task runs cycles: each commits every submission that
arrived since the previous cycle began (in one transaction; when that merged write fails, each submission
is retried alone, so one client's bad key never becomes another's error), then runs one planning pass over
every waiting package, then answers each submission from what that pass did. The cycle's own length is the
batching window: the busier the station, the more each cycle carries; under concurrent load cycles are
also spaced at least `MIN_BUSY_PERIOD_S` apart. A request for a pass alone (a tick, a vehicle coming free)
joins the next cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from controller.packages import Package, PackageIn, PackageState

__all__ = ["Cycles", "PassOutcome", "Stored"]

Stored = list[tuple[Package, bool]]  # (package as stored, created) per request, in order
# Under concurrent load (the last cycle carried more than one submission) cycles start at most this often,
# so each carries more and commits and passes cost less per package. Measured at 1,000 POSTs/s on 2 cores:
# 20 ms took the server from ~0.94 to ~0.80 of a core but raised every answer's wait by up to a period
# (p99 never under 40 ms); 10 ms keeps p99 steadier than no spacing at all (58-63 ms against 50-100 ms over
# three runs each). A lone client (one submission per cycle) never waits.
MIN_BUSY_PERIOD_S = 0.01


@dataclass(frozen=True)
class PassOutcome:
    """What one planning pass did, so a submission can be answered without reading the store again."""

    moved: dict[str, Package] = field(default_factory=dict)  # as stored after the pass (assigned, van)
    considered: frozenset[str] = frozenset()  # every waiting package the pass planned
    grounded: str | None = None  # the pass planned nothing: the fleet was grounded

    def current(self, package: Package) -> Package | None:
        """The package as this pass left it, or None when the pass cannot tell (it never saw it)."""
        moved = self.moved.get(package.id)
        if moved is not None:
            return moved
        if package.state is not PackageState.RECEIVED:
            return package  # planning only moves waiting packages
        if self.grounded is not None or package.id in self.considered:
            return package  # still waiting
        return None


_Submission = tuple[list[PackageIn], "asyncio.Future[tuple[Stored, PassOutcome]]"]


class Cycles:
    """`await cycles.submit(requests)` -> (stored, the pass after); `await cycles.plan()` -> a pass."""

    def __init__(
        self,
        commit: Callable[[list[PackageIn]], Awaitable[Stored]],
        plan: Callable[[], Awaitable[PassOutcome]],
        on_stored: Callable[[Stored], None],
    ) -> None:
        """`commit` stores a batch (all or none); `plan` runs a pass; `on_stored` hears of each commit."""
        self._commit = commit
        self._plan = plan
        self._on_stored = on_stored
        self._submissions: list[_Submission] = []
        self._pass_requests: list[asyncio.Future[PassOutcome]] = []
        self._task: asyncio.Task[None] | None = None
        self._in_cycle: list[asyncio.Future] = []  # whoever the running cycle will answer

    async def submit(self, requests: Sequence[PackageIn]) -> tuple[Stored, PassOutcome]:
        """Store `requests` in the next cycle; returns them as stored and what that cycle's pass did."""
        future: asyncio.Future[tuple[Stored, PassOutcome]] = asyncio.get_running_loop().create_future()
        self._submissions.append((list(requests), future))
        self._kick()
        return await future

    async def plan(self) -> PassOutcome:
        """What a planning pass that starts after this call did."""
        future: asyncio.Future[PassOutcome] = asyncio.get_running_loop().create_future()
        self._pass_requests.append(future)
        self._kick()
        return await future

    async def close(self) -> None:
        """Stop cycling; whoever still waits is told the station stopped (their packages may be stored)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        waiting = self._in_cycle + [f for _, f in self._submissions] + self._pass_requests
        self._submissions, self._pass_requests, self._in_cycle = [], [], []
        for future in waiting:
            if not future.done():
                future.set_exception(RuntimeError("the station stopped before planning this"))

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="lastmile.service.cycles")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        started, carried = float("-inf"), 0
        while self._submissions or self._pass_requests:
            if carried > 1:  # concurrent load: space cycles out so each carries more
                delay = MIN_BUSY_PERIOD_S - (loop.time() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
            started = loop.time()
            carried = len(self._submissions)
            submissions, self._submissions = self._submissions, []
            requests, self._pass_requests = self._pass_requests, []
            self._in_cycle = [f for _, f in submissions] + requests
            stored = await self._store(submissions)
            try:
                outcome = await self._plan()
            except Exception as exc:  # the packages are stored; the next pass (a tick) plans them
                for future in [f for f, _ in stored] + requests:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for future, result in stored:
                if not future.done():
                    future.set_result((result, outcome))
            for request in requests:
                if not request.done():
                    request.set_result(outcome)

    async def _store(self, submissions: list[_Submission]) -> list[tuple[asyncio.Future, Stored]]:
        """Commit every submission, merged when possible; those that fail get their error at once."""
        if not submissions:
            return []
        if len(submissions) > 1:
            merged = [request for requests, _ in submissions for request in requests]
            try:
                stored = await self._commit(merged)
            except Exception:  # someone's bad input or key conflict: give everyone their own answer
                pass
            else:
                self._on_stored(stored)
                out, start = [], 0
                for requests, future in submissions:
                    out.append((future, stored[start : start + len(requests)]))
                    start += len(requests)
                return out
        out = []
        for requests, future in submissions:
            try:
                alone = await self._commit(requests)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                continue
            self._on_stored(alone)
            out.append((future, alone))
        return out
