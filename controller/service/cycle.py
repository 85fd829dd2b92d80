"""Intake and planning as one cycle: check in what arrived, plan once, store it all in one transaction.

A store commit and a planning pass each cost about a millisecond whatever they carry. The first design ran
them as two eager stages (a group commit as soon as the store was free, a pass as soon as the last one
ended), and under steady load that meant many small commits and passes, a saturated core at half the load
the same code handles in bigger batches. The second stored new packages first and then their decisions,
writing each package twice. Here one task runs cycles: each checks in every submission that arrived since
the previous cycle began (their keys against the store's, reading only; when the merged check-in fails,
each submission is checked alone, so one client's bad key never becomes another's error), then runs one
planning pass over the waiting packages and the new ones, which stores the new packages already decided
with everything else the pass did, in one transaction; then it answers each submission from that pass.
The cycle's own length is the batching window: the busier the station, the more each cycle carries; under
concurrent load cycles are also spaced at least `MIN_BUSY_PERIOD_S` apart. A request for a pass alone (a
tick, a vehicle coming free) joins the next cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from controller.packages import Package, PackageIn, PackageState
from controller.store import KeysTaken, Submission

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


_Request = tuple[list[PackageIn], "asyncio.Future[tuple[Stored, PassOutcome]]"]
# Another process storing one of a cycle's keys between check-in and the pass's write costs a retry; this
# many losses in a row means something else is wrong.
CHECK_IN_ATTEMPTS = 3


class Cycles:
    """`await cycles.submit(requests)` -> (stored, the pass after); `await cycles.plan()` -> a pass."""

    def __init__(
        self,
        check_in: Callable[[list[PackageIn]], Awaitable[Submission]],
        run_pass: Callable[[Submission], Awaitable[PassOutcome]],
    ) -> None:
        """`check_in` matches requests to stored keys (writing nothing, raising on a bad one);
        `run_pass` plans the waiting packages and a submission's new ones and stores it all."""
        self._check_in = check_in
        self._run_pass = run_pass
        self._submissions: list[_Request] = []
        self._pass_requests: list[asyncio.Future[PassOutcome]] = []
        self._task: asyncio.Task[None] | None = None
        self._in_cycle: list[asyncio.Future] = []  # whoever the running cycle will answer

    async def submit(self, requests: Sequence[PackageIn]) -> tuple[Stored, PassOutcome]:
        """Store `requests` in the next cycle; returns them as checked in and what that cycle's pass did."""
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
            await self._cycle(submissions, requests)

    async def _cycle(self, submissions: list[_Request], requests: list[asyncio.Future[PassOutcome]]) -> None:
        for attempt in range(CHECK_IN_ATTEMPTS):
            accepted, submission = await self._check_in_all(submissions)
            try:
                outcome = await self._run_pass(submission)
            except KeysTaken as exc:  # another process stored one of our keys: check in again
                if attempt < CHECK_IN_ATTEMPTS - 1:
                    submissions = accepted
                    continue
                failure: Exception = exc
            except Exception as exc:  # nothing of this cycle is planned; the pass says what it stored
                failure = exc
            else:
                start = 0
                for requests_of, future in accepted:
                    if not future.done():
                        future.set_result((submission.stored[start : start + len(requests_of)], outcome))
                    start += len(requests_of)
                for request in requests:
                    if not request.done():
                        request.set_result(outcome)
                return
            for future in [f for _, f in accepted] + requests:
                if not future.done():
                    future.set_exception(failure)
            return

    async def _check_in_all(self, submissions: list[_Request]) -> tuple[list[_Request], Submission]:
        """Check every submission in, merged when possible; those that fail get their error at once."""
        if not submissions:
            return [], Submission()
        if len(submissions) > 1:
            try:
                return submissions, await self._check_in(_merged(submissions))
            except Exception:  # someone's bad input or key conflict: find whose, answer them alone
                pass
        accepted: list[tuple[_Request, Submission]] = []
        for submission in submissions:
            requests, future = submission
            try:
                accepted.append((submission, await self._check_in(requests)))
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
        if len(accepted) <= 1:
            return [a for a, _ in accepted], accepted[0][1] if accepted else Submission()
        try:
            return [a for a, _ in accepted], await self._check_in(_merged([a for a, _ in accepted]))
        except Exception:
            # Fine alone, not together: two of them give one new key different content. The first goes
            # now; the rest wait for the next cycle, which finds its package stored and answers them.
            self._submissions[:0] = [a for a, _ in accepted[1:]]
            return [accepted[0][0]], accepted[0][1]


def _merged(submissions: list[_Request]) -> list[PackageIn]:
    return [request for requests, _ in submissions for request in requests]
